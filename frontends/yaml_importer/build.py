"""Spec document -> verified, shape-inferred :class:`~spdnn.ir.Graph` (stage 2 of validation).

Rules:
  1. Every problem found is collected; one SpecError lists them all, each located.
  2. A layer's op must be registered (suggestions for typos); its attributes validate
     against the op's model; unknown attributes get a suggestion.
  3. Layer names are unique identifiers; unnamed layers are called ``<op>``, ``<op>_1``, ...
  4. ``inputs:`` refers to graph inputs or earlier layers, as ``name`` or ``name:port``
     (port index or name, e.g. ``pool1:indices``); default: the previous layer, or the only
     graph input for the first layer.
  5. Outputs default to the last layer, named ``output``.
  6. Shapes are inferred; a mismatch is reported at the consuming layer, naming its producers.
  7. The spec's ``passes:`` run last (see :mod:`.passes`).
  8. Layer options (``trainable``, ``init``, ``spectral_norm``; :mod:`spdnn.layer_options`) are
     validated per layer and kept in the node's metadata (``meta.LAYER_OPTIONS``) when not default;
     ``spectral_norm`` on an op other than conv2d / conv_transpose2d / linear is an error.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from spdnn.errors import Problem, SpecError, UnknownOpError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.ir.naming import is_valid_name, unique_name
from spdnn.layer_options import SPECTRAL_NORM_OPS, LayerOptions
from spdnn.limits import current, limit_message
from spdnn.ops import OpAttrs, get_op
from spdnn.ops.base import suggest
from spdnn.ops.structure import InputAttrs
from spdnn.passes.infer_shapes import infer_shapes

from .document import RESERVED_SYSTEM_KEYS, InputDecl, SpecDocument, validation_problems
from .expressions import ExpressionError, describe, substitute
from .loader import Located, format_path
from .passes import run_spec_passes, spec_passes
from .resolve import LayerDraft, check_defaults, expand_layers, resolve_vars

__all__ = ["build_graph"]


def build_graph(doc: Located) -> Graph:
    """Validate a parsed spec and build its graph; raise SpecError with every problem."""
    problems: list[Problem] = []
    data = doc.data
    for key in RESERVED_SYSTEM_KEYS:
        if key in data:
            problems.append(doc.problem((key,), f"{key!r} belongs to system specs, which have networks: "
                                        "instead of layers: (load one with spdnn.load_system, train it with "
                                        "spdnn train, compile it alone with spdnn compile SYSTEM.yaml; "
                                        "docs/training.md)", at_key=True))
            data = {k: v for k, v in data.items() if k != key}
    try:
        spec = SpecDocument.model_validate(data)
    except ValidationError as e:
        raise SpecError(problems + validation_problems(e, doc, (), SpecDocument)) from None
    bad = name_problem(spec.name, "model name")
    if bad:
        problems.append(doc.problem(("name",), bad + "; it names output files"))
    env = resolve_vars(doc, spec.vars, problems)
    check_defaults(doc, spec.defaults, ("defaults",), problems)
    inputs = _inputs(doc, spec, env, problems)
    passes = spec_passes(doc, spec.passes, env, problems)
    drafts = expand_layers(doc, spec.layers, ("layers",), env, spec.defaults, problems)
    layers, defined = _validate_layers(doc, drafts, inputs, problems)
    outputs = _outputs(doc, spec, drafts, defined, problems)
    graph = _assemble(doc, spec, inputs, layers, outputs, partial=bool(problems))
    try:
        infer_shapes(graph)
    except SpecError as e:
        problems.extend(e.problems)
    if problems:
        raise SpecError(_collapse_repeats(problems))
    graph.verify()
    run_spec_passes(doc, graph, passes)
    return graph


def _collapse_repeats(problems: list[Problem]) -> list[Problem]:
    """One problem per place and message: a bad layer inside ``repeat: 8`` is reported once."""
    seen: dict[tuple, int] = {}
    out: list[Problem] = []
    counts: list[int] = []
    for p in problems:
        key = (p.file, p.line, p.column, p.message)
        if key in seen and p.line:
            counts[seen[key]] += 1
            continue
        seen[key] = len(out)
        out.append(p)
        counts.append(1)
    return [p if n == 1 else Problem(f"{p.message} (in all {n} repetitions)", p.file, p.line, p.column, p.where)
            for p, n in zip(out, counts)]


def _inputs(doc, spec: SpecDocument, env, problems) -> dict[str, tuple[InputAttrs, str | None]]:
    out = {}
    for name, decl in spec.inputs.items():
        path = ("inputs", name)
        source = None
        if isinstance(decl, InputDecl):
            shape, source, path = decl.shape, decl.source, (*path, "shape")
        else:
            shape = decl
        bad = name_problem(name, "input name")
        if bad:
            problems.append(doc.problem(("inputs", name), bad, at_key=True))
            continue
        try:
            shape = substitute(shape, env)
            out[name] = (InputAttrs(shape=shape), source)
        except ExpressionError as e:
            problems.append(doc.problem(path, str(e)))
        except ValidationError:
            problems.append(doc.problem(path, f"an input shape is a list of positive ints without the "
                                        f"batch dimension, e.g. [1, 28, 28]; got {describe(shape)}"))
    return out


class _Layer:
    def __init__(self, draft: LayerDraft, name: str, attrs: OpAttrs, refs: list[Value],
                 options: LayerOptions | None):
        self.draft, self.name, self.attrs, self.refs = draft, name, attrs, refs
        self.options = options


def _validate_layers(doc, drafts: list[LayerDraft], inputs, problems) -> tuple[list[_Layer], dict]:
    taken: dict[str, LayerDraft | None] = {name: None for name in inputs}
    for d in drafts:
        if d.name is None:
            continue
        bad = name_problem(d.name, "layer name")
        if bad:
            problems.append(_at(doc, d, "name", bad))
        elif d.name in taken:
            first = taken[d.name]
            where = f"at {first.where}" if first else "as a graph input"
            problems.append(_at(doc, d, "name", f"duplicate layer name {d.name!r} (already used {where})"))
        else:
            taken[d.name] = d
    for d in drafts:
        if d.name is None or name_problem(d.name, ""):
            d.name = unique_name(d.op if isinstance(d.op, str) else "layer", taken)
            taken[d.name] = d
    defined: dict[str, tuple[str, Any]] = {n: ("input", a) for n, (a, _) in inputs.items()}
    order = {d.name: i for i, d in enumerate(drafts)}
    layers: list[_Layer] = []
    previous = next(iter(inputs)) if len(inputs) == 1 else None
    for idx, d in enumerate(drafts):
        attrs = _attrs(doc, d, problems)
        options = _options(doc, d, problems)
        refs = d.inputs
        if refs is None:
            if previous is None:
                problems.append(doc.problem(d.path, "the first layer must say which input it takes "
                                            f"(inputs: [...]); the model has inputs {list(inputs)}", where=d.where))
                refs = []
            else:
                refs = [previous]
        values = [v for r in refs if (v := _ref(doc, d, r, defined, order, idx, problems)) is not None]
        if attrs is not None and isinstance(d.op, str):
            _check_arity(doc, d, len(refs), problems)
            defined[d.name] = (d.op, attrs)
            layers.append(_Layer(d, d.name, attrs, values, options))
        else:
            defined[d.name] = (None, None)
        previous = d.name
    return layers, defined


def _attrs(doc, d: LayerDraft, problems) -> OpAttrs | None:
    try:
        opdef = get_op(d.op)
    except UnknownOpError as e:
        problems.append(_at(doc, d, "op", str(e)))
        return None
    try:
        return opdef.attrs.model_validate(d.attrs)
    except ValidationError as e:
        found = validation_problems(e, doc, d.path, opdef.attrs, noun="attribute")
        for p in found:
            tail = p.where[len(_plain(d.path)):] if p.where.startswith(_plain(d.path)) else ""
            problems.append(Problem(f"{d.op}: {p.message}", p.file, p.line, p.column, d.where + tail))
        return None


def _options(doc, d: LayerDraft, problems) -> LayerOptions | None:
    """The layer's options (None: all defaults, or invalid and reported)."""
    if not d.options:
        return None
    try:
        options = LayerOptions.model_validate(d.options)
    except ValidationError as e:
        for p in validation_problems(e, doc, d.path, LayerOptions, noun="layer option"):
            tail = p.where[len(_plain(d.path)):] if p.where.startswith(_plain(d.path)) else ""
            problems.append(Problem(p.message, p.file, p.line, p.column, d.where + tail))
        return None
    if options.spectral_norm and d.op not in SPECTRAL_NORM_OPS:
        problems.append(_at(doc, d, "spectral_norm", f"spectral_norm applies to {', '.join(SPECTRAL_NORM_OPS)}; "
                            f"{d.op!r} has no weight to normalise"))
        return None
    return None if options.is_default() else options


def _plain(path) -> str:
    return format_path(path)


_REF = re.compile(r"(?P<name>[^:]*)(?P<colon>:?)(?P<port>.*)", re.S)
_PORT = re.compile(r"[0-9]{1,6}|[A-Za-z_][A-Za-z0-9_]*")


def resolve_ref(ref: str, defined: dict[str, tuple[str | None, Any]]) -> tuple[str, int | None, str]:
    """Resolve ``name`` or ``name:port`` against the defined layers and inputs.

    Returns (name, output index, problem); the index is None and the problem says why when the
    reference is bad (problem "" with index None: the producer is itself broken, already reported).
    """
    m = _REF.fullmatch(ref)
    name, port = m["name"], m["port"]
    if name not in defined:
        return name, None, "unknown"
    if m["colon"] and not _PORT.fullmatch(port):
        what = "nothing" if not port else repr(port[:20])
        return name, None, (f"{ref[:60]!r}: after ':' comes an output port, a number or a name "
                            f"(e.g. {name}:0), got {what}")
    op, attrs = defined[name]
    if op is None:
        return name, None, ""
    if not m["colon"]:
        return name, 0, ""
    opdef = get_op(op)
    try:
        return name, opdef.port_index(int(port) if port.isdigit() else port, attrs), ""
    except KeyError:
        ports = opdef.outputs[: opdef.num_outputs(attrs)]
        hint = (" (max_pool2d's indices need return_indices: true)"
                if op == "max_pool2d" and port in ("indices", "1") else "")
        return name, None, (f"{name!r} ({op}) has no output {port[:20]!r}; its outputs are "
                            f"{', '.join(f'{i}:{p}' for i, p in enumerate(ports))}{hint}")


def _ref(doc, d: LayerDraft, ref: str, defined, order, idx, problems) -> Value | None:
    name, index, bad = resolve_ref(ref, defined)
    if bad == "unknown":
        if name in order and order[name] > idx:
            bad = (f"input {name!r} is defined later (at layer {order[name]}); a layer can only "
                   "take graph inputs and earlier layers")
        else:
            hint = suggest(name, list(defined))
            bad = f"unknown input {name[:60]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if bad:
        problems.append(_at(doc, d, "inputs", bad))
    return None if index is None else Value(name, index)


def _check_arity(doc, d: LayerDraft, n: int, problems) -> None:
    opdef = get_op(d.op)
    lo, hi = opdef.input_arity()
    if opdef.is_variadic:
        lo = 2  # a sum or concatenation of one tensor is a mistake in a spec
    if n < lo or (hi is not None and n > hi):
        want = str(lo) if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
        problems.append(_at(doc, d, "inputs", f"{d.op} takes {want} input{'s' if want != '1' else ''}, got {n}"))


def _at(doc: Located, d: LayerDraft, key: str, message: str) -> Problem:
    p = doc.problem((*d.path, key), message, at_key=key == "name")
    return Problem(message, p.file, p.line, p.column, f"{d.where}.{key}" if (*d.path, key) in doc.pos else d.where)


def _outputs(doc, spec: SpecDocument, drafts: list[LayerDraft], defined, problems) -> dict[str, Value]:
    """Outputs by name, each a layer's output port (a broken layer is reported once)."""
    raw = spec.outputs
    layer_names = [d.name for d in drafts]
    if raw is None:
        clash = next((d for d in drafts if d.name == "output"), None)
        if clash is not None:
            problems.append(_at(doc, clash, "name", "a layer named 'output' clashes with the network's "
                                "default output (also named 'output'); rename the layer or name the "
                                "outputs (outputs: {y: output})"))
            return {}
        return {"output": Value(layer_names[-1], 0)} if layer_names else {}
    if isinstance(raw, str):
        raw = [raw]
    named = {("output" if len(raw) == 1 else f"output_{i}"): r for i, r in enumerate(raw)} if isinstance(raw, list) else raw
    out = {}
    for i, (name, ref) in enumerate(named.items()):
        path = ("outputs", name) if isinstance(spec.outputs, dict) else ("outputs", i) if isinstance(spec.outputs, list) else ("outputs",)
        bad = name_problem(name, "output name")
        if bad:
            problems.append(doc.problem(path, bad, at_key=True))
        elif name in defined:
            problems.append(doc.problem(path, f"output name {name!r} is also a layer or input name; "
                                        "outputs need their own names (outputs: {logits: fc})", at_key=True))
        layer, index, why = resolve_ref(ref, defined)
        if why == "unknown":
            hint = suggest(layer, layer_names)
            why = f"output refers to unknown layer {layer[:60]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        elif index is not None and defined[layer][0] == "input":
            why = (f"output refers to the graph input {layer!r}; an output must be a layer's result "
                   "(add a layer, e.g. {op: identity})")
        if why:
            problems.append(doc.problem(path, why))
        elif index is not None:
            out[name] = Value(layer, index)
    return out


def name_problem(name: str, kind: str) -> str:
    """Why ``name`` cannot name a model, layer, input or output ("" when it can)."""
    limit = current().name_chars
    if len(name) > limit:
        return limit_message(f"{kind} {name[:40]!r}... is {len(name):,} characters long", "name_chars")
    if not is_valid_name(name):
        return f"{kind} {name[:60]!r} must be an identifier (letters, digits, _; not a Python keyword)"
    return ""


def _assemblable(g: Graph, layer: _Layer) -> bool:
    lo, hi = get_op(layer.draft.op).input_arity()
    n = len(layer.refs)
    return (layer.name not in g and n == len(layer.draft.inputs or [None])
            and lo <= n and (hi is None or n <= hi) and all(v.node in g for v in layer.refs))


def _assemble(doc: Located, spec: SpecDocument, inputs, layers: list[_Layer], outputs,
              partial: bool = False) -> Graph:
    """Build the graph. With ``partial`` (other problems were found), layers whose inputs are
    broken and the outputs are left out, so shapes can still be checked on the rest."""
    g = Graph(spec.name)
    g.meta.update(source=spec.source, description=spec.description, file=doc.file)
    for name, (attrs, source) in inputs.items():
        g.add_node(name, "input", attrs)
        g.meta_of(name)[M.ORIGIN] = doc.problem(("inputs", name), "", at_key=True)
        if source:
            g.meta_of(name)[M.SOURCE] = source
    for layer in layers:
        d = layer.draft
        if partial and not _assemblable(g, layer):
            continue
        g.add_node(layer.name, d.op, layer.attrs, layer.refs)
        origin = doc.problem(d.path, "")
        g.meta_of(layer.name)[M.ORIGIN] = Problem("", origin.file, origin.line, origin.column, d.where)
        if d.source:
            g.meta_of(layer.name)[M.SOURCE] = d.source
        if layer.options is not None:
            g.meta_of(layer.name)[M.LAYER_OPTIONS] = layer.options
    for name, value in outputs.items() if not partial else ():
        g.add_node(name, "output", {}, [value])
        g.meta_of(name)[M.ORIGIN] = doc.problem(("outputs",), "")
    return g
