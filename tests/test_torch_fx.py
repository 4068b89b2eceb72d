"""The torch backend emits a torch.fx GraphModule: parity with the interpreter it replaced,
state dict compatibility, fx / export / compile, names, input checks, the speed benchmark."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, SPECS, spec_cases
from hand_written import DepthNet1, DepthNet6, IrisP1, MergedIris
from spdnn.backends.torch_exporter import BOUNDARY_OPS, InputShapeError, SpdnnModule, check_input
from spdnn.backends.torch_exporter.lowerings import lower
from test_ops import CASES, single_op_graph
from torch import fx, nn

import spdnn
from spdnn.errors import ExportError, SpdnnError
from spdnn.ops import get_op

SPEC = {f"{p.parent.name}/{p.stem}": p for p in SPECS}
IRIS_PARENTS = [f"iris/p{i}" for i in (1, 2, 3, 4)]


def load(name: str) -> spdnn.Graph:
    """A shipped spec by ``family/stem``, or ``iris_merged`` (the SPDNN merge of the four parents)."""
    if name == "iris_merged":
        return spdnn.merge_networks([spdnn.load_spec(SPEC[p]) for p in IRIS_PARENTS], "iris").graph
    return spdnn.load_spec(SPEC[name])


def sample_inputs(graph: spdnn.Graph, batch: int) -> list[torch.Tensor]:
    return [torch.randn(batch, *graph.out_types(n.name)[0].sample_shape) for n in graph.input_nodes()]


class PreFxInterpreter(nn.Module):
    """The torch backend before code generation, kept as the reference: one lowering per layer
    created in graph order (a submodule, or a stateless call kept aside), and a forward that walks
    the graph keeping every value until it returns."""

    def __init__(self, graph: spdnn.Graph):
        super().__init__()
        self.spdnn_graph = graph
        self.layers = {}
        for node in graph:
            if node.op not in BOUNDARY_OPS:
                in_types = [graph.type_of(v) for v in graph.inputs_of(node.name)]
                layer = lower(node, in_types, graph.out_types(node.name))
                self.layers[node.name] = layer
                if isinstance(layer, nn.Module):
                    self.add_module(node.name, layer)

    def forward(self, *xs):
        graph = self.spdnn_graph
        values = {(n.name, 0): x for n, x in zip(graph.input_nodes(), xs, strict=True)}
        for node in graph:
            if node.op in BOUNDARY_OPS:
                continue
            out = self.layers[node.name](*[values[(v.node, v.port)] for v in graph.inputs_of(node.name)])
            outs = out if get_op(node.op).num_outputs(node.attrs) > 1 else (out,)
            values.update({(node.name, port): o for port, o in enumerate(outs)})
        results = [values[(v.node, v.port)] for o in graph.output_nodes() for v in graph.inputs_of(o.name)]
        return results[0] if len(results) == 1 else tuple(results)


def reference(graph: spdnn.Graph, seed: int) -> PreFxInterpreter:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PreFxInterpreter(graph)


def as_tuple(out) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def assert_same_outputs(a, b) -> None:
    a, b = as_tuple(a), as_tuple(b)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


NETWORKS = sorted(SPEC) + ["iris_merged"]


# ------------------------------------------------------------------ parity with the old interpreter
@pytest.mark.parametrize("name", spec_cases(NETWORKS, ids=str))
def test_same_state_dict_and_outputs_as_the_pre_fx_interpreter(name):
    graph = load(name)
    module = spdnn.build_torch(graph, seed=0)
    old = reference(graph, seed=0)
    assert isinstance(module, fx.GraphModule) and isinstance(module, SpdnnModule)
    new_state, old_state = module.state_dict(), old.state_dict()
    assert list(new_state) == list(old_state)  # same keys, same order: old .pt files load
    assert all(torch.equal(new_state[k], old_state[k]) for k in old_state)  # same seed, same weights
    for mode in ("train", "eval"):
        getattr(module, mode)(), getattr(old, mode)()
        xs = sample_inputs(graph, batch=2)
        torch.manual_seed(1)  # dropout / gaussian noise draw the same numbers on both sides
        got = module(*xs)
        torch.manual_seed(1)
        assert_same_outputs(got, old(*xs))
    assert all(torch.equal(module.state_dict()[k], old.state_dict()[k]) for k in old_state)  # BN stats


def test_a_state_dict_saved_by_the_pre_fx_backend_loads():
    """tests/fixtures/depth_net1_pre_fx_state_dict.pt was saved by the interpreter-based backend
    (commit aa9404c): depth/net1, seed 0, after one training-mode forward (BN running stats)."""
    state = torch.load(ROOT / "tests" / "fixtures" / "depth_net1_pre_fx_state_dict.pt", weights_only=True)
    graph = load("depth/net1")
    module = spdnn.build_torch(graph)
    module.load_state_dict(state)  # strict
    assert state["bn1.num_batches_tracked"].item() == 1
    old = PreFxInterpreter(graph)
    old.load_state_dict(state)
    x = torch.randn(2, 2, 80, 264)
    assert torch.equal(module.eval()(x), old.eval()(x))


@pytest.mark.parametrize("reference_cls,name", [(IrisP1, "iris/p1"), (DepthNet1, "depth/net1"),
                                                (DepthNet6, "depth/net6"), (MergedIris, "iris_merged")])
def test_outputs_equal_the_hand_written_modules_of_the_benchmark(reference_cls, name):
    graph = load(name)
    module = spdnn.build_torch(graph, seed=0).eval()
    hand = reference_cls().eval()
    hand.load_state_dict(module.state_dict())
    (x,) = sample_inputs(graph, batch=2)
    with torch.no_grad():
        assert torch.equal(module(x), hand(x))


# ------------------------------------------------------------------ generated code
def test_code_names_variables_after_layers_and_frees_intermediates():
    module = spdnn.build_torch(load("dynamic_filters/mnist_baseline"))
    code = module.code
    assert "def forward(self, image):" in code
    for line in ["conv1 = self.conv1(image);  image = None", "relu1 = torch.relu(conv1);  conv1 = None",
                 "flatten = torch.flatten(pool2, 1, -1);  pool2 = None",
                 "fc = self.fc(flatten);  flatten = None", "return fc"]:
        assert line in code
    assert "check_input(image, 'mnist_baseline', 'image', (1, 28, 28))" in code


def test_only_layers_with_state_or_training_behaviour_are_submodules():
    """Stateless layers are function calls (as hand-written code has them); parameters, buffers
    and train/eval behaviour (dropout, noise) keep a submodule named after the layer."""
    module = spdnn.build_torch(load("dynamic_filters/mnist_baseline"))
    assert [name for name, _ in module.named_children()] == ["conv1", "conv2", "fc"]
    assert type(module.conv1) is nn.Conv2d  # symmetric padding: no pre-padding wrapper
    graph = spdnn.Graph("dropping")
    graph.add_node("x", "input", {"shape": [4]})
    graph.add_node("drop", "dropout", {"p": 0.5}, ["x"])
    graph.add_node("act", "relu", {}, ["drop"])
    graph.add_node("y", "output", {}, ["act"])
    module = spdnn.build_torch(graph)
    assert [name for name, _ in module.named_children()] == ["drop"]
    assert "act = torch.relu(drop)" in module.code


def two_in_two_out() -> spdnn.Graph:
    g = spdnn.Graph("two_way")
    g.add_node("a", "input", {"shape": [2, 6, 8]})
    g.add_node("b", "input", {"shape": [2, 6, 8]})
    g.add_node("s", "add", {}, ["a", "b"])
    g.add_node("pool", "max_pool2d", {"kernel_size": 2, "return_indices": True}, ["s"])
    g.add_node("unpool", "max_unpool2d", {"kernel_size": 2}, [("pool", 0), ("pool", 1)])
    g.add_node("restored", "output", {}, ["unpool"])
    g.add_node("indices", "output", {}, [("pool", 1)])
    return g


def test_inputs_by_position_or_name_and_outputs_as_a_tuple_in_declaration_order():
    module = spdnn.build_torch(two_in_two_out())
    assert module.input_names == ["a", "b"] and module.output_names == ["restored", "indices"]
    a, b = torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8)
    pooled, idx = nn.functional.max_pool2d(a + b, 2, return_indices=True)
    want = (nn.functional.max_unpool2d(pooled, idx, 2), idx)
    for got in (module(a, b), module(b=b, a=a), module(a, b=b)):
        assert isinstance(got, tuple)
        assert_same_outputs(got, want)
    assert "pool_0 = pool[0]" in module.code and "pool_1 = pool[1]" in module.code
    with pytest.raises(TypeError, match="'b'"):
        module(a)


def test_deepcopy_keeps_the_class_and_the_names():
    module = spdnn.build_torch(two_in_two_out())
    copied = copy.deepcopy(module)
    assert isinstance(copied, SpdnnModule)
    assert (copied.graph_name, copied.input_names, copied.output_names) == ("two_way", ["a", "b"],
                                                                            ["restored", "indices"])


# ------------------------------------------------------------------ names
def chain(layer: str, input_name: str = "x") -> spdnn.Graph:
    g = spdnn.Graph("names")
    g.add_node(input_name, "input", {"shape": [3]})
    g.add_node(layer, "linear", {"out_features": 2}, [input_name])
    g.add_node("y", "output", {}, [layer])
    return g


@pytest.mark.parametrize("layer,input_name", [("input", "max"), ("max", "input"), ("_hidden", "x"),
                                              ("print", "id"), ("torch", "x"), ("check_x", "x")])
def test_layer_and_input_names_that_shadow_builtins_or_start_with_underscore_work(layer, input_name):
    module = spdnn.build_torch(chain(layer, input_name), seed=0)
    assert list(module.state_dict()) == [f"{layer}.weight", f"{layer}.bias"]
    x = torch.randn(4, 3)
    want = nn.functional.linear(x, module.get_submodule(layer).weight, module.get_submodule(layer).bias)
    assert torch.equal(module(x), want)
    assert torch.equal(module(**{input_name: x}), want)
    assert torch.equal(fx.symbolic_trace(module)(x), want)


@pytest.mark.parametrize("layer", ["forward", "training", "code", "graph", "graph_name", "input_names",
                                   "_modules", "_parameters", "meta", "state_dict", "recompile"])
def test_layer_names_that_are_module_attributes_are_refused_naming_the_layer(layer):
    with pytest.raises(ExportError, match=f"layer name '{layer}' is an attribute of the generated torch module"):
        spdnn.build_torch(chain(layer))


def test_an_input_named_self_is_refused():
    with pytest.raises(ExportError, match="input 'self' cannot be an argument"):
        spdnn.build_torch(chain("fc", input_name="self"))


# ------------------------------------------------------------------ input checks
def test_wrong_input_shape_is_an_input_shape_error_with_the_expected_shape():
    module = spdnn.build_torch(load("dynamic_filters/mnist_baseline"))
    message = r"mnist_baseline: input 'image' must have shape \(N, 1, 28, 28\), got \(2, 1, 28, 27\)"
    for run in (module, fx.symbolic_trace(module)):
        with pytest.raises(InputShapeError, match=message) as caught:
            run(torch.randn(2, 1, 28, 27))
        assert isinstance(caught.value, ValueError) and isinstance(caught.value, SpdnnError)
    with pytest.raises(InputShapeError, match=r"must have shape \(N, 1, 28, 28\), got \(28, 28\)"):
        module(torch.randn(28, 28))


def test_the_input_check_is_traced_not_run_by_symbolic_trace():
    module = spdnn.build_torch(two_in_two_out())
    traced = fx.symbolic_trace(module)
    checks = [n for n in traced.graph.nodes if n.target is check_input]
    assert [n.args[2] for n in checks] == ["a", "b"]
    traced.graph.eliminate_dead_code()  # the check has a side effect: dead code elimination keeps it
    assert sum(n.target is check_input for n in traced.graph.nodes) == 2


def test_the_input_check_does_not_break_a_full_graph_compile_and_still_fires():
    module = spdnn.build_torch(load("dynamic_filters/mnist_baseline")).eval()
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(compiled(x), module(x))
    with pytest.raises(Exception, match=r"input 'image' must have shape \(N, 1, 28, 28\)"):
        compiled(torch.randn(2, 1, 28, 27))


# ------------------------------------------------------------------ fx, export, compile
@pytest.mark.parametrize("name", spec_cases(NETWORKS, ids=str))
def test_symbolic_trace_and_a_full_graph_dynamo_compile_match_eager(name):
    graph = load(name)
    module = spdnn.build_torch(graph, seed=0).eval()
    xs = sample_inputs(graph, batch=1)
    with torch.no_grad():
        want = module(*xs)
        assert_same_outputs(fx.symbolic_trace(module)(*xs), want)
        torch._dynamo.reset()
        assert_same_outputs(torch.compile(module, fullgraph=True, backend="eager")(*xs), want)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_every_op_lowering_traces_and_compiles(case):
    op, attrs, shapes, _ = case
    module = spdnn.build_torch(single_op_graph(op, attrs, shapes), seed=0).eval()
    xs = [torch.randn(3, *s) for s in shapes]
    with torch.no_grad():
        want = module(*xs)
        assert_same_outputs(fx.symbolic_trace(module)(*xs), want)
        torch._dynamo.reset()
        assert_same_outputs(torch.compile(module, fullgraph=True, backend="eager")(*xs), want)


@pytest.mark.parametrize("name", ["dynamic_filters/mnist_baseline", "iris_merged", "two_in_two_out"])
def test_torch_export_works_with_a_dynamic_batch(name):
    graph = two_in_two_out() if name == "two_in_two_out" else load(name)
    module = spdnn.build_torch(graph, seed=0).eval()
    batch = torch.export.Dim("batch")
    exported = torch.export.export(module, tuple(sample_inputs(graph, batch=2)),
                                   dynamic_shapes={name: {0: batch} for name in module.input_names})
    xs = sample_inputs(graph, batch=3)
    with torch.no_grad():
        assert_same_outputs(exported.module()(*xs), module(*xs))


def test_inductor_compiles_a_small_spec():
    graph = load("vacgan_mnist/classifier")
    module = spdnn.build_torch(graph, seed=0).eval()
    (x,) = sample_inputs(graph, batch=2)
    torch._dynamo.reset()
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(module, fullgraph=True)(x), module(x))


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_inductor_compiles_every_network_in_train_and_eval_mode(name):
    graph = load(name)
    module = spdnn.build_torch(graph, seed=0)
    xs = sample_inputs(graph, batch=2)
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True)
    with torch.no_grad():
        for got, want in zip(as_tuple(compiled.eval()(*xs)), as_tuple(module.eval()(*xs)), strict=True):
            # float32 rounding of a reordered sum grows with the output's magnitude (generated_layer: ~95)
            torch.testing.assert_close(got, want, rtol=1.3e-6, atol=1e-5 * max(1.0, float(want.abs().max())))
    xs = [x.clone().requires_grad_() for x in xs]  # a network may have no parameters (generated_layer)
    as_tuple(compiled.train()(*xs))[0].sum().backward()
    assert all(p.grad is not None for p in module.parameters()) and all(x.grad is not None for x in xs)


# ------------------------------------------------------------------ benchmark script
def test_torch_vs_hand_benchmark_script_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "torch_vs_hand.py"), "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].split() == ["network", "case", "batch", "min", "median", "max"]
    rows = [line.split() for line in lines[2:]]
    # every network but the merged iris one (0.3 s a call; its parity: test_outputs_equal_the_hand_written_modules_of_the_benchmark)
    assert {r[0] for r in rows} == {"mnist_baseline", "iris_p1", "depth_net1", "depth_net6", "iris_appa_net3",
                                    "vacgan_generator", "vacgan_discriminator", "vacgan_classifier"}
    timed = [r for r in rows if r[3] != "n/a"]
    # 8 networks x 2 cases; G and D (batch norm on a Dense layer) cannot train on one sample
    assert len(timed) == 14 and all(float(r[3]) > 0 for r in timed)
