"""Run ONNX models in onnxruntime: CUDA when available, CPU otherwise, all optimisations on."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

__all__ = ["choose_providers", "make_session", "max_runtime_opset", "read_model", "run_onnx"]


def read_model(path: str | Path) -> bytes:
    """The bytes of a checked ONNX model file (the ONNX importer's safe loader and checks:
    limits, tensor data, external data, onnx.checker); SpdnnError for a missing or invalid file."""
    from spdnn.frontends.onnx_importer import load_checked_model

    return load_checked_model(path).SerializeToString()


def choose_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, then CPU."""
    available = ort.get_available_providers()
    return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []) + ["CPUExecutionProvider"]


def make_session(model: str | Path | bytes, providers: list[str] | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    ort.set_default_logger_severity(3)  # the environment's logger too: no coloured warnings on the terminal
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=providers or choose_providers())


def run_onnx(model: str | Path | bytes, inputs: dict[str, np.ndarray] | list[np.ndarray],
             providers: list[str] | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Run ``model``; returns (outputs by name, the execution provider that ran it)."""
    session = make_session(model, providers)
    names = [i.name for i in session.get_inputs()]
    if isinstance(inputs, list):
        if len(inputs) != len(names):
            raise ValueError(f"the model takes inputs {names}, got {len(inputs)} arrays")
        inputs = dict(zip(names, inputs, strict=True))
    feeds = {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
    results = session.run(None, feeds)
    return {o.name: r for o, r in zip(session.get_outputs(), results, strict=True)}, session.get_providers()[0]


@lru_cache(maxsize=1)
def max_runtime_opset() -> int:
    """The newest default-domain opset whose smallest IR version the installed onnxruntime loads
    (probed once with a one-node model, newest first)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    for opset in range(onnx.defs.onnx_opset_version(), 12, -1):
        ids = [helper.make_opsetid("", opset)]
        model = helper.make_model(graph, opset_imports=ids, ir_version=helper.find_min_ir_version_for(ids))
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            return opset
        except Exception:
            continue
    return 13
