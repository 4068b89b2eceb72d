"""The papers' building blocks: per-sample reference loops (forward and gradients), ONNX with a
dynamic batch, gradchecks, exact Haar inversion, fixed LoG kernels, hand-counted params/FLOPs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from building_block_cases import CASES, dynamic_reference
from spdnn.backends.onnx_exporter import export_onnx, run_onnx
from spdnn.ops.dynamic import DynamicConv2dAttrs, dynamic_formulation, formulation_flops
from test_ops import single_op_graph
from torch import fx

import spdnn


def build(op, attrs, shapes, seed=0):
    g = single_op_graph(op, attrs, shapes)
    return g, spdnn.build_torch(g, seed=seed).eval()


DYN = {"out_channels": 4, "kernel_size": 3, "repository_size": 5, "padding": 1}


FORMULATIONS = ["linearity", "grouped"]
#: dynamic convs with their per-sample reference: plain, and stride / "same" (pads 0,1 | 2,2)
#: / dilation / 3-d coefficients
DYN_REFERENCE_CASES = [
    ({**DYN, "bias": True}, [(3, 8, 8), (20,)], lambda m, x, w: dynamic_reference(m, x, w, padding=1)),
    ({"out_channels": 3, "kernel_size": [3, 5], "stride": 2, "padding": "same", "bias": True},
     [(2, 8, 9), (3, 3)], lambda m, x, w: dynamic_reference(m, F.pad(x, (2, 2, 0, 1)), w, stride=2)),
    ({"out_channels": 2, "kernel_size": 2, "dilation": 2, "repository_size": 4}, [(3, 7, 6), (8,)],
     lambda m, x, w: dynamic_reference(m, x, w, dilation=2)),
]


def with_formulation(module, formulation):
    """The built module with its dynamic conv forced to ``formulation`` (both are exact)."""
    module.op.formulation = formulation
    return module


@pytest.mark.parametrize("formulation", FORMULATIONS)
@pytest.mark.parametrize("attrs,shapes,reference", DYN_REFERENCE_CASES)
def test_dynamic_conv_equals_per_sample_loop_forward_and_gradients(formulation, attrs, shapes, reference):
    g, m = build("dynamic_conv2d", attrs, shapes)
    m = with_formulation(m, formulation).double()
    x = torch.randn(4, *shapes[0], dtype=torch.double, requires_grad=True)
    w = torch.randn(4, *shapes[1], dtype=torch.double, requires_grad=True)
    got = m(x, w)
    want = reference(m.op, x, w)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
    seed = torch.randn_like(got)
    tensors = [x, w, *m.parameters()]
    grads = torch.autograd.grad((got * seed).sum(), tensors)
    refs = torch.autograd.grad((want * seed).sum(), tensors)
    for a, b in zip(grads, refs):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_each_dynamic_formulation_passes_gradcheck_and_traces_at_any_batch(formulation):
    attrs, shapes, _ = DYN_REFERENCE_CASES[1]
    g, m = build("dynamic_conv2d", attrs, shapes)
    m = with_formulation(m, formulation).double()
    xs = [torch.randn(2, *s, dtype=torch.double, requires_grad=True) for s in shapes]
    assert torch.autograd.gradcheck(m, xs, eps=1e-6, atol=1e-4)
    assert torch.autograd.gradcheck(lambda *p: m(*xs), list(m.parameters()), eps=1e-6, atol=1e-4)
    traced = fx.symbolic_trace(m)
    for batch in (1, 5):  # the grouped form's group count is the batch, read at run time
        ins = [torch.randn(batch, *s, dtype=torch.double) for s in shapes]
        with torch.no_grad():
            assert torch.equal(traced(*ins), m(*ins))


# (in shape, coefficient shape, attrs, formulation): FLOPs per sample, linearity vs grouped
PICKED = [
    # bench/dynamic_conv.py: 32 -> 32 channels, M = 32, 32x32; taps 288, 1024 pixels:
    # linearity 1024 * (32*288 + 32*32) = 10_485_760 > grouped 1024*32*288 + 32*32*288 = 9_732_096
    ((32, 32, 32), (1024,), {"out_channels": 32, "kernel_size": 3, "padding": 1}, "grouped"),
    # cifar_dynamic conv1: 3 -> 64, M = 64 on 32x32 (taps 27): linearity 1024 * (1728 + 4096) > grouped
    ((3, 32, 32), (4096,), {"out_channels": 64, "kernel_size": 3, "padding": 1}, "grouped"),
    # cifar_dynamic conv4: 256 -> 256, M = 256, 4x4 output (taps 2304): the synthesis,
    # 256*256*2304 per sample, dwarfs 16 pixels of mixing
    ((256, 8, 8), (65536,), {"out_channels": 256, "kernel_size": 3, "stride": 2, "padding": 1}, "linearity"),
    # mnist_dynamic conv2: 5 -> 5, M = 5, 5x5 kernel, 8x8 output (taps 125):
    # linearity 64 * (625 + 25) = 41_600 < grouped 64*625 + 25*125 = 43_125
    ((5, 12, 12), (25,), {"out_channels": 5, "kernel_size": 5}, "linearity"),
    # M = 2 < out_channels = 5 (mnist_dynamic variant s = 2): mixing the 2 maps is cheaper
    ((1, 28, 28), (10,), {"out_channels": 5, "kernel_size": 5, "repository_size": 2}, "linearity"),
]


@pytest.mark.parametrize("x_shape,w_shape,attrs,formulation", PICKED)
def test_torch_lowering_picks_the_formulation_with_fewer_flops(x_shape, w_shape, attrs, formulation):
    g = single_op_graph("dynamic_conv2d", attrs, [x_shape, w_shape])
    assert spdnn.build_torch(g).op.formulation == formulation


def test_formulation_flops_match_hand_counts():
    a = DynamicConv2dAttrs(out_channels=4, kernel_size=3, repository_size=5)
    # 3 input channels: taps 27; 64 output pixels
    assert formulation_flops(a, 3, 64) == {"linearity": 2 * 64 * (5 * 27 + 4 * 5),
                                           "grouped": 2 * (64 * 4 * 27 + 4 * 5 * 27)}
    assert dynamic_formulation(a, 3, 64) == "grouped" and dynamic_formulation(a, 3, 1) == "linearity"


def test_swapping_which_sample_generates_the_filters_changes_the_output():
    """Seed 000 §4.4.2's check: filters generated from another image give another output."""
    g, m = build("dynamic_conv2d", DYN, [(3, 8, 8), (20,)])
    x, w = torch.randn(2, 3, 8, 8), torch.randn(2, 20)
    with torch.no_grad():
        own, swapped = m(x, w), m(x, w.flip(0))
    assert (own - swapped).abs().amax(dim=(1, 2, 3)).min() > 1e-3
    assert torch.allclose(m(x[:1], w[1:]), swapped[:1], atol=1e-6)


def test_repository_is_orthogonally_initialised_and_coefficients_may_be_3d():
    g, m = build("dynamic_conv2d", {"out_channels": 2, "kernel_size": 3, "repository_size": 4}, [(2, 5, 5), (2, 4)])
    basis = m.op.weight.detach().reshape(4, -1)
    assert torch.allclose(basis @ basis.T, torch.eye(4), atol=1e-5)
    assert g.out_types("op")[0].shape == ("N", 2, 3, 3)


@pytest.mark.parametrize("op,attrs,shapes", [
    ("dynamic_conv2d", DYN, [(3, 8, 8), (20,)]),
    ("sample_conv2d", {"padding": "same", "stride": 2}, [(3, 7, 7), (2, 3, 3, 3)]),
])
def test_one_onnx_file_runs_at_batch_1_and_5(op, attrs, shapes):
    g, m = build(op, attrs, shapes)
    model = export_onnx(g, m.state_dict()).SerializeToString()
    for batch in (1, 5):
        xs = [torch.randn(batch, *s) for s in shapes]
        with torch.no_grad():
            want = m(*xs).numpy()
        outs, _ = run_onnx(model, [x.numpy() for x in xs], ["CPUExecutionProvider"])
        (got,) = outs.values()
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("op,attrs,shapes,ref", CASES, ids=[c[0] for c in CASES])
def test_onnx_parity_at_batch_1(op, attrs, shapes, ref):
    g, m = build(op, attrs, shapes)
    model = export_onnx(g, m.state_dict()).SerializeToString()
    xs = [torch.randn(1, *s) for s in shapes]
    with torch.no_grad():
        want = m(*xs)
    outs, _ = run_onnx(model, [x.numpy() for x in xs], ["CPUExecutionProvider"])
    for w, got in zip(want if isinstance(want, tuple) else (want,), outs.values(), strict=True):
        np.testing.assert_allclose(got, w.numpy(), atol=1e-5, rtol=1e-4)


GRADCHECK = [
    ("dynamic_conv2d", {"out_channels": 2, "kernel_size": 3, "repository_size": 3, "bias": True}, [(2, 4, 4), (6,)]),
    ("dynamic_conv2d", {"out_channels": 2, "kernel_size": [2, 3], "stride": 2, "padding": "same"}, [(1, 5, 4), (2, 2)]),
    ("sample_conv2d", {"padding": 1, "stride": 2}, [(2, 4, 4), (2, 2, 3, 3)]),
    ("haar_pool", {}, [(2, 4, 4)]),
    ("haar_unpool", {}, [(1, 2, 3)] * 4),
    ("log_filter_bank", {"sigmas": [0.8]}, [(1, 5, 5)]),
    ("minibatch_discrimination", {"num_kernels": 3, "kernel_dim": 2}, [(4,)]),
    ("repeat_code", {"size": [2, 3]}, [(3,)]),
    ("wct", {"alpha": 0.7}, [(3, 4, 4), (3, 3, 5)]),
]


@pytest.mark.parametrize("op,attrs,shapes", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck_on_small_double_inputs(op, attrs, shapes):
    g, m = build(op, attrs, shapes)
    m = m.double()
    torch.manual_seed(0)
    xs = [torch.randn(2, *s, dtype=torch.double, requires_grad=True) for s in shapes]

    def f(*inputs):
        out = m(*inputs)
        return out if isinstance(out, tuple) else (out,)

    assert torch.autograd.gradcheck(f, xs, eps=1e-6, atol=1e-4)
    params = [p for p in m.parameters()]
    if params:  # the trainable tensors too (the filter repository, minibatch kernels)
        assert torch.autograd.gradcheck(lambda *p: f(*xs), params, eps=1e-6, atol=1e-4)


def test_haar_synthesis_of_analysis_is_exactly_the_input():
    g = spdnn.Graph("haar")
    g.add_node("x", "input", {"shape": [3, 8, 6]})
    g.add_node("pool", "haar_pool", {}, ["x"])
    g.add_node("unpool", "haar_unpool", {}, [("pool", 0), ("pool", 1), ("pool", 2), ("pool", 3)])
    g.add_node("y", "output", {}, ["unpool"])
    g.add_node("skip", "output", {}, [("pool", 3)])
    m = spdnn.build_torch(g)
    x = torch.randint(-64, 64, (2, 3, 8, 6)).float() / 8  # dyadic: every sum is exact
    y, hh = m(x)
    assert torch.equal(y, x) and hh.shape == (2, 3, 4, 3)
    outs, _ = run_onnx(export_onnx(g, m.state_dict()).SerializeToString(), [x.numpy()], ["CPUExecutionProvider"])
    np.testing.assert_array_equal(outs["y"], x.numpy())
    xr = torch.randn(2, 3, 8, 6)
    assert torch.allclose(m(xr)[0], xr, atol=1e-6)


def test_log_filter_bank_kernels_are_the_papers_fixed_buffers():
    g, m = build("log_filter_bank", {}, [(3, 32, 32)])
    bank = m.op
    assert [getattr(bank, f"kernel{s}").shape[-1] for s in range(3)] == [7, 13, 27]
    assert list(m.parameters()) == [] and g.meta_of("op")["params"] == 0
    assert {"op.kernel0", "op.kernel1", "op.kernel2"} <= set(m.state_dict())
    for s, sigma in enumerate((0.8, 1.6, 3.2)):
        k = getattr(bank, f"kernel{s}")[0, 0]
        r = k.shape[-1] // 2
        assert math.isclose(float(k[r, r]), -1 / (math.pi * sigma ** 2), rel_tol=1e-6)  # -2 g(0)
        x2 = 1.0  # one pixel right of centre: -(2 - 1/σ²) exp(-1/(2σ²)) / (2πσ²)
        want = -(2 - x2 / sigma ** 2) * math.exp(-x2 / (2 * sigma ** 2)) / (2 * math.pi * sigma ** 2)
        assert math.isclose(float(k[r, r + 1]), want, rel_tol=1e-6)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    m(x).sum().backward()
    assert x.grad is not None and g.out_types("op")[0].shape == ("N", 9, 32, 32)


def test_wct_colours_content_with_the_style_covariance_and_is_refused_by_onnx():
    g, m = build("wct", {"eps": 1e-6}, [(3, 6, 6), (3, 5, 5)])
    m = m.double()
    content = torch.randn(2, 3, 6, 6, dtype=torch.double)
    style = torch.randn(2, 3, 5, 5, dtype=torch.double) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1) + 3
    y = m(content, style).reshape(2, 3, -1)
    s = style.reshape(2, 3, -1)
    for n in range(2):
        assert torch.allclose(torch.cov(y[n]), torch.cov(s[n]), atol=1e-4)
        assert torch.allclose(y[n].mean(1), s[n].mean(1), atol=1e-6)
    with pytest.raises(spdnn.ExportError, match="op 'wct' cannot be exported to ONNX: .*eigendecomposition"):
        export_onnx(g, m.state_dict())


def test_minibatch_features_depend_on_the_rest_of_the_batch():
    g, m = build("minibatch_discrimination", {"num_kernels": 4, "kernel_dim": 2}, [(6,)])
    x = torch.randn(3, 6)
    with torch.no_grad():
        alone, together = m(x[:1]), m(x)
    assert torch.allclose(alone[0, 6:], torch.ones(4))  # only itself: exp(0) per kernel
    assert (together[0, 6:] > 1).all() and torch.equal(together[:, :6], x)


# (op, attrs, input shapes, params, flops), counted by hand
COUNTS = [
    # repository 5 x (3x3x3) + 4 biases; conv to 5 maps (8x8) 2*64*5*27 + mixing 2*64*4*5
    ("dynamic_conv2d", {**DYN, "bias": True}, [(3, 8, 8), (20,)], 5 * 27 + 4, 2 * 64 * 5 * 27 + 2 * 64 * 4 * 5),
    # 4 filters of 2x3x3 per sample over a 6x6 output
    ("sample_conv2d", {"padding": 1}, [(2, 6, 6), (4, 2, 3, 3)], 0, 2 * 4 * 36 * 18),
    ("haar_pool", {}, [(3, 6, 8)], 0, 4 * 4 * 3 * 3 * 4),
    ("haar_unpool", {}, [(2, 3, 4)] * 4, 0, 4 * 2 * 6 * 8),
    ("log_filter_bank", {}, [(3, 10, 10)], 0, 2 * 300 * (49 + 169 + 729)),
    ("minibatch_discrimination", {"num_kernels": 5, "kernel_dim": 3}, [(6,)], 6 * 15, 2 * 6 * 15),
    ("repeat_code", {"size": [3, 4]}, [(5,)], 0, 0),
    ("wct", {}, [(3, 4, 4), (3, 2, 2)], 0, 2 * 9 * (16 + 4) + 4 * 9 * 16),
]


@pytest.mark.parametrize("op,attrs,shapes,params,flops", COUNTS, ids=[c[0] for c in COUNTS])
def test_params_and_flops_match_hand_counts(op, attrs, shapes, params, flops):
    g, m = build(op, attrs, shapes)
    meta = g.meta_of("op")
    assert (meta["params"], meta["flops"]) == (params, flops)
    assert sum(p.numel() for p in m.parameters()) == params


@pytest.mark.parametrize("op,attrs,shapes,message", [
    ("dynamic_conv2d", DYN, [(3, 8, 8), (19,)], r"coefficients must be \(N, 20\)"),
    ("dynamic_conv2d", DYN, [(3, 8, 8), (4, 4)], r"coefficients must be \(N, 4, 5\)"),
    ("sample_conv2d", {}, [(3, 8, 8), (4, 2, 3, 3)], "expect C=2 input channels, but x has 3"),
    ("sample_conv2d", {}, [(3, 2, 2), (4, 3, 3, 3)], "does not fit its 2x2 input"),
    ("haar_pool", {}, [(3, 5, 4)], "even height and width, got 5x4"),
    ("haar_unpool", {}, [(2, 3, 4), (2, 3, 4), (2, 3, 5), (2, 3, 4)], "hl input"),
    ("minibatch_discrimination", {"num_kernels": 2, "kernel_dim": 2}, [(2, 3, 3)], "put a flatten layer"),
    ("repeat_code", {"size": 2}, [(2, 3, 3)], r"expects an \(N, K\) code"),
    ("wct", {}, [(3, 4, 4), (2, 4, 4)], "same number of channels"),
])
def test_shape_rules_reject_mismatches(op, attrs, shapes, message):
    with pytest.raises(spdnn.SpecError, match=message):
        single_op_graph(op, attrs, shapes)


def test_dynamic_conv_benchmark_script_runs_in_quick_mode():
    import subprocess
    import sys

    from conftest import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "dynamic_conv.py"), "--quick"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[1:]] == ["torch fwd+bwd"] * 2 + ["tried fwd+bwd"] * 4 + ["onnxruntime fwd"]
    assert "spdnn picks grouped" in lines[0] and "dynamic (grouped) / static conv" in lines[1]
    assert "linearity, bmm / static" in lines[3]
    assert all("min" in line and "median" in line and "max" in line for line in lines[1:])


def test_yaml_spec_wires_haar_ports_by_name_and_runs_in_torch_and_onnxruntime(write):
    path = write("""
spdnn: 1
name: haar_block
description: One wavelet pooling and unpooling step of seed 001's AR-5 denoiser (Tabs. A8/A9, L505-533).
inputs:
  image: {shape: [3, 16, 16]}
layers:
  - {name: conv1, op: conv2d, out_channels: 4, kernel_size: 3, padding: 1, inputs: [image]}
  - {name: pool, op: haar_pool}
  - {name: mid, op: conv2d, out_channels: 4, kernel_size: 3, padding: 1, inputs: ["pool:ll"]}
  - {name: unpool, op: haar_unpool, inputs: ["mid", "pool:lh", "pool:hl", "pool:hh"]}
  - {name: label_map, op: repeat_code, size: 16, inputs: [label]}
  - {name: join, op: concat, inputs: [unpool, label_map]}
  - {name: log, op: log_filter_bank, sigmas: [0.8]}
outputs:
  y: log
""".replace("inputs:\n  image", "inputs:\n  label: {shape: [2]}\n  image"))
    g = spdnn.load_spec(path)
    assert g.out_types("log")[0].shape == ("N", 6, 16, 16)
    m = spdnn.build_torch(g, seed=0).eval()
    model = export_onnx(g, m.state_dict()).SerializeToString()
    for batch in (1, 3):
        xs = [torch.randn(batch, 2), torch.randn(batch, 3, 16, 16)]
        with torch.no_grad():
            want = m(*xs).numpy()
        (got,) = run_onnx(model, [x.numpy() for x in xs], ["CPUExecutionProvider"])[0].values()
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
