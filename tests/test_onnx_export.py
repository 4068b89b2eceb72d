"""ONNX export: every op and every shipped spec agree with the torch module in onnxruntime;
models pass the full checker and strict shape inference; metadata, opsets, CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from conftest import ROOT, SPECS
from spdnn.backends.onnx_exporter import (
    EMITTERS,
    UNSUPPORTED,
    choose_providers,
    export_onnx,
    make_session,
    max_opset,
    run_onnx,
    weights_sha256,
)
from spdnn.backends.torch_exporter import BOUNDARY_OPS
from test_ops import CASES, single_op_graph

import spdnn
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
    model = export_onnx(graph, module.state_dict(), opset)
    xs = [torch.randn(batch, *graph.out_types(n.name)[0].sample_shape) for n in graph.input_nodes()]
    with torch.no_grad():
        ref = module(*xs)
    refs = ref if isinstance(ref, tuple) else (ref,)
    outs, _ = run_onnx(model.SerializeToString(), [x.numpy() for x in xs], ["CPUExecutionProvider"])
    for r, got in zip(refs, outs.values(), strict=True):
        r = r.numpy()
        assert got.shape == r.shape
        if r.dtype == np.int64:
            np.testing.assert_array_equal(got, r)
        else:
            assert np.all(np.abs(got - r) <= 1e-5 + 1e-3 * np.abs(r)), float(np.abs(got - r).max())
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


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
@pytest.mark.parametrize("batch", [1, 3])
def test_shipped_spec_matches_torch_in_onnxruntime(path, batch):
    assert_parity(spdnn.load_spec(path), batch)


def test_merged_network_matches_torch():
    parents = [spdnn.load_spec(ROOT / "specs" / "iris" / f"p{i}.yaml") for i in (1, 2, 3, 4)]
    assert_parity(merge_networks(parents, "iris_fcdnn").graph, 2)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
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


def test_onnx_speed_benchmark_script_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "onnx_speed.py"), "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "dynamic_filters/mnist_baseline" in proc.stdout and "ratios:" in proc.stdout
