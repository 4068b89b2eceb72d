"""Helpers shared by passes that build on a graph: another spec's network grafted in, and
single-input, single-output chains walked in order.

Rules:
  1. A pass option that names a spec file (``SpecPath``) is resolved against the folder of
     the spec whose ``passes:`` list gives it, and against the current directory when it
     comes from ``--pass`` or Python; a missing file is an option error of the pass, raised
     when the options are validated. ``load_network(path)`` loads it (``spdnn.load_spec``);
     a spec that loads itself again through passes, directly or through others, is an error,
     and so is nesting deeper than the ``spec_nesting`` limit.
  2. ``graft(graph, other, prefix, feed)`` copies every layer of ``other`` into ``graph`` as
     ``<prefix><name>``; ``other``'s inputs are not copied: each reads the value ``feed``
     gives for it, whose per-sample shape must equal the input's. Spec locations and
     citations travel with the layers. A name that is taken already is an error (the network
     was grafted before).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

from spdnn.errors import PassError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.limits import current, limit_message

__all__ = ["SpecPath", "chain", "graft", "load_network", "loading_spec"]

#: Real paths of the specs being loaded by passes, outermost first (rule 1).
_LOADING: ContextVar[tuple[str, ...]] = ContextVar("spdnn_specs_loading", default=())


def _resolve_spec_path(path: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base_dir")
    resolved = Path(path) if Path(path).is_absolute() or not base else Path(base) / path
    try:
        found = resolved.is_file()
    except OSError as e:  # a name too long for the file system, a loop of links
        raise ValueError(f"cannot read {path[:80]!r}: {(e.strerror or str(e)).lower()}") from None
    if not found:
        where = f" (relative to {base})" if base and not Path(path).is_absolute() else ""
        raise ValueError(f"no such file {path!r}{where}")
    return str(resolved)


#: A pass option naming a spec file (rule 1).
SpecPath = Annotated[str, AfterValidator(_resolve_spec_path)]


@contextlib.contextmanager
def loading_spec(path: str | os.PathLike[str]) -> Iterator[None]:
    """Mark the spec at ``path`` as being loaded while the block runs (rule 1)."""
    real, loading = os.path.realpath(path), _LOADING.get()
    if real in loading:
        raise PassError(f"{str(path)!r} is loaded again by its own passes (a spec cannot include itself)")
    if len(loading) > current().spec_nesting:
        raise PassError(limit_message(f"specs loaded by passes nest {len(loading)} deep", "spec_nesting"))
    token = _LOADING.set((*loading, real))
    try:
        yield
    finally:
        _LOADING.reset(token)


def load_network(path: str) -> Graph:
    """The verified, shape-inferred graph of the spec at ``path`` (rule 1)."""
    import spdnn

    return spdnn.load_spec(path)


def graft(graph: Graph, other: Graph, prefix: str, feed: dict[str, Value], what: str) -> dict[str, Value]:
    """Copy ``other``'s layers into ``graph`` (rule 2); return, for each output of ``other``,
    the value of ``graph`` it reads."""
    missing = [n.name for n in other.input_nodes() if n.name not in feed]
    if missing:
        raise PassError(f"{what}: nothing feeds its input {missing[0]!r}")
    for node in other.input_nodes():
        have, want = graph.type_of(feed[node.name]), other.out_types(node.name)[0]
        if have.sample_shape != want.sample_shape:
            raise PassError(f"{what}: its input {node.name!r} takes per-sample shape {list(want.sample_shape)}, "
                            f"but it would be fed {feed[node.name]} of shape {list(have.sample_shape)}")
    values = {(n.name, 0): feed[n.name] for n in other.input_nodes()}
    for name in other.topo_order():
        node = other.node(name)
        if node.op in ("input", "output"):
            continue
        new = prefix + name
        if new in graph:
            raise PassError(f"{what}: the graph has a layer named {new!r} already (was it added before?)")
        inputs = [values[(v.node, v.port)] for v in other.inputs_of(name)]
        graph.add_node(new, node.op, node.attrs, inputs)
        for key in (M.ORIGIN, M.SOURCE, M.OUT_TYPES, M.PARAMS, M.FLOPS):
            if key in other.meta_of(name):
                graph.meta_of(new)[key] = other.meta_of(name)[key]
        for port in range(len(other.out_types(name))):
            values[(name, port)] = Value(new, port)
    return {o.name: values[(v.node, v.port)] for o in other.output_nodes() for v in other.inputs_of(o.name)}


def chain(graph: Graph) -> list[str]:
    """The layers of a single-input, single-output graph in which every layer feeds exactly
    the next one, input to output (inputs and outputs excluded); PassError otherwise."""
    inputs, outputs = graph.input_nodes(), graph.output_nodes()
    if len(inputs) != 1 or len(outputs) != 1:
        raise PassError(f"expected one input and one output, got {len(inputs)} inputs and {len(outputs)} outputs")
    order, current = [], inputs[0].name
    while True:
        users = graph.users_of(current)
        if len(users) != 1:
            raise PassError(f"layer {current!r} feeds {len(users)} layers; expected a chain where each layer "
                            "feeds the next")
        current = users[0][0]
        if graph.node(current).op == "output":
            return order
        order.append(current)
