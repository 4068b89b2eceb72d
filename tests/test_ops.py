"""Every op: its shape rule and parameter count agree with the torch module it lowers to, and
the lowering computes what torch's own functional ops compute."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from spdnn.backends.torch_exporter import BOUNDARY_OPS, LOWERINGS, UNSUPPORTED

from building_block_cases import CASES as BUILDING_BLOCK_CASES
from building_block_cases import TESTED_ELSEWHERE

import spdnn
from spdnn.errors import ShapeError
from spdnn.ir.types import TensorType
from spdnn.ops import all_ops, get_op


def single_op_graph(op: str, attrs: dict, shapes: list[tuple[int, ...]], inputs=None) -> spdnn.Graph:
    g = spdnn.Graph(f"one_{op}")
    names = []
    for i, shape in enumerate(shapes):
        names.append(g.add_node(f"x{i}", "input", {"shape": list(shape)}).name)
    node = g.add_node("op", op, attrs, inputs or names)
    n_out = get_op(op).num_outputs(node.attrs)
    for port in range(n_out):
        g.add_node(f"y{port}", "output", {}, [("op", port)])
    spdnn.infer_shapes(g)
    return g


# (op, attrs, input sample shapes, reference(module, *inputs) -> output(s))
CASES = [
    ("conv2d", {"out_channels": 4, "kernel_size": 3}, [(2, 9, 9)],
     lambda m, x: F.conv2d(x, m.weight, m.bias)),
    ("conv2d", {"out_channels": 4, "kernel_size": [3, 5], "stride": 2, "padding": [1, 2]}, [(2, 9, 10)],
     lambda m, x: F.conv2d(x, m.weight, m.bias, stride=2, padding=(1, 2))),
    ("conv2d", {"out_channels": 4, "kernel_size": 3, "padding": "same"}, [(3, 7, 8)],
     lambda m, x: F.conv2d(x, m.weight, m.bias, padding="same")),
    # TF/Lasagne 'same' with stride 2 on an even size: the extra pixel goes bottom/right.
    ("conv2d", {"out_channels": 2, "kernel_size": 4, "stride": 2, "padding": "same"}, [(1, 8, 8)],
     lambda m, x: F.conv2d(F.pad(x, (1, 2, 1, 2)), m.weight, m.bias, stride=2)),
    ("conv2d", {"out_channels": 4, "kernel_size": 3, "padding": "valid", "dilation": 2,
                "groups": 2, "bias": False}, [(4, 11, 11)],
     lambda m, x: F.conv2d(x, m.weight, None, dilation=2, groups=2)),
    ("conv_transpose2d", {"out_channels": 3, "kernel_size": 5, "stride": 2, "padding": 2,
                          "output_padding": 1}, [(4, 7, 7)],
     lambda m, x: F.conv_transpose2d(x, m.weight, m.bias, stride=2, padding=2, output_padding=1)),
    ("conv_transpose2d", {"out_channels": 2, "kernel_size": 4, "stride": 1, "padding": 1,
                          "bias": False}, [(3, 6, 6)],
     lambda m, x: F.conv_transpose2d(x, m.weight, None, padding=1)),
    ("linear", {"out_features": 7}, [(5,)], lambda m, x: F.linear(x, m.weight, m.bias)),
    ("linear", {"out_features": 3, "bias": False}, [(4,)], lambda m, x: x @ m.weight.T),
    ("flatten", {}, [(2, 3, 4)], lambda m, x: x.reshape(x.shape[0], -1)),
    ("flatten", {"start_dim": 2}, [(2, 3, 4)], lambda m, x: x.reshape(x.shape[0], 2, 12)),
    ("reshape", {"shape": [4, -1]}, [(2, 3, 4)], lambda m, x: x.reshape(x.shape[0], 4, 6)),
    ("batch_norm", {}, [(3, 4, 4)], lambda m, x: F.batch_norm(
        x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.1, 1e-5)),
    ("batch_norm", {"eps": 0.01, "affine": False}, [(6,)], lambda m, x: F.batch_norm(
        x, m.running_mean, m.running_var, None, None, False, 0.1, 0.01)),
    ("dropout", {"p": 0.3}, [(4,)], lambda m, x: x),  # eval mode
    ("gaussian_noise", {"std": 0.05}, [(3, 4, 4)], lambda m, x: x),  # eval mode
    ("relu", {}, [(3, 4)], lambda m, x: F.relu(x)),
    ("leaky_relu", {"negative_slope": 0.2}, [(3, 4)], lambda m, x: F.leaky_relu(x, 0.2)),
    ("elu", {"alpha": 0.5}, [(3, 4)], lambda m, x: F.elu(x, 0.5)),
    ("tanh", {}, [(3, 4)], lambda m, x: torch.tanh(x)),
    ("sigmoid", {}, [(3, 4)], lambda m, x: torch.sigmoid(x)),
    ("softmax", {}, [(5,)], lambda m, x: F.softmax(x, dim=1)),
    ("softmax", {"dim": -1}, [(2, 3, 4)], lambda m, x: F.softmax(x, dim=-1)),
    ("identity", {}, [(3,)], lambda m, x: x),
    ("max_pool2d", {"kernel_size": 2}, [(3, 8, 9)], lambda m, x: F.max_pool2d(x, 2)),
    ("max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [(2, 8, 8)],
     lambda m, x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
    ("max_pool2d", {"kernel_size": 2, "return_indices": True}, [(2, 6, 6)],
     lambda m, x: F.max_pool2d(x, 2, return_indices=True)),
    ("avg_pool2d", {"kernel_size": 4, "stride": 1}, [(2, 4, 4)], lambda m, x: F.avg_pool2d(x, 4, 1)),
    ("avg_pool2d", {"kernel_size": 3, "padding": 1, "count_include_pad": False}, [(2, 7, 7)],
     lambda m, x: F.avg_pool2d(x, 3, 3, 1, count_include_pad=False)),
    ("adaptive_avg_pool2d", {"output_size": 1}, [(3, 5, 6)], lambda m, x: x.mean((2, 3), keepdim=True)),
    ("repeat_unpool", {"factor": 2}, [(2, 3, 4)],
     lambda m, x: x.repeat_interleave(2, 2).repeat_interleave(2, 3)),
    ("repeat_unpool", {"factor": [2, 3]}, [(1, 2, 2)],
     lambda m, x: x.repeat_interleave(2, 2).repeat_interleave(3, 3)),
    ("upsample", {"scale_factor": 2}, [(2, 3, 3)], lambda m, x: F.interpolate(x, scale_factor=2)),
    ("upsample", {"mode": "bilinear", "size": [7, 9]}, [(2, 3, 4)],
     lambda m, x: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False)),
    ("concat", {}, [(2, 4, 4), (3, 4, 4)], lambda m, a, b: torch.cat([a, b], 1)),
    ("concat", {"axis": -1}, [(2, 4, 1), (2, 4, 3), (2, 4, 2)], lambda m, a, b, c: torch.cat([a, b, c], 3)),
    ("add", {}, [(2, 3), (2, 3)], lambda m, a, b: a + b),
    ("mul", {}, [(2, 3), (2, 3), (2, 3)], lambda m, a, b, c: a * b * c),
    ("pad", {"padding": [1, 0, 0, 1], "mode": "reflect"}, [(2, 4, 4)],
     lambda m, x: torch.nn.ReflectionPad2d((1, 0, 0, 1))(x)),
    ("pad", {"padding": 2}, [(1, 3, 3)], lambda m, x: F.pad(x, (2, 2, 2, 2))),
    ("crop", {"size": [3, 4]}, [(2, 6, 7)], lambda m, x: x[:, :, 1:4, 1:5]),  # odd margins: extra at the end
    ("crop", {"size": [4, 4]}, [(1, 4, 4)], lambda m, x: x),
    ("pad", {"padding": [1, 2], "mode": "constant", "value": 1.5}, [(1, 3, 3)],
     lambda m, x: F.pad(x, (2, 2, 1, 1), value=1.5)),
    ("pad", {"padding": [0, 1, 2, 3], "mode": "replicate"}, [(1, 3, 3)],
     lambda m, x: F.pad(x, (0, 1, 2, 3), mode="replicate")),
    *BUILDING_BLOCK_CASES,
]


@pytest.mark.parametrize("op,attrs,shapes,ref", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_shape_rule_params_and_lowering_match_torch(op, attrs, shapes, ref):
    g = single_op_graph(op, attrs, shapes)
    module = spdnn.build_torch(g, seed=0).eval()
    xs = [torch.randn(3, *s) for s in shapes]
    with torch.no_grad():
        got = module(*xs)
        want = ref(getattr(module, "op", None), *xs)  # stateless layers have no submodule
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    inferred = g.out_types("op")
    assert len(got) == len(inferred) == len(want)
    for g_t, w_t, t in zip(got, want, inferred):
        assert tuple(g_t.shape) == (3, *t.sample_shape)
        assert torch.equal(g_t, w_t) if g_t.dtype == torch.int64 else torch.allclose(g_t, w_t, atol=1e-6)
    params = sum(p.numel() for p in module.parameters())
    assert g.meta_of("op")["params"] == params


def test_max_unpool_restores_values_at_pooled_positions():
    g = spdnn.Graph("segnet_step")
    g.add_node("x", "input", {"shape": [2, 6, 8]})
    g.add_node("pool", "max_pool2d", {"kernel_size": 2, "return_indices": True}, ["x"])
    g.add_node("unpool", "max_unpool2d", {"kernel_size": 2}, [("pool", 0), ("pool", 1)])
    g.add_node("y", "output", {}, ["unpool"])
    module = spdnn.build_torch(g)
    x = torch.randn(4, 2, 6, 8)
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(module(x), F.max_unpool2d(pooled, idx, 2))
    assert g.out_types("unpool")[0].shape == ("N", 2, 6, 8)


def test_every_op_has_a_torch_lowering_or_is_listed_unsupported():
    missing = [op for op in all_ops() if op not in LOWERINGS and op not in UNSUPPORTED
               and op not in BOUNDARY_OPS]
    assert missing == []


def test_every_op_is_covered_by_a_shape_case():
    covered = {c[0] for c in CASES} | {"max_unpool2d"} | BOUNDARY_OPS | TESTED_ELSEWHERE
    assert set(all_ops()) <= covered


def test_conv_flops_count_two_per_mac():
    g = single_op_graph("conv2d", {"out_channels": 4, "kernel_size": 3}, [(2, 5, 5)])
    assert g.meta_of("op")["flops"] == 2 * (4 * 3 * 3) * (2 * 3 * 3)


@pytest.mark.parametrize("op,attrs,shapes,message", [
    ("conv2d", {"out_channels": 2, "kernel_size": 7}, [(1, 5, 5)], "does not fit its 5x5 input"),
    ("conv2d", {"out_channels": 2, "kernel_size": 3, "in_channels": 3}, [(1, 5, 5)],
     "declares in_channels=3 but its input has 1 channels"),
    ("conv2d", {"out_channels": 2, "kernel_size": 3}, [(5,)], "conv2d expects a 4-D input"),
    ("conv2d", {"out_channels": 4, "kernel_size": 1, "groups": 2}, [(3, 2, 2)], "not divisible by groups"),
    ("linear", {"out_features": 2}, [(1, 4, 4)], "put a flatten layer before it"),
    ("linear", {"out_features": 2, "in_features": 5}, [(4,)], "declares in_features=5 but its input has 4"),
    ("reshape", {"shape": [3, 3]}, [(2, 4)], "cannot reshape"),
    ("reshape", {"shape": [3, -1]}, [(8,)], "not divisible by 3"),
    ("concat", {}, [(1, 4, 4), (1, 3, 4)], "differs from input 0's"),
    ("add", {}, [(3,), (4,)], "add needs equal shapes"),
    ("mul", {}, [(3,), (4,)], "mul needs equal shapes"),
    ("max_pool2d", {"kernel_size": 4}, [(1, 3, 3)], "pooling does not fit"),
    ("pad", {"padding": 3, "mode": "reflect"}, [(1, 3, 3)], "must be smaller than"),
    ("crop", {"size": [5, 3]}, [(1, 4, 4)], "crop to 5x3 is larger than the 4x4 input"),
    ("softmax", {"dim": 0}, [(3,)], "not a non-batch dimension"),
    ("batch_norm", {}, [(2, 3)], "expects a 2-D or 4-D input"),
    ("flatten", {"start_dim": 0}, [(3, 4)], "batch dimension 0 stays"),
])
def test_shape_rules_reject_mismatches(op, attrs, shapes, message):
    with pytest.raises(spdnn.SpecError, match=message.replace("(", r"\(")):
        single_op_graph(op, attrs, shapes)


def test_shape_rule_raises_shape_error_directly():
    conv = get_op("conv2d")
    with pytest.raises(ShapeError):
        conv.infer(conv.attrs(out_channels=1, kernel_size=9), [TensorType(("N", 1, 4, 4))])
