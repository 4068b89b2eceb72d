"""Compiler passes, by name: ``spdnn.run_passes(graph, "infer-shapes")``."""

from spdnn.errors import SpdnnError
from spdnn.ops.base import suggest
from spdnn.passes.base import Pass, PassManager, PassResult
from spdnn.passes.infer_shapes import InferShapesPass, infer_shapes

__all__ = [
    "PASSES", "InferShapesPass", "Pass", "PassManager", "PassResult", "get_pass", "infer_shapes",
]

#: Every pass, by its CLI name.
PASSES: dict[str, type[Pass]] = {
    InferShapesPass.name: InferShapesPass,
}


def get_pass(name: str) -> Pass:
    """Instantiate a pass by name, suggesting close names for a typo."""
    try:
        return PASSES[name]()
    except KeyError:
        hint = suggest(name, PASSES)
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise SpdnnError(f"unknown pass {name!r}{more}; known: {', '.join(sorted(PASSES))}") from None
