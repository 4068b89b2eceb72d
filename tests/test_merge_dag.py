"""SPDNN on DAG parents: a residual add, an inner channel concatenation and branches inside a
parent (layer_graph rule 5): exact labels and structures, width ties at adds, training, and
onnxruntime parity."""

from __future__ import annotations

import pytest
import torch
from test_onnx_export import assert_parity

import spdnn
from spdnn.merge import MergeError, MergeOptions, merge_networks


def net(name: str, layers: list[tuple], shape=(1, 16, 16)) -> spdnn.Graph:
    """A parent from (node, op, attrs, inputs); the last node feeds the output."""
    g = spdnn.Graph(name)
    g.add_node("x", "input", {"shape": list(shape)})
    for node, op, attrs, ins in layers:
        g.add_node(node, op, attrs, ins)
    g.add_node("y", "output", {}, [layers[-1][0]])
    spdnn.infer_shapes(g)
    return g


def conv(node, k, width, src):
    return (node, "conv2d", {"out_channels": width, "kernel_size": k, "padding": "same"}, [src])


def relu(node, src):
    return (node, "relu", {}, [src])


def head(src):
    return [("pool", "max_pool2d", {"kernel_size": 2}, [src]), conv("c3", 3, 4, "pool"), relu("r3", "c3"),
            ("flat", "flatten", {}, ["r3"]), ("fc", "linear", {"out_features": 3}, ["flat"])]


def parents() -> list[spdnn.Graph]:
    vgg = net("vgg", [conv("c1", 3, 8, "x"), relu("r1", "c1"), conv("c2", 3, 8, "r1"), relu("r2", "c2"),
                      *head("r2")])
    res = net("res", [conv("c1", 3, 4, "x"), relu("r1", "c1"), conv("c2", 3, 4, "r1"),
                      ("s", "add", {}, ["c2", "r1"]), relu("rs", "s"), *head("rs")])
    inc = net("inc", [conv("c1", 3, 4, "x"), relu("r1", "c1"), conv("b1", 1, 4, "r1"), conv("b2", 5, 4, "r1"),
                      ("cat", "concat", {}, ["b1", "b2"]), relu("rc", "cat"), *head("rc")])
    return [vgg, res, inc]


def test_dag_parents_are_labelled_with_adds_not_counted_and_concats_as_in_edges():
    result = merge_networks(parents())
    first = result.stages["parents"].structure()
    labels = {n: v["label"] for n, v in first["nodes"].items()}
    assert labels["res__s"] == "(+,2)"  # the add does not count: res.c3 is at distance 3 like vgg.c3
    assert labels["res__c3"] == labels["vgg__c3"] == labels["inc__c3"] == "(3C2P,3)"
    assert (labels["inc__b1"], labels["inc__b2"]) == ("(1C,2)", "(5C,2)")
    edges = set(map(tuple, first["edges"]))
    assert {("res__c1", "res__s"), ("res__c2", "res__s"), ("res__s", "res__c3")} <= edges
    assert {("inc__c1", "inc__b1"), ("inc__c1", "inc__b2"), ("inc__b1", "inc__c3"), ("inc__b2", "inc__c3")} <= edges


def test_residual_concat_and_vgg_parents_merge_to_the_exact_structure():
    result = merge_networks(parents())
    final = result.final.structure()
    assert {n: (v["label"], v["members"]) for n, v in final["nodes"].items()} == {
        "input": ("(input,0)", []),
        "c3_d1": ("(3C,3)", ["inc.c1", "res.c1", "vgg.c1"]),
        "inc__b1": ("(1C,3)", ["inc.b1"]),
        "inc__b2": ("(5C,3)", ["inc.b2"]),
        "c3_d2": ("(3C,3)", ["res.c2", "vgg.c2"]),
        "res__s": ("(+,2)", ["res.s"]),
        "c3p2_d3": ("(3C2P,2)", ["inc.c3", "res.c3", "vgg.c3"]),
        "f3_d4": ("(3F,1)", ["inc.fc", "res.fc", "vgg.fc"]),
        "output": ("", []),
    }
    assert [list(e) for e in final["edges"]] == [
        ["c3_d1", "c3_d2"], ["c3_d1", "inc__b1"], ["c3_d1", "inc__b2"], ["c3_d1", "res__s"],
        ["c3_d2", "c3p2_d3"], ["c3_d2", "res__s"], ["c3p2_d3", "f3_d4"], ["f3_d4", "output"],
        ["inc__b1", "c3p2_d3"], ["inc__b2", "c3p2_d3"], ["input", "c3_d1"], ["res__s", "c3p2_d3"],
    ]
    # (3C,3) twice after labelling from the output: merging them would close a cycle
    assert result.report()["refused_merges"] == ["c3_d2 not merged into c3_d1 (3C,3): the group already reaches it"]
    g = result.graph
    assert [str(v) for v in g.inputs_of("res__s")] == ["c3_d1_relu", "c3_d2"]
    concat = g.inputs_of("c3p2_d3_concat")
    assert [g.type_of(v).sample_shape for v in concat] == [(4, 8, 8), (4, 8, 8), (8, 8, 8), (8, 8, 8)]
    assert g.node("inc__b1_relu").op == "relu"  # inc's relu after its concat sits on both branches


def test_parents_in_any_order_give_the_same_dag_merge():
    a = merge_networks(parents()).graph
    b = merge_networks(parents()[::-1]).graph
    assert a.structure() == b.structure()


def test_blocks_summed_by_an_add_get_one_width_and_an_identity_skip_takes_the_input_channels():
    skip = net("skip", [conv("c1", 3, 3, "x"), ("s", "add", {}, ["c1", "x"]), conv("c2", 3, 2, "s")],
               shape=(3, 8, 8))
    wide = net("wide", [conv("c1", 3, 16, "x"), conv("c2", 3, 2, "c1")], shape=(3, 8, 8))
    g = merge_networks([skip, wide]).graph
    assert g.out_types("c3_d1")[0].sample_shape == (3, 8, 8)  # max(3, 16) = 16 overridden by the skip: 3
    assert [g.type_of(v).sample_shape for v in g.inputs_of("skip__s")] == [(3, 8, 8), (3, 8, 8)]


def test_dag_merge_trains_and_matches_onnxruntime():
    torch.manual_seed(0)
    graph = merge_networks(parents()).graph
    module = spdnn.build_torch(graph, seed=0)
    x, labels = torch.rand(8, 1, 16, 16), torch.arange(8) % 3
    optimiser = torch.optim.Adam(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(x), labels)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    module.eval()
    for batch in (1, 3):
        assert_parity(graph, batch, module)


def warm_pair() -> list[spdnn.Graph]:
    """A residual parent and an inner-concat parent whose merged layers agree on every op (their
    first layers carry a batch norm: its unused rows in the merged layer stay the identity)."""
    bn = [("n1", "batch_norm", {}, ["c1"]), relu("r1", "n1")]
    res = net("res", [conv("c1", 3, 4, "x"), *bn, conv("c2", 3, 4, "r1"),
                      ("s", "add", {}, ["c2", "r1"]), relu("rs", "s"), *head("rs")])
    inc = net("inc", [conv("c1", 3, 6, "x"), *bn, conv("b1", 1, 4, "r1"), conv("b2", 5, 3, "r1"),
                      ("cat", "concat", {}, ["b2", "b1"]), relu("rc", "cat"), *head("rc")])
    return [res, inc]


@pytest.mark.parametrize("batch", [1, 3])
def test_warm_start_of_dag_parents_reproduces_their_logit_average(batch):
    from test_merge_warm_start import trained

    from spdnn.merge.warm_start import warm_start_weights

    pair = warm_pair()
    result = merge_networks(pair, "dag", MergeOptions(init_from_parents=True))
    # the add group (c3_d1 and res.c2 summed by res.s) shares one layout: inc 0-5, res 6-9
    assert result.widths == {"c3_d1": 10, "inc__b1": 4, "inc__b2": 3, "res__c2": 10, "res__s": 10,
                             "c3p2_d3": 8, "f3_d4": 3}
    parents = trained(pair)
    weights = warm_start_weights(result, {n: {k: t.numpy() for k, t in m.state_dict().items()}
                                          for n, m in parents.items()})
    merged = spdnn.build_torch(result.graph)
    merged.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()}, strict=True)
    merged.eval()
    x = torch.rand(batch, 1, 16, 16, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        average = sum(parents[p.name](x).double() for p in pair) / 2
        got = merged(x).double()
    assert got.shape == (batch, 3)
    assert torch.allclose(got, average, atol=1e-5, rtol=0)
    assert not torch.allclose(got, parents["res"](x).double(), atol=1e-3)
    n1 = weights["c3_d1_batch_norm.running_var"]
    assert list(n1[6:]) == list(parents["res"].state_dict()["n1.running_var"].numpy())


def test_warm_start_refuses_an_identity_skip_from_the_input():
    skip = net("skip", [conv("c1", 3, 3, "x"), ("s", "add", {}, ["c1", "x"]), conv("c2", 3, 2, "s")],
               shape=(3, 8, 8))
    plain = net("plain", [conv("c1", 3, 3, "x"), conv("c2", 3, 2, "c1")], shape=(3, 8, 8))
    with pytest.raises(MergeError, match="add 'skip__s' sums the input .* every parent"):
        merge_networks([skip, plain], options=MergeOptions(init_from_parents=True))


def test_a_concat_on_another_axis_is_refused():
    bad = net("bad", [conv("c1", 3, 4, "x"), ("cat", "concat", {"axis": 2}, ["c1", "c1"]), conv("c2", 3, 3, "cat")],
              shape=(1, 8, 8))
    with pytest.raises(MergeError, match="joins on axis 2; SPDNN merging takes channel concatenations"):
        merge_networks([bad, net("ok", [conv("c1", 3, 3, "x")], shape=(1, 16, 8))])
