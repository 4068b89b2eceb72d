"""spdnn: a graph-based network design compiler.

The facade::

    import spdnn
    graph = spdnn.load_spec("specs/dynamic_filters/mnist_baseline.yaml")   # verified, shapes inferred
    print(spdnn.summarize(graph).to_text())                          # per-layer table
    module = spdnn.build_torch(graph, seed=0)                        # trainable nn.Module
    spdnn.count_params(graph) == sum(p.numel() for p in module.parameters())
    parents = [spdnn.load_spec(f"specs/iris/p{i}.yaml") for i in (1, 2, 3, 4)]
    merged = spdnn.merge_networks(parents, "iris_fcdnn").graph          # SPDNN merge

Importing spdnn does not import torch; ``build_torch`` does, on first use.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spdnn.errors import (
    ExportError,
    PassError,
    Problem,
    ShapeError,
    SpdnnError,
    SpecError,
    UnknownOpError,
    UnsupportedOpError,
    VerifyError,
)

if TYPE_CHECKING:
    from spdnn.backends.torch_exporter import SpdnnModule
    from spdnn.backends.torch_exporter.training import TorchSystem
    from spdnn.ir import Graph, Node, TensorType, Value
    from spdnn.merge import MergeOptions, MergeResult, merge_networks
    from spdnn.ops import all_ops, get_op
    from spdnn.ops.base import register_op
    from spdnn.passes import PASSES, Pass, PassManager, PassResult, get_pass, infer_shapes, register_pass
    from spdnn.passes.registry import PipelineEntry
    from spdnn.plugins import load_plugins
    from spdnn.summary import Summary, count_params, summarize
    from spdnn.system import SystemSpec

__version__ = "0.1.0"

__all__ = [
    "ExportError", "Graph", "MergeOptions", "MergeResult", "Node", "PASSES", "Pass", "PassError", "PassManager", "PassResult",
    "Problem", "ShapeError", "SpdnnError", "SpecError", "Summary", "TensorType", "UnknownOpError", "UnsupportedOpError",
    "Value", "VerifyError", "__version__", "all_ops", "build_torch", "count_params", "get_op",
    "export_onnx", "get_pass", "import_onnx", "infer_shapes", "load_spec", "load_spec_text", "merge_networks", "run_onnx", "run_passes", "summarize",
    "build_system", "load_system", "load_plugins", "register_op", "register_pass",
]

#: Facade names imported on first use (PEP 562), so that ``import spdnn`` (and ``spdnn --help``)
#: loads neither pydantic's op registry nor the merge machinery until something needs them.
_LAZY = {
    **dict.fromkeys(("Graph", "Node", "TensorType", "Value"), "spdnn.ir"),
    **dict.fromkeys(("MergeOptions", "MergeResult", "merge_networks"), "spdnn.merge"),
    **dict.fromkeys(("all_ops", "get_op"), "spdnn.ops"),
    "register_op": "spdnn.ops.base",
    **dict.fromkeys(("PASSES", "Pass", "PassManager", "PassResult", "get_pass", "infer_shapes", "register_pass"),
                    "spdnn.passes"),
    "load_plugins": "spdnn.plugins",
    **dict.fromkeys(("Summary", "count_params", "summarize"), "spdnn.summary"),
}


#: Core subpackages that ``spdnn.<name>`` imports on access (as the eager package used to).
_SUBPACKAGES = {"compile", "ir", "limits", "merge", "ops", "passes", "plugins", "render", "run", "summary", "system"}


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"spdnn.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spdnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def load_spec(path: str | Path) -> Graph:
    """Load a YAML spec file into a verified, shape-inferred graph (SpecError on problems)."""
    from spdnn.frontends.yaml_importer import load_spec as _load

    return _load(path)


def load_spec_text(text: str, file: str = "<string>") -> Graph:
    """Load a YAML spec from a string; ``file`` names it in error messages."""
    from spdnn.frontends.yaml_importer import load_spec_text as _load

    return _load(text, file)


def run_passes(graph: Graph, passes: PipelineEntry | list[PipelineEntry]) -> Graph:
    """Run a pipeline on ``graph`` in place and return it. Entries are passes, names,
    ``(name, {options})`` pairs, ``{"name": ..., option: value}`` mappings or pipeline text
    (``"insert-dropout:p=0.2,infer-shapes"``), e.g.
    ``spdnn.run_passes(g, [("insert-dropout", {"p": 0.2}), "infer-shapes"])``."""
    from spdnn.passes import run_pipeline

    return run_pipeline(graph, passes).graph


def export_onnx(graph: Graph, weights, opset: int = 17):
    """An ``onnx.ModelProto`` of ``graph`` with ``weights`` (e.g. ``module.state_dict()``)."""
    from spdnn.backends.onnx_exporter import export_onnx as _export

    return _export(graph, weights, opset)


def import_onnx(model):
    """Import an ONNX model (path or ModelProto); returns ``.graph`` and ``.weights``."""
    from spdnn.frontends.onnx_importer import import_onnx as _import

    return _import(model)


def run_onnx(model, inputs):
    """Run an ONNX model (path or bytes) in onnxruntime; returns (outputs by name, provider)."""
    from spdnn.backends.onnx_exporter import run_onnx as _run

    return _run(model, inputs)


def build_torch(graph: Graph, seed: int | None = None) -> SpdnnModule:
    """A trainable ``torch.nn.Module`` for ``graph``; ``seed`` makes the initial weights
    reproducible."""
    from spdnn.backends.torch_exporter import build_torch_module

    return build_torch_module(graph, seed=seed)


def load_system(path: str | Path) -> SystemSpec:
    """Load a system spec (several networks, tensors, losses, optimisers; see docs/training.md),
    validated before anything is built (SpecError listing every located problem)."""
    from spdnn.frontends.yaml_importer.system import load_system as _load

    return _load(path)


def build_system(system: SystemSpec, seed: int = 0, device: str = "cpu") -> TorchSystem:
    """The torch side of a system: ``.networks`` (a ModuleDict) and ``.loss(name, batch)``."""
    from spdnn.backends.torch_exporter.training import TorchSystem

    return TorchSystem(system, seed=seed, device=device)
