"""Hostile ONNX files: every import ends in a network or an SpdnnError naming the file and place.

Explicit cases (one per kind of damage found by an audit of seeded mutants), torch-exported pad
models that need constant folding, and a seeded mutation fuzzer over small torch-exported CNN,
U-Net and MLP models at opsets 11, 13 and 17 (byte flips and field mutations). Where onnxruntime
also accepts a mutant, spdnn's imported network must compute what onnxruntime computes.
"""

from __future__ import annotations

import copy
import io
import time
import tracemalloc
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper, numpy_helper
from spdnn.backends.torch_exporter import load_weights
from spdnn.frontends.onnx_importer import OnnxModelError, import_onnx
from torch import nn

import spdnn
from spdnn import limits
from spdnn.errors import SpdnnError

OPSETS = (11, 13, 17)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Flatten(), nn.Linear(4 * 4 * 4, 3))

    def forward(self, x):
        return self.f(x)


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(2, 4, 3, padding=1)
        self.mid = nn.Conv2d(4, 4, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        d = torch.relu(self.down(x))
        m = self.up(torch.relu(self.mid(nn.functional.max_pool2d(d, 2))))
        return self.out(torch.cat([d, m], 1))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x):
        return self.f(x)


class Padded(nn.Module):
    """F.pad(mode=...) before a conv; mode 'ReflectionPad2d' uses the module nn.ReflectionPad2d."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode
        self.pad = nn.ReflectionPad2d((1, 2, 3, 1)) if mode == "ReflectionPad2d" else None
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        padded = self.pad(x) if self.pad is not None else nn.functional.pad(x, (1, 2, 3, 1), mode=self.mode)
        return self.conv(padded)


SHAPES = {"cnn": (1, 8, 8), "unet": (2, 8, 8), "mlp": (6,)}
CLASSES = {"cnn": CNN, "unet": UNet, "mlp": MLP}


def export(module: nn.Module, sample_shape: tuple, opset: int) -> onnx.ModelProto:
    torch.manual_seed(0)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.randn(1, *sample_shape),), buf, dynamo=False,
                          opset_version=opset, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return onnx.load_from_string(buf.getvalue())


@pytest.fixture(scope="session")
def exported() -> dict[tuple[str, int], onnx.ModelProto]:
    """The small models, exported once per session: {(kind, opset): model}."""
    out = {}
    for kind, cls in CLASSES.items():
        torch.manual_seed(1)
        module = cls()
        for opset in OPSETS:
            out[(kind, opset)] = export(module, SHAPES[kind], opset)
    return out


def run_spdnn(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    imported = import_onnx(model)
    module = load_weights(spdnn.build_torch(imported.graph), imported.weights).eval()
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def run_ort(data: bytes, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.log_severity_level = 4
    session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def save(tmp_path, model: onnx.ModelProto, name: str = "m.onnx"):
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def node(model: onnx.ModelProto, op: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == op)


def set_attribute(n: onnx.NodeProto, attr: AttributeProto) -> None:
    kept = [a for a in n.attribute if a.name != attr.name]
    del n.attribute[:]
    n.attribute.extend([*kept, attr])


# ---------------------------------------------------------------- constant folding
@pytest.mark.parametrize("mode", ["reflect", "replicate", "ReflectionPad2d"])
@pytest.mark.parametrize("opset", OPSETS)
def test_torch_padding_models_import_and_match_torch(mode, opset):
    torch.manual_seed(0)
    module = Padded(mode).eval()
    model = export(module, (3, 8, 8), opset)
    assert {"Transpose", "ConstantOfShape"} <= {n.op_type for n in model.graph.node}  # folded at import
    imported = import_onnx(model)
    assert [n.op for n in imported.graph] == ["input", "pad", "conv2d", "output"]
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        np.testing.assert_allclose(run_spdnn(model, x.numpy()), module(x).numpy(), rtol=1e-5, atol=1e-5)


def _const_of_shape_model(shape: list[int]) -> onnx.ModelProto:
    nodes = [helper.make_node("Constant", [], ["s"], name="shape", value=numpy_helper.from_array(
                 np.array(shape, np.int64))),
             helper.make_node("ConstantOfShape", ["s"], ["c"], name="big"),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_folding_refuses_results_over_the_element_limit():
    with limits.overridden(max_elements=1000):
        with pytest.raises(spdnn.UnsupportedOpError, match=r"ConstantOfShape \(opset 17\) at node 'big': .*"
                                                            r"4,000 elements.*max_elements"):
            import_onnx(_const_of_shape_model([1000, 4]))


def test_arithmetic_on_the_batch_size_is_refused_not_folded_with_a_placeholder():
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Mul", ["s", "two"], ["s2"], name="double"),
             helper.make_node("Reshape", ["x", "s2"], ["y"], name="reshape")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", "K"])],
                              initializer=[numpy_helper.from_array(np.array([1, 1], np.int64), "two")])
    with pytest.raises(spdnn.UnsupportedOpError, match="Mul .* at node 'double': Mul computes with the batch size"):
        import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


# ---------------------------------------------------------------- explicit hostile cases
def _expect(tmp_path, model, *fragments, cls=OnnxModelError):
    path = save(tmp_path, model)
    with pytest.raises(cls) as info:
        import_onnx(path)
    text = str(info.value)
    assert str(path) in text
    for fragment in fragments:
        assert fragment in text, text
    return text


def test_initializer_data_that_does_not_match_its_dims(exported, tmp_path):
    model = copy.deepcopy(exported[("cnn", 13)])
    model.graph.initializer[0].dims[0] *= 5
    _expect(tmp_path, model, f"initializer {model.graph.initializer[0].name!r}", "bytes of raw data for dims")


@pytest.mark.parametrize("dtype", [0, 999])
def test_initializer_with_an_unknown_data_type(exported, tmp_path, dtype):
    model = copy.deepcopy(exported[("cnn", 13)])
    model.graph.initializer[1].data_type = dtype
    _expect(tmp_path, model, f"initializer {model.graph.initializer[1].name!r}", f"data type {dtype} is not")


def test_typed_field_data_that_does_not_match_its_dims(tmp_path):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3], float_data=[1.0, 2.0, 3.0])  # 3 for 12
    model = _const_of_shape_model([2, 4])
    model.graph.initializer.append(t)
    _expect(tmp_path, model, "initializer 'w'", "3 values in float_data for dims [4, 3]; 12 expected")


def test_a_node_that_lost_its_inputs(exported, tmp_path):
    model = copy.deepcopy(exported[("cnn", 13)])
    conv = node(model, "Conv")
    del conv.input[:]
    _expect(tmp_path, model, "ONNX checker rejects", f"Name: {conv.name} OpType: Conv", "input size 0")


@pytest.mark.parametrize("attr,expected", [
    (helper.make_attribute("kernel_shape", 3), "Mismatched attribute type"),
    (helper.make_attribute("kernel_shape", numpy_helper.from_array(np.array([3, 3]))), "Mismatched attribute type"),
    (helper.make_attribute("kernel_shape", [3, 3, 3]), "kernel_shape has incorrect size"),
])
def test_conv_kernel_shape_of_the_wrong_type_or_length(exported, tmp_path, attr, expected):
    model = copy.deepcopy(exported[("cnn", 13)])
    conv = node(model, "Conv")
    set_attribute(conv, attr)
    _expect(tmp_path, model, expected, conv.name, "kernel_shape")


@pytest.mark.parametrize("attr", [helper.make_attribute("alpha", [1.0, 2.0]), helper.make_attribute("beta", 2)])
def test_gemm_alpha_as_a_list_and_beta_as_an_int_are_refused(exported, tmp_path, attr):
    model = copy.deepcopy(exported[("mlp", 17)])
    gemm = node(model, "Gemm")
    set_attribute(gemm, attr)
    _expect(tmp_path, model, "Mismatched attribute type", f"{gemm.name} : {attr.name}")


def test_resize_nearest_mode_as_ints(exported, tmp_path):
    model = copy.deepcopy(exported[("unet", 17)])
    resize = node(model, "Resize")
    set_attribute(resize, helper.make_attribute("nearest_mode", [1, 2]))
    _expect(tmp_path, model, "Mismatched attribute type", f"{resize.name} : nearest_mode")


def test_missing_concat_axis(exported, tmp_path):
    model = copy.deepcopy(exported[("unet", 13)])
    concat = node(model, "Concat")
    del concat.attribute[:]
    _expect(tmp_path, model, "Required attribute 'axis' is missing", concat.name)


def test_misspelt_attribute_is_refused_not_ignored(exported, tmp_path):
    model = copy.deepcopy(exported[("cnn", 11)])
    pool = node(model, "MaxPool")
    set_attribute(pool, helper.make_attribute("ceil_mkde", 1))
    _expect(tmp_path, model, "Unrecognized attribute: ceil_mkde", pool.name)


def test_valid_attribute_the_importer_does_not_understand_names_node_and_attribute(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])
    scales = numpy_helper.from_array(np.array([2, 2], np.float32), "scales")
    n = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="nearest", axes=[2, 3])
    model = helper.make_model(helper.make_graph([n], "g", [x], [y], initializer=[scales]),
                              opset_imports=[helper.make_opsetid("", 18)])
    _expect(tmp_path, model, "Resize (opset 18) at node 'up': attribute 'axes' is not supported",
            cls=spdnn.UnsupportedOpError)


def test_input_dimensions_of_a_billion_are_refused_before_allocation(exported, tmp_path):
    model = copy.deepcopy(exported[("cnn", 17)])
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 10**9
    _expect(tmp_path, model, "input 'x'", "max_dim")


def test_too_many_nodes_are_refused(exported, tmp_path):
    with limits.overridden(onnx_nodes=3):
        _expect(tmp_path, exported[("cnn", 17)], "nodes; limit 3 (onnx_nodes)")


def _external(tmp_path, location: str, offset: int = 0, data: bytes = b"\0" * 32):
    (tmp_path / "w.bin").write_bytes(data)
    t = numpy_helper.from_array(np.ones((2, 4), np.float32), "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    t.external_data.add(key="offset", value=str(offset))
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=[t])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_external_data_past_the_end_of_its_file(tmp_path):
    _expect(tmp_path, _external(tmp_path, "w.bin", offset=16), "initializer 'w'", "runs past the end")


def test_external_data_with_a_nul_in_its_location(tmp_path):
    _expect(tmp_path, _external(tmp_path, "w.bin\0x"), "initializer 'w'", "must be a relative path")


def test_external_data_within_its_file_loads(tmp_path):
    data = np.arange(8, dtype=np.float32).tobytes()
    imported = import_onnx(save(tmp_path, _external(tmp_path, "w.bin", data=b"\0" * 4 + data, offset=4)))
    np.testing.assert_array_equal(imported.weights["fc.weight"], np.arange(8, dtype=np.float32).reshape(2, 4).T)


def test_a_node_named_result_slots_builds_and_runs(exported):
    model = copy.deepcopy(exported[("mlp", 13)])
    model.graph.node[0].name = "_result_slots"
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    np.testing.assert_allclose(run_spdnn(model, x), run_ort(model.SerializeToString(), x), rtol=1e-4, atol=1e-5)


def test_spdnn_run_reads_models_through_the_same_checks(exported, tmp_path):
    from spdnn.backends.onnx_exporter import read_model

    model = copy.deepcopy(exported[("cnn", 13)])
    model.graph.initializer[1].data_type = 999
    path = save(tmp_path, model)
    with pytest.raises(OnnxModelError, match="data type 999"):
        read_model(path)
    assert onnx.load_from_string(read_model(save(tmp_path, exported[("cnn", 13)], "ok.onnx"))) is not None


# ---------------------------------------------------------------- seeded mutation fuzzer
ATTRIBUTE_VALUES = [3, 2.5, [1, 2], [1.0], b"nearest", [b"a"], numpy_helper.from_array(np.array([1, 2]))]


@st.composite
def mutations(draw):
    kind = draw(st.sampled_from(["flip", "dims", "dtype", "attr", "drop_input", "rename"]))
    return (kind, draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6)))


def mutate(model: onnx.ModelProto, steps) -> bytes:
    """Apply field mutations to a copy of ``model``, then byte flips to its serialised bytes."""
    m = copy.deepcopy(model)
    flips = []
    for kind, a, b, c in steps:
        inits, nodes = m.graph.initializer, m.graph.node
        if kind == "flip":
            flips.append((a, b % 8))
        elif kind == "dims" and inits:
            t = inits[a % len(inits)]
            if t.dims:
                t.dims[b % len(t.dims)] = [0, 1, 2, 3, 16, 10**9, -1][c % 7]
        elif kind == "dtype" and inits:
            inits[a % len(inits)].data_type = [0, 1, 2, 6, 7, 10, 16, 999][b % 8]
        elif kind == "attr" and nodes:
            n = nodes[a % len(nodes)]
            name = n.attribute[b % len(n.attribute)].name if n.attribute and c % 3 else "axis"
            set_attribute(n, helper.make_attribute(name, ATTRIBUTE_VALUES[c % len(ATTRIBUTE_VALUES)]))
        elif kind == "drop_input" and nodes:
            n = nodes[a % len(nodes)]
            if n.input:
                del n.input[b % len(n.input)]
        elif kind == "rename" and nodes:
            nodes[a % len(nodes)].name = ["_result_slots", "forward", "", "x", "/a b/c", "0"][b % 6]
    data = bytearray(m.SerializeToString())
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    return bytes(data)


def check_mutant(tmp_path, kind: str, model: onnx.ModelProto, steps) -> None:
    data = mutate(model, steps)
    path = tmp_path / "mutant.onnx"
    path.write_bytes(data)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        imported = import_onnx(path)
    except SpdnnError as e:
        assert str(path) in str(e) or "model" in str(e)
        return
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert seconds < 20 and peak < 256 * 2**20, (seconds, peak)
    x = np.random.default_rng(0).standard_normal((2, *SHAPES[kind])).astype(np.float32)
    try:
        expected = run_ort(data, x)
    except Exception:
        return  # onnxruntime refuses the mutant; spdnn's import is checked above
    try:
        module = load_weights(spdnn.build_torch(imported.graph), imported.weights).eval()
    except SpdnnError:
        return
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def _fuzz(exported, tmp_path_factory, which, steps):
    key = sorted(exported)[which % len(exported)]
    check_mutant(tmp_path_factory.mktemp("fuzz"), key[0], exported[key], steps)


FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@settings(max_examples=60, **FUZZ)
@given(which=st.integers(0, 8), steps=st.lists(mutations(), min_size=1, max_size=3))
def test_mutants_import_or_fail_with_an_spdnn_error(exported, tmp_path_factory, which, steps):
    _fuzz(exported, tmp_path_factory, which, steps)


@pytest.mark.slow
@settings(max_examples=1200, **FUZZ)
@given(which=st.integers(0, 8), steps=st.lists(mutations(), min_size=1, max_size=4))
def test_many_mutants_import_or_fail_with_an_spdnn_error(exported, tmp_path_factory, which, steps):
    _fuzz(exported, tmp_path_factory, which, steps)


# ---------------------------------------------------------------- spdnn's model-local functions
BLOCK_SPECS = ("dynamic_conv2d", "haar_wavelet", "sample_conv2d", "minibatch_discrimination", "repeat_code")


@pytest.fixture(scope="session")
def blocks() -> dict[str, onnx.ModelProto]:
    """spdnn's exports of the building-block specs, whose multi-node ops are ai.spdnn functions."""
    from conftest import ROOT
    from spdnn.backends.onnx_exporter import export_onnx

    out = {}
    for name in BLOCK_SPECS:
        graph = spdnn.load_spec(ROOT / "specs" / "building_blocks" / f"{name}.yaml")
        out[name] = export_onnx(graph, spdnn.build_torch(graph, seed=0).state_dict())
    return out


def _function(model: onnx.ModelProto, op: str) -> onnx.FunctionProto:
    return next(f for f in model.functions if f.name == op)


def _call(model: onnx.ModelProto, op: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == op and n.domain == "ai.spdnn")


def test_a_function_body_spdnn_does_not_write_is_refused(blocks, tmp_path):
    model = copy.deepcopy(blocks["haar_wavelet"])
    body = _function(model, "haar_pool").node
    sub = next(n for n in body if n.op_type == "Sub")
    sub.op_type = "Add"  # still a valid model, computing something else
    onnx.checker.check_model(model, full_check=True)
    _expect(tmp_path, model, "ai.spdnn.haar_pool (opset 1) at node 'pool'",
            "is not the one spdnn writes for these attributes and shapes", cls=spdnn.UnsupportedOpError)


def test_a_changed_constant_in_a_function_body_is_refused(blocks, tmp_path):
    model = copy.deepcopy(blocks["repeat_code"])
    const = next(n for n in _function(model, "repeat_code").node if n.output[0].endswith(".shape"))
    shape = numpy_helper.to_array(const.attribute[0].t).copy()
    shape[1] = 1  # Expand broadcasts the code's channels anyway: valid, equivalent, but not what spdnn writes
    const.attribute[0].t.CopyFrom(numpy_helper.from_array(shape, const.attribute[0].t.name))
    onnx.checker.check_model(model, full_check=True)
    _expect(tmp_path, model, "ai.spdnn.repeat_code", "is not the one spdnn writes", cls=spdnn.UnsupportedOpError)


def test_call_attributes_must_be_the_ops_attributes_as_spdnn_writes_them(blocks, tmp_path):
    model = copy.deepcopy(blocks["dynamic_conv2d"])
    call = _call(model, "dynamic_conv2d")
    kept = [a for a in call.attribute if a.name != "bias"]  # bias=0 is the default, but spdnn writes it
    del call.attribute[:]
    call.attribute.extend(kept)
    _expect(tmp_path, model, "at node 'dynamic'", "not written as spdnn writes them", cls=spdnn.UnsupportedOpError)
    set_attribute(call, helper.make_attribute("out_channels", 0))
    _expect(tmp_path, model, "at node 'dynamic'", "out_channels", cls=spdnn.UnsupportedOpError)


def test_function_parameters_of_the_wrong_shape_are_refused(blocks, tmp_path):
    model = copy.deepcopy(blocks["minibatch_discrimination"])
    call = _call(model, "minibatch_discrimination")
    weight = next(t for t in model.graph.initializer if t.name == call.input[1])
    array = numpy_helper.to_array(weight)
    weight.CopyFrom(numpy_helper.from_array(array.reshape(array.shape[1], array.shape[0]), weight.name))
    with pytest.raises(SpdnnError, match="mbdisc"):  # the checker's shape inference, or the importer
        import_onnx(save(tmp_path, model))


@pytest.mark.parametrize("domain,op", [("ai.spdnn", "wct"), ("com.example", "dynamic_conv2d")])
def test_custom_domain_nodes_the_importer_does_not_know_are_refused_naming_op_and_domain(blocks, tmp_path, domain,
                                                                                         op):
    model = copy.deepcopy(blocks["dynamic_conv2d"])
    fn, call = _function(model, "dynamic_conv2d"), _call(model, "dynamic_conv2d")
    fn.domain = call.domain = domain
    fn.name = call.op_type = op
    if domain != "ai.spdnn":
        model.opset_import.append(helper.make_opsetid(domain, 1))
    _expect(tmp_path, model, f"{domain}.{op} (opset 1) at node 'dynamic'", f"custom domain {domain!r}",
            cls=spdnn.UnsupportedOpError)


def _calling(bodies: dict[str, list[onnx.NodeProto]], main: str) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("evil", 1)]
    functions = [helper.make_function("evil", name, ["x"], ["y"], nodes, opsets) for name, nodes in bodies.items()]
    graph = helper.make_graph([helper.make_node(main, ["x"], ["y"], domain="evil", name="call")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
    return helper.make_model(graph, opset_imports=opsets, functions=functions)


def test_functions_calling_each_other_in_a_cycle_are_refused(tmp_path):
    model = _calling({"f": [helper.make_node("g", ["x"], ["y"], domain="evil")],
                      "g": [helper.make_node("f", ["x"], ["y"], domain="evil")]}, "f")
    _expect(tmp_path, model, "calls itself")


def test_nested_function_calls_count_against_the_node_limit_before_onnx_sees_them(tmp_path):
    """40 functions each calling the next twice: 2**40 nodes inlined (onnx's checker never returned)."""
    bodies = {f"f{i}": [helper.make_node(f"f{i + 1}", ["x"], ["a"], domain="evil"),
                        helper.make_node(f"f{i + 1}", ["a"], ["y"], domain="evil")] for i in range(39)}
    bodies["f39"] = [helper.make_node("Relu", ["x"], ["y"])]
    start = time.perf_counter()
    _expect(tmp_path, _calling(bodies, "f0"), "once the calls of model-local functions are inlined", "onnx_nodes")
    assert time.perf_counter() - start < 5
    relus = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Relu", ["b"], ["y"])]
    small = {"f0": [helper.make_node("f1", ["x"], ["a"], domain="evil"), helper.make_node("f1", ["a"], ["y"], domain="evil")],
             "f1": relus}  # 5 nodes in functions, 6 once inlined
    with limits.overridden(onnx_nodes=6):
        _expect(tmp_path, _calling(small, "f0"), "custom domain 'evil'", cls=spdnn.UnsupportedOpError)
    with limits.overridden(onnx_nodes=5):
        _expect(tmp_path, _calling(small, "f0"), "over 5 nodes once the calls of model-local functions are inlined")


def test_a_large_constant_inside_a_function_body_is_refused(blocks, tmp_path):
    model = copy.deepcopy(blocks["repeat_code"])
    del model.graph.initializer[:]  # (the conv's weight would be refused first)
    with limits.overridden(max_elements=3):
        _expect(tmp_path, model, "function ai.spdnn.repeat_code ('code_map')", "max_elements")


def _mutate_functions(model: onnx.ModelProto, steps) -> bytes:
    """Mutations of the function bodies and calls, then byte flips of the whole file."""
    m = copy.deepcopy(model)
    flips = []
    for kind, a, b, c in steps:
        body = m.functions[a % len(m.functions)].node
        n = body[b % len(body)]
        if kind == "flip":
            flips.append((a * 7919 + b, c % 8))
        elif kind in ("dims", "dtype"):
            n.op_type = ["Add", "Sub", "Mul", "Relu", "Identity", "Concat"][c % 6]
        elif kind == "attr":
            name = n.attribute[c % len(n.attribute)].name if n.attribute and c % 3 else "axis"
            set_attribute(n, helper.make_attribute(name, ATTRIBUTE_VALUES[c % len(ATTRIBUTE_VALUES)]))
        elif kind == "drop_input" and n.input:
            del n.input[c % len(n.input)]
        else:
            calls = [x for x in m.graph.node if x.domain]
            call = calls[c % len(calls)]
            set_attribute(call, helper.make_attribute(call.attribute[0].name if call.attribute else "size",
                                                      ATTRIBUTE_VALUES[b % len(ATTRIBUTE_VALUES)]))
    data = bytearray(m.SerializeToString())
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    return bytes(data)


@settings(max_examples=40, **FUZZ)
@given(which=st.integers(0, len(BLOCK_SPECS) - 1), steps=st.lists(mutations(), min_size=1, max_size=3))
def test_function_mutants_import_or_fail_with_an_spdnn_error(blocks, tmp_path_factory, which, steps):
    path = tmp_path_factory.mktemp("fuzz") / "mutant.onnx"
    path.write_bytes(_mutate_functions(blocks[BLOCK_SPECS[which]], steps))
    start = time.perf_counter()
    try:
        import_onnx(path)
    except SpdnnError as e:
        assert str(path) in str(e) or "model" in str(e)
    assert time.perf_counter() - start < 20
