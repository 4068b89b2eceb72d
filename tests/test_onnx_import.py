"""ONNX import: round trips, conformance with onnx's own test cases, unsupported models,
unsafe files, and ONNX inputs to `spdnn compile`."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx_conformance as conformance
import pytest
import torch
from conftest import ROOT, SPECS, spec_cases
from onnx import TensorProto, helper, numpy_helper
from spdnn.backends.onnx_exporter import export_onnx
from spdnn.backends.onnx_exporter.functions import FUNCTION_OPS
from spdnn.backends.torch_exporter import load_weights
from spdnn.frontends.onnx_importer import import_onnx, load_onnx_file
from test_onnx_export import randomise

import spdnn


#: Ops that import as other ops: (why, how the imported graph differs).
IMPORTED_AS_OTHERS = {
    "log_filter_bank": "the fixed LoG kernels come back as conv2d weights, so they count as parameters",
}


def _ops(graph) -> set[str]:
    return {n.op for n in graph}


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("path", spec_cases(SPECS, ids=lambda p: p.stem))
def test_yaml_ir_onnx_ir_torch_round_trip_gives_the_same_outputs(path):
    graph = spdnn.load_spec(path)
    module = randomise(spdnn.build_torch(graph, seed=0))
    model = export_onnx(graph, module.state_dict())
    imported = import_onnx(model)
    for node in graph:  # the papers' multi-node ops come back as themselves (ONNX functions)
        if node.op in FUNCTION_OPS:
            assert (imported.graph.node(node.name).op, imported.graph.node(node.name).attrs) == (node.op, node.attrs)
    again = load_weights(spdnn.build_torch(imported.graph), imported.weights).eval()
    xs = [torch.randn(3, *graph.out_types(n.name)[0].sample_shape) for n in graph.input_nodes()]
    with torch.no_grad():
        for a, b in zip(_as_tuple(module(*xs)), _as_tuple(again(*xs)), strict=True):
            assert torch.equal(a, b)
    assert [n.name for n in imported.graph.input_nodes()] == [n.name for n in graph.input_nodes()]
    if _ops(graph) & set(IMPORTED_AS_OTHERS):
        fixed = sum(b.numel() for name, b in module.named_buffers() if ".kernel" in name)
        assert spdnn.count_params(imported.graph) == spdnn.count_params(graph) + fixed
    else:
        assert spdnn.count_params(imported.graph) == spdnn.count_params(graph)


CASES = [c for c in conformance.load_cases() if conformance.in_scope(c)]


def test_conformance_cases_are_found():
    kinds = {c.kind for c in CASES}
    assert {"node", "pytorch-converted", "pytorch-operator"} <= kinds
    assert len(CASES) > 250


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}:{c.name}" for c in CASES])
def test_onnx_backend_case(case):
    status, detail = conformance.run_case(case)
    assert status in ("passed", "unsupported"), detail
    if status == "unsupported":
        assert detail  # every refusal says why


def test_conformance_passes_real_coverage():
    statuses = [conformance.run_case(c)[0] for c in CASES]
    assert statuses.count("passed") >= 100
    assert statuses.count("failed") == 0


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "m", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _info(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_every_unsupported_op_is_listed_with_opset_and_node():
    model = _model([helper.make_node("Cos", ["x"], ["a"], name="cos1"),
                    helper.make_node("Relu", ["a"], ["b"], name="relu1"),
                    helper.make_node("LSTM", ["b", "w", "r"], ["y"], name="lstm1", hidden_size=2)],
                   [_info("x", [1, 3, 4])], [_info("y", [1, 1, 3, 2])],
                   [numpy_helper.from_array(np.zeros((1, 8, 4), np.float32), "w"),
                    numpy_helper.from_array(np.zeros((1, 8, 2), np.float32), "r")])
    with pytest.raises(spdnn.UnsupportedOpError) as info:
        import_onnx(model)
    assert [(op, opset, node) for op, opset, node, _ in info.value.entries] == [("Cos", 17, "cos1"), ("LSTM", 17, "lstm1")]
    assert "2 unsupported nodes" in str(info.value) and "Cos (opset 17) at node 'cos1'" in str(info.value)


def test_unsupported_variants_are_listed_too():
    w3d = numpy_helper.from_array(np.zeros((2, 1, 3, 3, 3), np.float32), "w")
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv3d")],
                   [_info("x", [1, 1, 4, 4, 4])], [_info("y", [1, 2, 2, 2, 2])], [w3d])
    with pytest.raises(spdnn.UnsupportedOpError, match="Conv \\(opset 17\\) at node 'conv3d': only 2-D"):
        import_onnx(model)


def test_matmul_add_becomes_a_linear_layer_with_bias():
    w = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    b = np.arange(3, dtype=np.float32)
    model = _model([helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
                    helper.make_node("Add", ["h", "b"], ["y"], name="bias")],
                   [_info("x", [1, 4])], [_info("y", [1, 3])],
                   [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    imported = import_onnx(model)
    assert [n.op for n in imported.graph] == ["input", "linear", "output"]
    module = load_weights(spdnn.build_torch(imported.graph), imported.weights)
    x = torch.randn(5, 4)
    torch.testing.assert_close(module(x), x @ torch.from_numpy(w) + torch.from_numpy(b))


def _external(tmp_path, location):
    tensor = numpy_helper.from_array(np.ones((2, 4), np.float32), "w")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_info("x", [1, 2])], [_info("y", [1, 4])],
                   [tensor])
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("location,message", [
    ("/etc/passwd", "must be a relative path"),
    ("../outside.bin", "must be a relative path"),
    ("missing.bin", "does not exist"),
])
def test_unsafe_external_data_is_refused(tmp_path, location, message):
    with pytest.raises(spdnn.SpecError, match=message):
        load_onnx_file(_external(tmp_path, location))


def test_external_data_through_a_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "secret.bin"
    outside.write_bytes(np.ones(8, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(outside, folder / "weights.bin")
    path = _external(folder, "weights.bin")
    with pytest.raises(spdnn.SpecError, match="leaves the model's folder"):
        load_onnx_file(path)


def test_external_data_inside_the_folder_loads(tmp_path):
    (tmp_path / "weights.bin").write_bytes(np.arange(8, dtype=np.float32).tobytes())
    imported = import_onnx(_external(tmp_path, "weights.bin"))
    assert list(imported.weights) == ["y.weight"]  # unnamed node: named after its output
    np.testing.assert_array_equal(imported.weights["y.weight"], np.arange(8, dtype=np.float32).reshape(2, 4).T)


def test_oversized_and_broken_files_are_refused(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"this is not a model" * 10)
    with pytest.raises(spdnn.SpecError, match="ONNX models are limited to 10"):
        load_onnx_file(path, max_bytes=10)
    with pytest.raises(spdnn.SpecError, match="not a valid ONNX model"):
        load_onnx_file(path)


def test_compile_onnx_input_keeps_its_weights_and_merges_with_yaml(tmp_path):
    spec = ROOT / "specs" / "iris" / "p1.yaml"
    graph = spdnn.load_spec(spec)
    module = randomise(spdnn.build_torch(graph, seed=3))
    onnx_path = tmp_path / "iris_p1.onnx"
    onnx_path.write_bytes(export_onnx(graph, module.state_dict()).SerializeToString())
    out = tmp_path / "out"
    run = [sys.executable, "-m", "spdnn", "compile", str(onnx_path), "-o", str(out)]
    assert subprocess.run(run, capture_output=True).returncode == 0
    state = torch.load(out / "iris_p1.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())
    others = [str(ROOT / "specs" / "iris" / f"p{i}.yaml") for i in (2, 3, 4)]
    proc = subprocess.run([sys.executable, "-m", "spdnn", "compile", str(onnx_path), *others, "-o",
                           str(tmp_path / "merged"), "--name", "iris_fcdnn"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "merged 4 parents into iris_fcdnn: 40 layers became 13" in proc.stdout


def test_compile_unsupported_onnx_exits_2(tmp_path):
    model = _model([helper.make_node("Cos", ["x"], ["y"], name="cos1")], [_info("x", [1, 3])], [_info("y", [1, 3])])
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "spdnn", "compile", str(path), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Cos (opset 17) at node 'cos1'" in proc.stderr and "Traceback" not in proc.stderr


def test_maxpool_indices_as_a_graph_output_are_refused():
    model = _model([helper.make_node("MaxPool", ["x"], ["y", "i"], name="pool", kernel_shape=[2, 2], strides=[2, 2])],
                   [_info("x", [1, 1, 4, 4])],
                   [_info("y", [1, 1, 2, 2]), helper.make_tensor_value_info("i", TensorProto.INT64, [1, 1, 2, 2])])
    with pytest.raises(spdnn.UnsupportedOpError, match="MaxPool indices as a graph output"):
        import_onnx(model)


def test_the_round_trip_covers_every_op_written_as_a_function():
    assert FUNCTION_OPS <= set().union(*(_ops(spdnn.load_spec(p)) for p in SPECS))


#: layers named like the tensors the old inline emitters wrote (<layer>_coefficients, <layer>_mix ...)
CLASH_SPEC = """
spdnn: 1
name: clash
inputs:
  image: [2, 8, 8]
  features: [16]
layers:
  - {name: dyn_coefficients, op: linear, inputs: features, out_features: 24}
  - {name: dyn, op: dynamic_conv2d, inputs: [image, dyn_coefficients], out_channels: 6, kernel_size: 3,
     repository_size: 4, padding: 1, bias: true}
  - {name: dyn_mix, op: relu}
  - {name: dyn_maps_flat, op: conv2d, out_channels: 4, kernel_size: 1}
  - {name: dyn_unbiased, op: haar_pool}
  - {name: dyn_unbiased_ab, op: relu, inputs: "dyn_unbiased:ll"}
  - {name: dyn_unbiased_ll, op: haar_unpool, inputs: [dyn_unbiased_ab, "dyn_unbiased:lh", "dyn_unbiased:hl",
     "dyn_unbiased:hh"]}
outputs: {y: dyn_unbiased_ll}
"""


def test_layers_named_like_internal_tensors_do_not_clash(tmp_path):
    import onnxruntime as ort

    path = tmp_path / "clash.yaml"
    path.write_text(CLASH_SPEC)
    graph = spdnn.load_spec(path)
    module = randomise(spdnn.build_torch(graph, seed=0)).eval()
    model = export_onnx(graph, module.state_dict())  # checked with full_check=True on export
    produced = [o for n in model.graph.node for o in n.output]
    assert len(produced) == len(set(produced))
    assert set(produced) == {n.name for n in graph if n.op != "input"} | {
        f"dyn_unbiased_{band}" for band in ("lh", "hl", "hh")}  # the ports > 0 of the haar_pool layer
    assert [(n.op_type, n.domain, n.name) for n in model.graph.node if n.domain] == [
        ("dynamic_conv2d", "ai.spdnn", "dyn"), ("haar_pool", "ai.spdnn", "dyn_unbiased"),
        ("haar_unpool", "ai.spdnn", "dyn_unbiased_ll")]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    imported = import_onnx(model)
    again = load_weights(spdnn.build_torch(imported.graph), imported.weights).eval()
    for batch in (1, 3):
        x, f = torch.randn(batch, 2, 8, 8), torch.randn(batch, 16)
        with torch.no_grad():
            want = module(x, f)
            assert torch.equal(again(x, f), want)
        (got,) = session.run(None, {"image": x.numpy(), "features": f.numpy()})
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
