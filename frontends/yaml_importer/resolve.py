"""Expansion of a spec's conveniences: vars, repeat blocks and per-op defaults.

The result is a flat list of :class:`LayerDraft` s, each remembering where in the file it
was written (for repeated layers: the template, plus the repeat index in the location).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from spdnn.errors import Problem, SpecError
from spdnn.layer_options import OPTION_KEYS, SPECTRAL_NORM_OPS
from spdnn.limits import current, limit_message
from spdnn.ops import all_ops
from spdnn.ops.base import suggest

from .document import LAYER_KEYS, RepeatBlock, validation_problems
from .expressions import ExpressionError, describe, substitute
from .loader import Located, PathKey, format_path

__all__ = ["LayerDraft", "expand_layers", "resolve_vars", "check_defaults"]


@dataclass
class LayerDraft:
    """One layer after expansion, before validation against its op."""

    op: str
    attrs: dict[str, Any]
    path: PathKey
    where: str
    name: str | None = None
    inputs: list[str] | None = None
    source: str | None = None
    note: str | None = None
    #: the layer options as written (``trainable``, ``init``, ``spectral_norm``), not yet validated
    options: dict[str, Any] = field(default_factory=dict)
    attr_paths: dict[str, PathKey] = field(default_factory=dict)


def resolve_vars(doc: Located, raw: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """Evaluate ``vars:`` in order; a var may use the ones before it."""
    env: dict[str, Any] = {}
    for key, value in raw.items():
        if not key.isidentifier():
            problems.append(doc.problem(("vars", key), f"var name {key[:60]!r} is not an identifier", at_key=True))
            continue
        try:
            env[key] = substitute(value, env)
        except ExpressionError as e:
            problems.append(doc.problem(("vars", key), str(e)))
    return env


def check_defaults(doc: Located, defaults: dict[str, dict[str, Any]], base: PathKey,
                   problems: list[Problem]) -> None:
    """Each defaults entry must name a registered op and only that op's attributes or layer
    options (``trainable``, ``init``, ``spectral_norm``)."""
    ops = all_ops()
    for op, attrs in defaults.items():
        if op not in ops:
            hint = suggest(op, ops)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(doc.problem((*base, op), f"defaults for unknown op {op!r}{more}", at_key=True))
            continue
        fields = ops[op].attrs.model_fields
        for key in attrs:
            if key == "spectral_norm" and op not in SPECTRAL_NORM_OPS:
                problems.append(doc.problem((*base, op, key), f"spectral_norm applies to {', '.join(SPECTRAL_NORM_OPS)}; "
                                            f"{op!r} has no weight to normalise", at_key=True))
            elif key not in fields and key not in OPTION_KEYS:
                hint = suggest(key, [*fields, *OPTION_KEYS])
                more = f"; did you mean {hint[0]!r}?" if hint else ""
                problems.append(doc.problem((*base, op, key), f"{op} has no attribute {key!r}{more}", at_key=True))


def expand_layers(
    doc: Located,
    entries: list[Any],
    base: PathKey,
    env: dict[str, Any],
    defaults: dict[str, dict[str, Any]],
    problems: list[Problem],
    suffix: str = "",
    out: list[LayerDraft] | None = None,
) -> list[LayerDraft]:
    """Expand ``entries`` (layers and repeat blocks) into drafts, appending to ``out``."""
    out = [] if out is None else out
    for i, entry in enumerate(entries):
        path = (*base, i)
        _check_layer_count(doc, len(out) + 1, path, problems)
        if not isinstance(entry, dict):
            problems.append(doc.problem(path, f"a layer must be a mapping (name:, op:, ...), got {describe(entry)}"))
        elif "repeat" in entry:
            _expand_repeat(doc, entry, path, env, defaults, problems, suffix, out)
        else:
            draft = _layer(doc, entry, path, env, defaults, problems, suffix)
            if draft is not None:
                out.append(draft)
    return out


def _expand_repeat(doc, entry, path, env, defaults, problems, suffix, out) -> None:
    try:
        block = RepeatBlock.model_validate(entry)
    except ValidationError as e:
        problems.extend(validation_problems(e, doc, path, RepeatBlock))
        return
    try:
        times = substitute(block.repeat, env)
    except ExpressionError as e:
        problems.append(doc.problem((*path, "repeat"), str(e)))
        return
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        problems.append(doc.problem((*path, "repeat"), f"repeat count must be a positive integer, got "
                                    f"{describe(times)}"))
        return
    if times > current().repeat_count:
        problems.append(doc.problem((*path, "repeat"), limit_message(f"repeat count {times:,}", "repeat_count")))
        return
    _check_layer_count(doc, len(out) + times * _least_layers(block.layers), path, problems)
    if not block.index.isidentifier():
        problems.append(doc.problem((*path, "index"), f"index {block.index[:60]!r} is not an identifier"))
        return
    check_defaults(doc, block.defaults, (*path, "defaults"), problems)
    merged = {op: {**defaults.get(op, {}), **attrs} for op, attrs in block.defaults.items()}
    inner_defaults = {**defaults, **merged}
    for k in range(block.start, block.start + times):
        inner_env = {**env, block.index: k}
        expand_layers(doc, block.layers, (*path, "layers"), inner_env, inner_defaults, problems,
                      f"{suffix} ({block.index}={k})", out)


def _least_layers(entries: list[Any]) -> int:
    """The fewest layers ``entries`` can expand to: nested ``repeat:`` counts that are plain
    integers multiply, expressions count once (so ``50 x 50 x 50`` is refused before expanding)."""
    total = 0
    for entry in entries:
        if isinstance(entry, dict) and "repeat" in entry and isinstance(entry.get("layers"), list):
            times = entry["repeat"]
            times = times if isinstance(times, int) and not isinstance(times, bool) and times > 0 else 1
            total += times * _least_layers(entry["layers"])
        else:
            total += 1
    return total


def _check_layer_count(doc: Located, n: int, path: PathKey, problems: list[Problem]) -> None:
    """Stop expanding (raise at once, with the problems so far) past ``limits.layers``."""
    if n > current().layers:
        raise SpecError([*problems, doc.problem(path, limit_message(
            f"the spec expands to {n:,} or more layers", "layers"))])


def _layer(doc, entry, path, env, defaults, problems, suffix) -> LayerDraft | None:
    where = format_path(path) + suffix
    before = len(problems)
    values: dict[str, Any] = {}
    for key, value in entry.items():
        try:
            values[key] = substitute(value, env)
        except ExpressionError as e:
            problems.append(doc.problem((*path, key), str(e), where=f"{format_path((*path, key))}{suffix}"))
    op = values.get("op")
    if "op" not in entry:
        problems.append(doc.problem(path, "missing required key 'op' (the layer's operation, e.g. conv2d)", where=where))
    elif not isinstance(op, str):
        problems.append(doc.problem((*path, "op"), f"op must be a string, got {describe(op)}", where=where + ".op"))
    name = values.get("name")
    if name is not None and not isinstance(name, str):
        problems.append(doc.problem((*path, "name"), f"name must be a string, got {describe(name)}", where=where + ".name"))
    inputs = values.get("inputs")
    if isinstance(inputs, str):
        inputs = [inputs]
    if inputs is not None and (not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs)):
        problems.append(doc.problem((*path, "inputs"), f"inputs must be a layer name or a list of them, got {describe(inputs)}",
                                    where=where + ".inputs"))
    for key in ("source", "note"):
        if key in values and not isinstance(values[key], str):
            problems.append(doc.problem((*path, key), f"{key} must be a string", where=f"{where}.{key}"))
    if len(problems) > before:
        return None
    attrs = {k: v for k, v in values.items() if k not in LAYER_KEYS}
    try:
        given = substitute(defaults.get(op, {}), env)
    except ExpressionError as e:
        problems.append(doc.problem(path, f"in defaults for {op}: {e}", where=where))
        return None
    attrs = {**{k: v for k, v in given.items() if k not in OPTION_KEYS}, **attrs}
    options = {**{k: given[k] for k in OPTION_KEYS if k in given},
               **{k: values[k] for k in OPTION_KEYS if k in values}}
    return LayerDraft(
        op=op, attrs=attrs, path=path, where=where, name=name, inputs=inputs,
        source=values.get("source"), note=values.get("note"),
        options=options,
        attr_paths={k: (*path, k) for k in attrs},
    )
