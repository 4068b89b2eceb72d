"""Conformance of the ONNX importer against the onnx package's own backend test cases.

Each case is imported, built as a torch module and run on the case's inputs; the outputs must
match the expected ones. Node tests feed weights as graph inputs: every input but the
activations is bound to its test value as an initializer first (for Add, Mul, Sum and Concat
all float inputs are activations, otherwise the first one is; in IR version 3 models the bound
initializers stay graph inputs, as that version requires).

    python tests/onnx_conformance.py      # prints the coverage table shown in the README
"""

from __future__ import annotations

import collections
import glob
import os
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from spdnn.backends.torch_exporter import load_weights
from spdnn.frontends.onnx_importer import HANDLERS, import_onnx

import spdnn
from spdnn.errors import SpdnnError, UnsupportedOpError

SUPPORTED = set(HANDLERS) | {"Constant"}
ALL_ACTIVATIONS = {"Add", "Mul", "Sum", "Concat"}


@dataclass
class Case:
    kind: str
    name: str
    model: onnx.ModelProto
    data: list[tuple[list[np.ndarray], list[np.ndarray]]]
    rtol: float
    atol: float

    @property
    def ops(self) -> set[str]:
        return {n.op_type for n in self.model.graph.node}


def _load_dir(model_dir: str) -> tuple[onnx.ModelProto, list]:
    model = onnx.load(os.path.join(model_dir, "model.onnx"))
    data = []
    for d in sorted(glob.glob(os.path.join(model_dir, "test_data_set_*"))):
        data.append((_read_tensors(d, "input"), _read_tensors(d, "output")))
    return model, data


def _read_tensors(folder: str, prefix: str) -> list[np.ndarray]:
    files = sorted(glob.glob(os.path.join(folder, f"{prefix}_*.pb")), key=lambda f: int(f.rsplit("_", 1)[1][:-3]))
    return [numpy_helper.to_array(onnx.load_tensor(f)) for f in files]


def load_cases(kinds=("node", "pytorch-converted", "pytorch-operator", "simple")) -> list[Case]:
    from onnx.backend.test.loader import load_model_tests

    cases = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind in kinds:
            for c in load_model_tests(kind=kind):
                if c.model is not None:
                    model, data = c.model, [(list(i), list(o)) for i, o in c.data_sets]
                elif c.model_dir and os.path.exists(os.path.join(c.model_dir, "model.onnx")):
                    model, data = _load_dir(c.model_dir)
                else:
                    continue  # real models are downloaded on demand; not available offline
                cases.append(Case(kind, c.name, model, data, c.rtol, c.atol))
    return cases


def in_scope(case: Case) -> bool:
    """A case every op of which has an importer, with plain tensors in and out (the rest are
    counted as unsupported ops)."""
    tensors = all(isinstance(x, np.ndarray) and isinstance(x.dtype, np.dtype) and x.dtype.kind in "fiub"
                  for inputs, outputs in case.data for x in [*inputs, *outputs])
    return bool(case.ops) and case.ops <= SUPPORTED and tensors


def _bind(case: Case, inputs: list[np.ndarray]) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    init_names = {i.name for i in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in init_names]
    all_act = case.kind == "node" and case.ops & ALL_ACTIVATIONS
    # IR 3: every initializer must also be a graph input
    keep = [i for i in graph.input if i.name in init_names] if model.ir_version < 4 else []
    feeds = []
    for i, (info, value) in enumerate(zip(real_inputs, inputs, strict=False)):
        is_act = value.dtype == np.float32 and (i == 0 or all_act or case.kind != "node")
        if is_act:
            keep.append(info)
            feeds.append(value)
        else:
            graph.initializer.append(numpy_helper.from_array(value, info.name))
            if model.ir_version < 4:  # IR 3: every initializer must also be a graph input
                keep.append(info)
    del graph.input[:]
    graph.input.extend(keep)
    return model, feeds


def run_case(case: Case) -> tuple[str, str]:
    """("passed" | "unsupported" | "failed", detail)."""
    for inputs, expected in case.data:
        model, feeds = _bind(case, inputs)
        try:
            imported = import_onnx(model)
        except UnsupportedOpError as e:
            return "unsupported", str(e).splitlines()[-1].strip()
        except SpdnnError as e:
            return "unsupported", " ".join(line.strip() for line in str(e).splitlines())
        module = load_weights(spdnn.build_torch(imported.graph), imported.weights).eval()
        try:
            with torch.no_grad():
                got = module(*[torch.from_numpy(np.array(x)) for x in feeds])
        except ValueError as e:
            return "unsupported", str(e)
        got = got if isinstance(got, tuple) else (got,)
        if len(got) != len(expected):
            return "failed", f"{len(got)} outputs, expected {len(expected)}"
        for g, want in zip(got, expected, strict=True):
            g = g.numpy()
            if g.shape != want.shape:
                return "failed", f"shape {g.shape}, expected {want.shape}"
            if not np.allclose(g, want, rtol=max(case.rtol, 1e-3), atol=max(case.atol, 1e-5)):
                return "failed", f"max abs diff {float(np.abs(g - want).max()):.3g}"
    return "passed", ""


def coverage_table(cases: list[Case]) -> str:
    """Markdown: per supported op, the in-scope cases that use it and how many passed."""
    per_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for case in cases:
        if not in_scope(case):
            continue
        status, _ = run_case(case)
        for op in case.ops:
            per_op[op][status] += 1
    lines = ["| ONNX op | cases with only supported ops | passed | unsupported variant | failed |",
             "|---|---:|---:|---:|---:|"]
    for op in sorted(SUPPORTED):
        c = per_op.get(op, collections.Counter())
        lines.append(f"| {op} | {sum(c.values())} | {c['passed']} | {c['unsupported']} | {c['failed']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(coverage_table(load_cases()))
