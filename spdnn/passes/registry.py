"""The pass registry and pipelines: passes by name, with options, from text, specs or Python.

Rules:
  1. ``register_pass`` takes a frozen dataclass subclassing :class:`Pass` whose ``name`` is
     kebab-case (``insert-dropout``); a second pass of the same name is refused.
  2. ``get_pass(name, options)`` validates the options (see :mod:`spdnn.passes.options`); an
     unknown name gets a did-you-mean and the list of known passes.
  3. A pipeline entry is a :class:`Pass`, a name, a ``(name, {options})`` pair, a mapping
     ``{"name": NAME, key: value, ...}`` (the form of a spec's ``passes:`` list) or pipeline
     text. Pipeline text is what ``--pass`` takes: ``NAME[:key=value,...]``, several passes
     separated by commas (``insert-dropout:p=0.2,after=[conv2d,linear],infer-shapes``); a
     comma-separated item containing ``=`` continues the options of the pass before it, and
     ``[a,b]`` is a list. Values stay text; the options' types convert them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from spdnn.errors import SpdnnError
from spdnn.ir.graph import Graph
from spdnn.ops.base import suggest
from spdnn.passes.base import Pass, PassManager, PassResult
from spdnn.passes.options import PassOptionsError, options_model, validate_options

__all__ = ["PASSES", "PipelineEntry", "get_pass", "make_pipeline", "parse_pipeline_text", "register_pass",
           "run_pipeline"]

#: Every pass, by its name.
PASSES: dict[str, type[Pass]] = {}

_KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
P = TypeVar("P", bound=type[Pass])

PipelineEntry = Pass | str | tuple[str, Mapping[str, Any]] | Mapping[str, Any]


def register_pass(cls: P) -> P:
    """Register a pass class (usable as a decorator, above ``@dataclass(frozen=True)``).

    Raises:
        ValueError: the class is not a frozen dataclass subclassing Pass, its name is not
            kebab-case, or a pass of that name is already registered.
    """
    if not (isinstance(cls, type) and issubclass(cls, Pass)):
        raise ValueError(f"register_pass takes a Pass subclass, got {cls!r}")
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:
        raise ValueError(f"pass class {cls.__name__} must be decorated with @dataclass(frozen=True)")
    name = cls.name
    if not isinstance(name, str) or not _KEBAB.match(name):
        raise ValueError(f"pass name {name!r} of {cls.__name__} must be kebab-case, e.g. 'insert-dropout'")
    if name in PASSES:
        raise ValueError(f"pass {name!r} is already registered (by {PASSES[name].__module__}."
                         f"{PASSES[name].__name__})")
    options_model(cls)  # a field type pydantic cannot validate fails here, not at first use
    PASSES[name] = cls
    return cls


def pass_class(name: str) -> type[Pass]:
    """The class of pass ``name``; plugins are loaded before a name is declared unknown."""
    if name not in PASSES:
        from spdnn.plugins import load_plugins

        load_plugins()
    try:
        return PASSES[name]
    except KeyError:
        hint = suggest(name, PASSES)
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise PassOptionsError(name, [(None, f"unknown pass {name!r}{more}; known passes: "
                                             f"{', '.join(sorted(PASSES))} (spdnn passes lists them)")]) from None


def get_pass(name: str, options: Mapping[str, Any] | None = None, base_dir: str | None = None) -> Pass:
    """The pass ``name`` with validated ``options``; raise PassOptionsError listing problems.
    Spec paths among the options resolve against ``base_dir`` (default: the current directory)."""
    cls = pass_class(name)
    return cls(**validate_options(cls, name, dict(options or {}), base_dir))


def make_pipeline(entries: PipelineEntry | Iterable[PipelineEntry]) -> list[Pass]:
    """The passes of a pipeline (rule 3)."""
    if isinstance(entries, (str, Pass, tuple)) or isinstance(entries, Mapping):
        entries = [entries]
    out: list[Pass] = []
    for entry in entries:
        if isinstance(entry, Pass):
            out.append(entry)
        elif isinstance(entry, str):
            out += [get_pass(name, options) for name, options in parse_pipeline_text(entry)]
        elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], Mapping):
            out.append(get_pass(entry[0], entry[1]))
        elif isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            out.append(get_pass(entry["name"], {k: v for k, v in entry.items() if k != "name"}))
        else:
            raise SpdnnError(f"a pipeline entry is a pass, a name, (name, options) or {{'name': ..., ...}}; "
                             f"got {entry!r:.80}")
    return out


def run_pipeline(graph: Graph, entries: PipelineEntry | Iterable[PipelineEntry]) -> PassResult:
    """Run a pipeline on ``graph`` in place."""
    return PassManager(make_pipeline(entries)).run(graph)


def parse_pipeline_text(text: str) -> list[tuple[str, dict[str, Any]]]:
    """``"insert-dropout:p=0.2,after=[conv2d,linear],infer-shapes"`` ->
    ``[("insert-dropout", {"p": "0.2", "after": ["conv2d", "linear"]}), ("infer-shapes", {})]``."""
    out: list[tuple[str, dict[str, Any]]] = []
    for item in _split_top_level(text):
        name, sep, rest = item.partition(":")
        if "=" in name:  # key=value continuing the previous pass
            if not out:
                raise PassOptionsError(text, [(None, f"{item!r} comes before any pass name; "
                                                     "write NAME:key=value")])
            _add_option(out[-1], item, text)
            continue
        name = name.strip()
        if not name:
            raise PassOptionsError(text, [(None, f"missing pass name in {text!r}; write NAME[:key=value,...]")])
        out.append((name, {}))
        if sep and rest.strip():
            _add_option(out[-1], rest, text)
    return out


def _add_option(entry: tuple[str, dict[str, Any]], item: str, text: str) -> None:
    key, eq, value = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise PassOptionsError(entry[0], [(None, f"expected key=value after {entry[0]!r}, got {item.strip()!r}")])
    if key in entry[1]:
        raise PassOptionsError(entry[0], [(key, "is given twice")])
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        inner = value[1:-1].strip()
        entry[1][key] = [v.strip() for v in inner.split(",")] if inner else []
    else:
        entry[1][key] = value


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    stripped = [s.strip() for s in items]
    if any(not s for s in stripped) and len(stripped) > 1:
        raise PassOptionsError(text, [(None, f"empty item in pass list {text!r}")])
    return [s for s in stripped if s]
