"""The spec document: top-level structure (stage 1 of validation) and pydantic error mapping.

A spec file describes one network::

    spdnn: 1                      # format version (optional)
    name: mnist_baseline          # model name
    source: {paper: ..., table: Table 4, lines: L381-388}
    vars: {width: 5}              # named constants, used as $width
    defaults: {conv2d: {padding: valid}}   # default attributes (and layer options) per op
    inputs: {image: [1, 28, 28]}  # shape without the batch dimension
    layers:                       # in order; each takes the previous layer unless `inputs:`
      - {name: conv1, op: conv2d, out_channels: $width, kernel_size: 5, source: "Table 4"}
      - {op: linear, out_features: 10, trainable: false, init: {weight: orthogonal, bias: zeros},
         spectral_norm: true}     # layer options: spdnn.layer_options
      - repeat: 2                 # repeated block; ${i} counts 1, 2, ...
        layers: [...]
    outputs: {logits: fc}         # or a list of layer names; default: the last layer
    passes:                       # optional: passes run on the built graph, in order
      - {name: insert-dropout, p: 0.2}

The keys ``networks``, ``losses``, ``optimizers`` and ``training`` are reserved for specs of
systems of several networks; a future format version will accept them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from spdnn.errors import Problem
from spdnn.layer_options import OPTION_KEYS
from spdnn.ops.base import suggest

from .loader import Located, PathKey

__all__ = ["SpecDocument", "RepeatBlock", "LAYER_KEYS", "RESERVED_SYSTEM_KEYS", "validation_problems"]

#: Keys of a layer entry that are not op attributes (the last three: :mod:`spdnn.layer_options`).
LAYER_KEYS = ("name", "op", "inputs", "source", "note", *OPTION_KEYS)
#: Top-level keys kept for multi-network "system" specs.
RESERVED_SYSTEM_KEYS = ("networks", "losses", "optimizers", "training")



def version_is_an_int(value: Any) -> Any:
    """The ``spdnn:`` format version must be an int (not true, 1.0 or '1'), for networks and systems."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"the format version is the integer 1, got {value!r}")
    return value

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputDecl(_Strict):
    """Long form of an input: ``image: {shape: [1, 28, 28], source: "..."}``."""

    shape: list[Any]
    source: str | None = None


class RepeatBlock(_Strict):
    """``repeat: n`` block: its layers are emitted n times with ``index`` = start, start+1, ..."""

    repeat: StrictInt | str
    index: str = "i"
    start: StrictInt = 1
    defaults: dict[str, dict[str, Any]] = {}
    layers: list[dict[str, Any]] = Field(min_length=1)


class SpecDocument(_Strict):
    """Top level of a network spec (layers are checked in stage 2, per op)."""

    spdnn: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str = ""
    source: str | dict[str, Any] | None = None
    vars: dict[str, Any] = {}
    defaults: dict[str, dict[str, Any]] = {}
    inputs: dict[str, list[Any] | InputDecl] = Field(min_length=1)
    layers: list[Any] = Field(min_length=1)
    outputs: dict[str, str] | list[str] | str | None = None
    passes: list[str | dict[str, Any]] = []
    """Passes run on the built graph, in order: a name or {name: NAME, option: value, ...}
    (``spdnn passes`` lists them)."""

    @field_validator("spdnn", mode="before")
    @classmethod
    def _version_is_an_int(cls, value: Any) -> Any:
        return version_is_an_int(value)

    @field_validator("outputs")
    @classmethod
    def _outputs_not_empty(cls, value: Any) -> Any:
        if value is not None and len(value) == 0:
            raise ValueError("outputs is empty; name at least one layer, or leave outputs out "
                             "to use the last layer")
        return value


def validation_problems(
    err: ValidationError, doc: Located, base: PathKey, model: type[BaseModel] | None = None,
    noun: str = "key",
) -> list[Problem]:
    """Turn a pydantic ValidationError into located Problems, one per offending key.

    Several errors on one key (a union that matched no branch) are merged into one message.
    Unknown keys get a "did you mean" among ``model``'s fields.
    """
    by_key: dict[PathKey, list[dict[str, Any]]] = {}
    for e in err.errors(include_url=False):
        loc = _user_path(e["loc"], doc, base)
        by_key.setdefault(loc, []).append(e)
    # A union branch of the wrong kind ("expected a list" for a mapping) is noise when another
    # branch got further into the user's value: keep the deeper errors only.
    for loc in [k for k, errs in by_key.items() if all(e["type"].endswith("_type") for e in errs)]:
        if any(len(k) > len(loc) and k[:len(loc)] == loc for k in by_key):
            del by_key[loc]
    # For unions pydantic reports one error per branch under a deeper loc; fold them up.
    problems: list[Problem] = []
    for loc, errs in by_key.items():
        path = (*base, *loc)
        kinds = {e["type"] for e in errs}
        if kinds == {"extra_forbidden"}:
            key = str(loc[-1]) if loc else "?"
            owner = _owner_model(errs[0]["loc"], model if len(loc) == 1 else None)
            fields = list(owner.model_fields) if owner else []
            hint = suggest(key, fields)
            more = f"; did you mean {hint[0]!r}?" if hint else (f"; allowed: {', '.join(fields)}" if fields else "")
            problems.append(doc.problem(path, f"unknown {noun} {key!r}{more}", at_key=True))
        elif kinds == {"missing"}:
            problems.append(doc.problem(path[:-1], f"missing required key {loc[-1]!r}", where=_fmt(path[:-1])))
        else:
            msgs = list(dict.fromkeys(_message(e) for e in errs))
            got = errs[0].get("input")
            got_s = f" (got {_short(got)})" if not isinstance(got, dict) else ""
            text = msgs[0] if len(msgs) == 1 else "expected " + " or ".join(
                m.removeprefix("expected ") for m in msgs)
            problems.append(doc.problem(path, text + got_s))
    return problems


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else "a huge integer"
    return text if len(text) <= 60 else text[:57] + "..."


def _fmt(path: PathKey) -> str:
    from .loader import format_path

    return format_path(path)


def _owner_model(raw_loc: tuple[Any, ...], default: type[BaseModel] | None) -> type[BaseModel] | None:
    """The model whose fields an unknown key sits among: pydantic names it in the location
    when a union picked it (``('inputs', 'img', 'InputDecl', 'bogus')``)."""
    if len(raw_loc) >= 2:
        found = globals().get(str(raw_loc[-2]))
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return default


def _user_path(loc: tuple[Any, ...], doc: Located, base: PathKey) -> PathKey:
    """The part of a pydantic error location that names keys and indices the user wrote.

    Pydantic inserts union-branch tags (``int``, ``list[int]``, ``function-after[...]``) into
    locations; a part is the user's own when the document has a value at that path, so a
    layer or key that happens to be called ``int_x`` or ``i[puts`` is kept.
    """
    kept: list[Any] = []
    for part in loc:
        path = (*base, *kept, part)
        if path in doc.pos or path in doc.key_pos or not _is_union_tag(part):
            kept.append(part)
    return tuple(kept)


def _is_union_tag(part: Any) -> bool:
    s = str(part)
    model = globals().get(s)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return True
    return "[" in s or s.startswith(("literal", "function", "tuple", "list", "int", "str", "bool",
                                     "float", "dict", "nullable", "lax", "constrained"))


def _message(e: dict[str, Any]) -> str:
    msg = str(e["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    return msg.replace("Input should be", "expected")
