"""Typed pass options: a pass's dataclass fields, validated by one pydantic model.

Rules:
  1. A pass's options are the fields of its frozen dataclass. Each field's type (plus any
     ``Annotated[..., Field(ge=..., ...)]`` constraints) is its validation; its default is the
     option's default; the string literal under the field (as pydantic's attribute
     docstrings) or ``Field(description=...)`` is its description.
  2. Options are validated by a pydantic model built from the fields (cached per pass class),
     derived from :class:`~spdnn.ops.base.OpAttrs`: unknown keys are refused with a suggestion,
     no booleans where numbers are expected, no NaN or infinity. Strings are converted as
     pydantic's lax mode does (``"0.2"`` -> 0.2), so text from the command line validates the
     same as values from a spec or from Python.
  3. Every problem is reported at once, as ``(option, message)`` pairs; the message is the
     same whichever front end supplied the value, and each front end adds its location
     (file:line:column, the ``--pass`` flag, or the Python call).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from spdnn.errors import SpdnnError
from spdnn.ops.base import OpAttrs, suggest

__all__ = ["OneOrMore", "OptionInfo", "PassOptionsError", "option_infos", "options_model", "validate_options"]

#: (option name or None for the pass itself, message)
OptionProblem = tuple[str | None, str]


def _one_or_more(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


#: A tuple of strings where a single string means a one-item tuple (``after: conv2d``).
OneOrMore = Annotated[tuple[str, ...], BeforeValidator(_one_or_more), Field(min_length=1)]


class PassOptionsError(SpdnnError):
    """A pass name or its options are wrong.

    Attributes:
        pass_name: the pass as written.
        problems: ``(option, message)`` pairs; option is None for the pass name itself.
    """

    def __init__(self, pass_name: str, problems: list[OptionProblem]):
        self.pass_name = pass_name
        self.problems = problems
        super().__init__("; ".join(self.describe(key, msg) for key, msg in problems))

    def describe(self, key: str | None, message: str) -> str:
        """One problem as text: ``pass 'insert-dropout' option 'p': expected ...``."""
        if key is None:
            return message
        return f"pass {self.pass_name!r} option {key!r}: {message}"


@dataclass(frozen=True)
class OptionInfo:
    """What ``spdnn passes NAME`` prints about one option."""

    name: str
    type: str
    default: str
    description: str


def _pass_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


@functools.cache
def options_model(cls: type) -> type[OpAttrs]:
    """The pydantic model validating ``cls``'s options (rule 2)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    docs = _attribute_docstrings(cls)
    fields: dict[str, Any] = {}
    for f in _pass_fields(cls):
        extra = {"description": docs[f.name]} if f.name in docs else {}
        if isinstance(f.default, FieldInfo):
            raise ValueError(f"{cls.__name__}.{f.name}: write the constraints in the type, "
                             f"{f.name}: Annotated[T, Field(...)] = default")
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], Field(f.default, **extra))
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], Field(default_factory=f.default_factory, **extra))
        else:
            fields[f.name] = (hints[f.name], Field(**extra))
    return create_model(f"{cls.__name__}Options", __base__=OpAttrs, __doc__=cls.__doc__, **fields)


def validate_options(cls: type, pass_name: str, values: dict[str, Any],
                     base_dir: str | None = None) -> dict[str, Any]:
    """Validated option values (defaults filled in); raise PassOptionsError listing every
    problem. Relative spec paths among the options resolve against ``base_dir`` (default: the
    current directory)."""
    model = options_model(cls)
    bad_keys = [k for k in values if not isinstance(k, str)]
    if bad_keys:
        raise PassOptionsError(pass_name, [(None, f"pass {pass_name!r}: option names are strings, "
                                                  f"got {bad_keys[0]!r}")])
    try:
        validated = model.model_validate(values, context={"base_dir": base_dir})
    except ValidationError as e:
        raise PassOptionsError(pass_name, _problems(e, model)) from None
    return {name: getattr(validated, name) for name in model.model_fields}


def _problems(err: ValidationError, model: type[OpAttrs]) -> list[OptionProblem]:
    by_key: dict[str, list[dict[str, Any]]] = {}
    for e in err.errors(include_url=False):
        by_key.setdefault(str(e["loc"][0]) if e["loc"] else "", []).append(e)
    known = list(model.model_fields)
    out: list[OptionProblem] = []
    for key, errs in by_key.items():
        if errs[0]["type"] == "extra_forbidden":
            hint = suggest(key, known)
            more = f"did you mean {hint[0]!r}?" if hint else (
                f"options: {', '.join(known)}" if known else "this pass takes no options")
            out.append((key, f"unknown option; {more}"))
        elif errs[0]["type"] == "missing":
            out.append((key, "is required"))
        else:
            messages = list(dict.fromkeys(_message(e) for e in errs))
            out.append((key, f"{' or '.join(messages)} (got {_short(errs[0].get('input'))})"))
    return out


def _message(e: dict[str, Any]) -> str:
    msg = str(e["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg.replace("Input should be", "expected")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def option_infos(cls: type) -> list[OptionInfo]:
    """Name, type, default and description of each option of pass class ``cls``."""
    model = options_model(cls)
    out = []
    for name, info in model.model_fields.items():
        default = "(required)" if info.is_required() else _show(info.get_default(call_default_factory=True))
        out.append(OptionInfo(name, _type_text(info.annotation, info.metadata), default, info.description or ""))
    return out


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "at least"))


def _type_text(annotation: Any, metadata: list[Any]) -> str:
    """``float (>= 0, < 1)``, ``list of str``, ``int``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        return _type_text(args[0], [*metadata, *args[1:]])
    if type(None) in args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (given,) = [a for a in args if a is not type(None)]
        return f"{_type_text(given, metadata)} or none"
    if typing.get_origin(annotation) is tuple:
        text = f"list of {_type_text(args[0], [])}"
    elif typing.get_origin(annotation) is typing.Literal:
        text = " | ".join(repr(a) for a in args)
    else:
        text = getattr(annotation, "__name__", str(annotation))
    bounds = [f"{word} {getattr(m, key)}" for m in metadata for key, word in _BOUNDS
              if getattr(m, key, None) is not None]
    for m in metadata:  # a FieldInfo inside Annotated keeps its constraints in .metadata
        bounds += [f"{word} {getattr(c, key)}" for c in getattr(m, "metadata", ()) for key, word in _BOUNDS
                   if getattr(c, key, None) is not None]
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _attribute_docstrings(cls: type) -> dict[str, str]:
    """The string literal under each annotated field of ``cls`` and its bases (rule 1)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs
