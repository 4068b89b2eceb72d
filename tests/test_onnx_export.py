"""ONNX export: every op and every shipped spec agree with the torch module in onnxruntime;
models pass the full checker and strict shape inference; metadata, opsets, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from conftest import ROOT, SPECS, spec_cases, spec_key
from spdnn.backends.onnx_exporter import (
    EMITTERS,
    UNSUPPORTED,
    choose_providers,
    export_onnx,
    export_onnx_bytes,
    make_session,
    max_opset,
    run_onnx,
    weights_sha256,
)
from spdnn.backends.onnx_exporter.exporter import _model_without_initializers, to_numpy_weights
from spdnn.backends.torch_exporter import BOUNDARY_OPS
from test_ops import CASES, single_op_graph

import spdnn
from spdnn.limits import overridden
from spdnn.merge import merge_networks


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters, so parity checks mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.normal_(0, 0.2, generator=g)
    return module.eval()


def assert_parity(graph: spdnn.Graph, batch: int, module=None, opset: int = 17):
    module = module or randomise(spdnn.build_torch(graph, seed=0))
    data = export_onnx_bytes(graph, module.state_dict(), opset)  # onnxruntime reads these very bytes
    model = onnx.load_from_string(data)
    # max_unpool2d is discontinuous where two pooled values nearly tie (float rounding picks the
    # winner, and torch and onnxruntime may round differently): a few outputs may then differ
    # (specs/segnet_basic README); one flipped index spreads through the convolutions after it, so with
    # max_unpool2d at most 1% of the outputs may lie outside the tolerance.
    ties = 0.01 if any(n.op == "max_unpool2d" for n in graph) else 0.0
    g = torch.Generator().manual_seed(1000 + batch)
    xs = [torch.randn(batch, *graph.out_types(n.name)[0].sample_shape, generator=g) for n in graph.input_nodes()]
    with torch.no_grad():
        ref = module(*xs)
    refs = ref if isinstance(ref, tuple) else (ref,)
    outs, _ = run_onnx(data, [x.numpy() for x in xs], ["CPUExecutionProvider"])
    for r, got in zip(refs, outs.values(), strict=True):
        r = r.numpy()
        assert got.shape == r.shape
        if r.dtype == np.int64:
            np.testing.assert_array_equal(got, r)
        else:
            # float32 sums of many products: the absolute slack grows with the output's magnitude
            atol = 1e-5 * max(1.0, float(np.abs(r).max()))
            outside = np.abs(got - r) > atol + 1e-3 * np.abs(r)
            assert outside.sum() <= ties * outside.size, (int(outside.sum()), float(np.abs(got - r).max()))
    return model


def test_every_op_has_an_onnx_emitter_or_is_listed_unsupported():
    missing = [op for op in spdnn.all_ops() if op not in EMITTERS and op not in UNSUPPORTED
               and op not in BOUNDARY_OPS]
    assert missing == []


@pytest.mark.parametrize("op,attrs,shapes,ref", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_every_op_matches_torch_in_onnxruntime(op, attrs, shapes, ref):
    graph = single_op_graph(op, attrs, shapes)
    if op == "max_pool2d" and attrs.get("return_indices"):
        with pytest.raises(spdnn.ExportError, match="exposes max_pool2d indices"):
            export_onnx(graph, spdnn.build_torch(graph).state_dict())
        return
    assert_parity(graph, 3)


def test_max_unpool_with_indices_matches_torch():
    g = spdnn.Graph("segnet_step")
    g.add_node("x", "input", {"shape": [2, 6, 8]})
    g.add_node("pool", "max_pool2d", {"kernel_size": 2, "return_indices": True}, ["x"])
    g.add_node("unpool", "max_unpool2d", {"kernel_size": 2}, [("pool", 0), ("pool", 1)])
    g.add_node("y", "output", {}, ["unpool"])
    assert_parity(g, 3)


@pytest.mark.parametrize("path,batch", [pytest.param(p, 1, id=f"1-{p.stem}") for p in SPECS] + spec_cases(
    [(p, 3) for p in SPECS], key=lambda c: spec_key(c[0]), ids=lambda c: f"3-{c[0].stem}"))
def test_shipped_spec_matches_torch_in_onnxruntime(path, batch):
    assert_parity(spdnn.load_spec(path), batch)


def test_merged_network_matches_torch():
    parents = [spdnn.load_spec(ROOT / "specs" / "iris" / f"p{i}.yaml") for i in (1, 2, 3, 4)]
    assert_parity(merge_networks(parents, "iris_fcdnn").graph, 2)


@pytest.mark.parametrize("path", spec_cases(SPECS, ids=lambda p: p.stem))
def test_models_pass_full_check_strict_inference_and_load_optimised(path):
    graph = spdnn.load_spec(path)
    model = export_onnx(graph, spdnn.build_torch(graph, seed=0).state_dict())
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, check_type=True)
    out = inferred.graph.output[0].type.tensor_type.shape.dim
    assert out[0].dim_param == "N"
    assert [d.dim_value for d in out[1:]] == list(graph.type_of(graph.inputs_of(graph.output_nodes()[0].name)[0]).sample_shape)
    make_session(model.SerializeToString(), ["CPUExecutionProvider"])  # ORT_ENABLE_ALL


def test_names_metadata_and_ir_version():
    path = ROOT / "specs" / "dynamic_filters" / "mnist_baseline.yaml"
    graph = spdnn.load_spec(path)
    state = spdnn.build_torch(graph, seed=0).state_dict()
    model = export_onnx(graph, state)
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["logits"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert sorted(i.name for i in model.graph.initializer if i.name in state) == sorted(state)
    assert [n.name for n in model.graph.node][:3] == ["conv1", "relu1", "pool1"]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["spdnn_version"] == spdnn.__version__
    assert props["source_spec"] == str(path)
    assert props["weights_sha256"] == weights_sha256({k: v.numpy() for k, v in state.items()})
    assert model.ir_version == onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", 17)])
    assert export_onnx(graph, state).SerializeToString() == model.SerializeToString()  # deterministic


@pytest.mark.parametrize("opset", [13, max_opset()])
def test_opset_is_selectable(opset):
    graph = spdnn.load_spec(ROOT / "specs" / "vacgan_mnist" / "generator.yaml")
    model = assert_parity(graph, 2, opset=opset)
    assert model.opset_import[0].version == opset


def test_out_of_range_opset_and_missing_weights_are_export_errors():
    graph = spdnn.load_spec(ROOT / "specs" / "dynamic_filters" / "mnist_baseline.yaml")
    with pytest.raises(spdnn.ExportError, match="opset 9 is not supported"):
        export_onnx(graph, {}, opset=9)
    if max_opset() < onnx.defs.onnx_opset_version():  # onnx knows opsets this onnxruntime cannot load
        with pytest.raises(spdnn.ExportError, match=f"choose 13 to {max_opset()}"):
            export_onnx(graph, {}, opset=onnx.defs.onnx_opset_version())
    with pytest.raises(spdnn.ExportError, match="no weight 'conv1.weight'"):
        export_onnx(graph, {})


def test_cpu_provider_is_always_chosen_last():
    assert choose_providers()[-1] == "CPUExecutionProvider"


def test_compile_writes_onnx_with_the_same_weights_and_run_uses_it(tmp_path):
    spec = ROOT / "specs" / "vacgan_mnist" / "classifier.yaml"
    out = tmp_path / "out"
    assert subprocess.run([sys.executable, "-m", "spdnn", "compile", str(spec), "-o", str(out)],
                          capture_output=True).returncode == 0
    module = spdnn.build_torch(spdnn.load_spec(spec)).eval()
    module.load_state_dict(torch.load(out / "vacgan_mnist_classifier.pt", weights_only=True))
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, "-m", "spdnn", "run", str(out / "vacgan_mnist_classifier.onnx"),
                           "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npz")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "provider: CPUExecutionProvider" in proc.stdout
    assert "class_probs: shape (3, 10) float32" in proc.stdout
    got = np.load(tmp_path / "y.npz")["class_probs"]
    with torch.no_grad():
        np.testing.assert_allclose(got, module(torch.from_numpy(x)).numpy(), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("setup,message", [
    (lambda d: (d / "m.onnx").write_text("not a model"), "not a valid ONNX model"),
    (lambda d: None, "no such file"),
])
def test_run_bad_model_exits_2(tmp_path, setup, message):
    setup(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "spdnn", "run", str(tmp_path / "m.onnx")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_bytes_parse_to_the_model_with_initializers_added_by_onnx():
    """The one-copy wire encoding (wire.py) means the same model as onnx's own serialisation."""
    graph = spdnn.load_spec(ROOT / "specs" / "depth" / "net3.yaml")  # weights, scales, int64 shapes
    state = spdnn.build_torch(graph, seed=0).state_dict()
    weights = to_numpy_weights(state)
    reference, initializers = _model_without_initializers(graph, weights, 17, None)
    reference.metadata_props.add(key="weights_sha256", value=weights_sha256(weights))
    reference.graph.initializer.extend(onnx.numpy_helper.from_array(a, name) for name, a in initializers)
    assert len(initializers) > 10
    assert onnx.ModelProto.FromString(export_onnx_bytes(graph, state)) == reference


@pytest.mark.parametrize("attrs", [
    {"mode": "bilinear", "scale_factor": [2, 3]},
    {"mode": "bilinear", "scale_factor": 2, "align_corners": True},
    {"mode": "nearest", "size": [8, 12]},
])
def test_integer_upsampling_is_a_resize_with_constant_scales(attrs):
    g = spdnn.Graph("up")
    g.add_node("x", "input", {"shape": [3, 4, 4]})
    g.add_node("up", "upsample", attrs, ["x"])
    g.add_node("y", "output", {}, ["up"])
    model = assert_parity(g, 3)
    assert [n.op_type for n in model.graph.node] == ["Resize", "Identity"]
    scales = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}[model.graph.node[0].input[2]]
    out = [int(d) for d in g.out_types("up")[0].shape[2:]]
    assert scales.tolist() == [1, 1, out[0] / 4, out[1] / 4]


@pytest.mark.parametrize("bias", [True, False])
def test_linear_is_gemm_with_a_bias_and_matmul_by_the_transposed_weight_without(bias):
    g = spdnn.Graph("fc")
    g.add_node("x", "input", {"shape": [6]})
    g.add_node("fc", "linear", {"out_features": 4, "bias": bias}, ["x"])
    g.add_node("bn", "batch_norm", {}, ["fc"])
    g.add_node("y", "output", {}, ["bn"])
    module = randomise(spdnn.build_torch(g, seed=0))
    model = assert_parity(g, 3, module)
    assert [n.op_type for n in model.graph.node][0] == ("Gemm" if bias else "MatMul")
    weight = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}["fc.weight"]
    expected = module.state_dict()["fc.weight"].numpy()
    np.testing.assert_array_equal(weight, expected if bias else expected.T)


def test_unpooling_in_the_depth_nets_runs_nothing_at_run_time():
    for net in ("net3", "net4"):
        graph = spdnn.load_spec(ROOT / "specs" / "depth" / f"{net}.yaml")
        ops = [n.op_type for n in export_onnx(graph, spdnn.build_torch(graph, seed=0).state_dict()).graph.node]
        assert "Resize" in ops and not {"Shape", "Slice", "Concat"} & set(ops)


def test_non_integer_resize_still_matches_torch():
    g = spdnn.Graph("up")
    g.add_node("x", "input", {"shape": [2, 3, 4]})
    g.add_node("up", "upsample", {"mode": "bilinear", "size": [7, 9]}, ["x"])
    g.add_node("y", "output", {}, ["up"])
    model = assert_parity(g, 2)
    assert [n.op_type for n in model.graph.node] == ["Shape", "Slice", "Concat", "Resize", "Identity"]


def test_node_doc_strings_carry_the_spec_citation_and_location():
    path = ROOT / "specs" / "depth" / "net3.yaml"
    graph = spdnn.load_spec(path)
    model = export_onnx(graph, spdnn.build_torch(graph, seed=0).state_dict())
    docs = {n.name: n.doc_string for n in model.graph.node}
    assert docs["conv1"].splitlines() == [
        "source: first layer of all eight networks is a 3x3 conv, L3370-3371", "spec: net3.yaml:18 (layers[0])"]
    assert docs["unpool"].startswith("source: value-repeating unpooling, L2616-2624; back to 80x264")
    assert all(docs[n.name] for n in graph if n.op not in ("input", "output"))
    assert model.graph.input[0].doc_string.startswith("source: ")
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["source_citation"])["lines"] == graph.meta["source"]["lines"]
    assert model.doc_string == graph.meta["description"]
    assert "spdnn_merge_parents" not in props


def test_merged_export_names_parent_layers_labels_and_parents():
    parents = [spdnn.load_spec(ROOT / "specs" / "iris" / f"p{i}.yaml") for i in (1, 2, 3, 4)]
    result = merge_networks(parents, "iris_fcdnn")
    model = export_onnx(result.graph, spdnn.build_torch(result.graph, seed=0).state_dict())
    docs = {n.name: n.doc_string for n in model.graph.node}
    report = {n["node"]: n for n in result.report()["nodes"]}
    conv4 = next(name for name, n in report.items() if "iris_p1.conv4" in n["from"])
    assert docs[conv4].splitlines() == [f"SPDNN label: {report[conv4]['label']}",
                                        f"merged from: {', '.join(report[conv4]['from'])}"]
    assert "iris_p1.conv4" in docs[f"{conv4}_relu"]  # the block's tail ops carry it too
    for name, n in report.items():  # every merged layer, as the merge report states it
        assert docs[name] == f"SPDNN label: {n['label']}\nmerged from: {', '.join(n['from'])}"
    props = {p.key: p.value for p in model.metadata_props}
    assert props["spdnn_merge_parents"] == "iris_p1, iris_p2, iris_p3, iris_p4"


def test_a_model_over_the_onnx_size_limit_is_an_export_error():
    graph = spdnn.load_spec(ROOT / "specs" / "vacgan_mnist" / "classifier.yaml")
    state = spdnn.build_torch(graph, seed=0).state_dict()
    with overridden(onnx_bytes=1000), pytest.raises(spdnn.ExportError, match=r"limit 1,000 \(onnx_bytes\)"):
        export_onnx(graph, state)


@pytest.mark.parametrize("broken", [
    lambda e: e.op("Gemm", [e.inputs[0], e.weight("weight")], e.outputs, suffix=""),  # weight not transposed
    lambda e: e.op("Gemm", [e.inputs[0], e.weight("weight")], e.outputs, suffix="", transB=1, bogus=1),
])
def test_an_invalid_model_is_caught_by_the_checker_or_strict_shape_inference(monkeypatch, broken):
    graph = spdnn.load_spec(ROOT / "specs" / "vacgan_mnist" / "classifier.yaml")
    state = spdnn.build_torch(graph, seed=0).state_dict()
    monkeypatch.setitem(EMITTERS, "linear", broken)
    with pytest.raises(RuntimeError, match="spdnn produced an invalid ONNX model"):
        export_onnx_bytes(graph, state)
