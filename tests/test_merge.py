"""SPDNN merging: labels of the thesis's worked examples, exact merged structures, refused
merges, resolution alignment, width budget, and that merged networks train."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT

import spdnn
from spdnn.merge import (
    MergeError,
    MergeOptions,
    contract,
    format_label,
    from_networks,
    label_from_input,
    label_from_output,
    merge_networks,
)

APPA = [spdnn.load_spec(ROOT / "specs" / "iris_appa" / f"{n}.yaml") for n in ("net1_7x7", "net2_3x3", "net3_growing")]
IRIS = [spdnn.load_spec(ROOT / "specs" / "iris" / f"p{i}.yaml") for i in (1, 2, 3, 4)]
DEPTH = [spdnn.load_spec(ROOT / "specs" / "depth" / f"net{i}.yaml") for i in range(1, 9)]


def labels(lg) -> dict[str, str]:
    return {n: format_label(lg.block(n).label) for n in lg.layers()}


def chain(name: str, layers: list[tuple], shape=(1, 32, 32)) -> spdnn.Graph:
    """A parent network from (op, attrs) pairs."""
    g = spdnn.Graph(name)
    prev = g.add_node("x", "input", {"shape": list(shape)}).name
    for i, (op, attrs) in enumerate(layers):
        prev = g.add_node(f"{op}{i}", op, attrs, [prev]).name
    g.add_node("y", "output", {}, [prev])
    spdnn.infer_shapes(g)
    return g


def conv(k, width=4, **extra):
    return ("conv2d", {"out_channels": width, "kernel_size": k, "padding": "same", **extra})


POOL2 = ("max_pool2d", {"kernel_size": 2})


# ------------------------------------------------------------------ labels
def test_app_a_input_side_labels():
    lg = label_from_input(from_networks(APPA))
    got = labels(lg)
    assert [got[f"net1_7x7__conv{i}"] for i in range(1, 9)] == [f"(7C,{i})" for i in range(1, 9)]
    assert [got[f"net2_3x3__conv{i}"] for i in range(1, 7)] == [f"(3C,{i})" for i in range(1, 7)]
    assert [got[f"net3_growing__conv{i}"] for i in range(1, 6)] == ["(3C,1)", "(5C,2)", "(7C,3)", "(9C,4)", "(11C,5)"]


def test_app_a_first_contraction_shares_3c1_and_7c3():
    first = contract(label_from_input(from_networks(APPA)))
    assert first.groups["c3_d1"] == ["net2_3x3__conv1", "net3_growing__conv1"]  # (3C,1), nets 2 and 3
    assert first.groups["c7_d3"] == ["net1_7x7__conv3", "net3_growing__conv3"]  # (7C,3) = "label C", S2 L2041
    assert first.refused == []
    g = first.graph.g
    assert sorted(g.predecessors("c7_d3")) == ["net1_7x7__conv2", "net3_growing__conv2"]
    assert sorted(g.successors("c7_d3")) == ["net1_7x7__conv4", "net3_growing__conv4"]
    assert sorted(g.successors("c3_d1")) == ["net2_3x3__conv2", "net3_growing__conv2"]
    assert len(first.graph.layers()) == 17


def test_app_a_output_side_merge_that_would_make_a_cycle_is_refused():
    # Reference 6.10(1): after pass 1 the shared (3C,1) node and net 2's second layer both get (3C,5).
    first = contract(label_from_input(from_networks(APPA)))
    relabelled = label_from_output(first.graph)
    assert format_label(relabelled.block("c3_d1").label) == "(3C,5)"
    assert format_label(relabelled.block("net2_3x3__conv2").label) == "(3C,5)"
    second = contract(relabelled, tag="o")
    refused = {(r.block, r.group) for r in second.refused}
    assert ("net2_3x3__conv2", "c3_d1") in refused
    assert len(second.graph.layers()) == 17  # every output-side merge in App. A would close a cycle


def pooled_parent(name: str, pool: int, depth: int = 4, fc: bool = False) -> spdnn.Graph:
    layers = [conv(3)]
    if pool > 1:
        layers.append(("max_pool2d", {"kernel_size": pool}))
    layers += [conv(3) for _ in range(depth - 1)]
    if pool > 1:
        layers.append(("repeat_unpool", {"factor": pool}))
    if fc:
        layers += [("flatten", {}), ("linear", {"out_features": 30})]
    else:
        layers.append(conv(3, width=1))
    return chain(name, layers)


def test_app_b_labels_carry_sticky_pooling():
    parents = [pooled_parent(f"net{i}", p) for i, p in enumerate([1, 2, 4, 8], start=1)]
    got = labels(label_from_input(from_networks(parents)))
    assert got["net1__conv2d0"] == got["net4__conv2d0"] == "(3C,1)"   # node A (L3419)
    assert got["net2__conv2d4"] == "(3C2P,4)"                          # node K (L3420-3421)
    assert got["net4__conv2d4"] == "(3C8P,4)"                          # L3401-3406
    assert got["net4__conv2d6"] == "(3C,5)"                            # the unpooling removed one pooling


def test_fully_connected_layer_clears_pooling_and_is_labelled_by_width():
    parent = chain("p", [conv(3), POOL2, conv(3), ("flatten", {}), ("linear", {"out_features": 30}),
                         ("linear", {"out_features": 10})])
    other = chain("q", [conv(5), ("flatten", {}), ("linear", {"out_features": 10})])
    got = labels(label_from_input(from_networks([parent, other])))
    assert got["p__conv2d2"] == "(3C2P,2)"
    assert got["p__linear4"] == "(30F,3)"
    assert got["p__linear5"] == "(10F,4)"


def test_unpooling_without_pooling_is_labelled_u_and_pooling_cancels_it():
    up = chain("up", [conv(3, stride=2), ("repeat_unpool", {"factor": 2}), conv(3), POOL2, conv(3, width=1),
                      ("upsample", {"scale_factor": 2})])
    got = labels(label_from_input(from_networks([up, pooled_parent("ok", 2)])))
    assert got["up__conv2d2"] == "(3C2U,2)"
    assert got["up__conv2d4"] == "(3C,3)"


# ------------------------------------------------------------------ exact structures
def test_iris_merge_structure_is_u_net_like():
    result = merge_networks(IRIS, "iris_fcdnn")
    final = result.final
    members = {n: sorted(str(m) for m in final.block(n).members) for n in final.layers()}
    assert members == {
        "c3_d1": ["iris_p1.conv1", "iris_p2.conv1", "iris_p3.conv1", "iris_p4.conv1"],
        "c5_d2": ["iris_p1.conv2", "iris_p2.conv2", "iris_p3.conv2", "iris_p4.conv2"],
        "c7_d3": ["iris_p1.conv3", "iris_p2.conv3", "iris_p3.conv3", "iris_p4.conv3"],
        "c9_d4": ["iris_p1.conv4", "iris_p2.conv4", "iris_p3.conv4", "iris_p4.conv4"],
        "c11_d5": ["iris_p2.conv5", "iris_p3.conv5", "iris_p4.conv5"],
        "c13_d6": ["iris_p3.conv6", "iris_p4.conv6"],
        "iris_p4__conv7": ["iris_p4.conv7"],
        "iris_p4__conv8": ["iris_p4.conv8"],
        "c11_o5": ["iris_p3.conv7", "iris_p4.conv9"],
        "c9_o4": ["iris_p2.conv6", "iris_p3.conv8", "iris_p4.conv10"],
        "c7_o3": ["iris_p1.conv5", "iris_p2.conv7", "iris_p3.conv9", "iris_p4.conv11"],
        "c5_o2": ["iris_p1.conv6", "iris_p2.conv8", "iris_p3.conv10", "iris_p4.conv12"],
        "c3_o1": ["iris_p1.conv7", "iris_p2.conv9", "iris_p3.conv11", "iris_p4.conv13"],
    }
    assert sorted(final.g.edges) == sorted([
        ("input", "c3_d1"), ("c3_d1", "c5_d2"), ("c5_d2", "c7_d3"), ("c7_d3", "c9_d4"),
        ("c9_d4", "c11_d5"), ("c9_d4", "c7_o3"), ("c11_d5", "c13_d6"), ("c11_d5", "c9_o4"),
        ("c13_d6", "iris_p4__conv7"), ("c13_d6", "c11_o5"), ("iris_p4__conv7", "iris_p4__conv8"),
        ("iris_p4__conv8", "c11_o5"), ("c11_o5", "c9_o4"), ("c9_o4", "c7_o3"), ("c7_o3", "c5_o2"),
        ("c5_o2", "c3_o1"), ("c3_o1", "output"),
    ])
    concats = {n.name: [str(v) for v in result.graph.inputs_of(n.name)] for n in result.graph.nodes("concat")}
    assert concats == {
        "c11_o5_concat": ["c13_d6_relu", "iris_p4__conv8_relu"],
        "c9_o4_concat": ["c11_d5_relu", "c11_o5_relu"],
        "c7_o3_concat": ["c9_d4_relu", "c9_o4_relu"],
    }
    # the four output layers merged into one: no extra head
    assert "head" not in result.graph
    assert result.graph.inputs_of("output")[0].node == "c3_o1_sigmoid"


def test_app_a_merged_structure_every_node_and_edge():
    final = merge_networks(APPA, "appa").final
    net1 = [f"net1_7x7__conv{i}" for i in (1, 2, 4, 5, 6, 7, 8)]
    net2 = [f"net2_3x3__conv{i}" for i in range(2, 7)]
    net3 = ["net3_growing__conv2", "net3_growing__conv4", "net3_growing__conv5"]
    assert sorted(final.layers()) == sorted(["c3_d1", "c7_d3", *net1, *net2, *net3])
    assert {n: [str(m) for m in final.block(n).members] for n in ("c3_d1", "c7_d3")} == {
        "c3_d1": ["net2_3x3.conv1", "net3_growing.conv1"], "c7_d3": ["net1_7x7.conv3", "net3_growing.conv3"]}

    def path(*nodes):
        return list(zip(nodes, nodes[1:]))

    assert sorted(final.g.edges) == sorted([
        *path("input", "net1_7x7__conv1", "net1_7x7__conv2", "c7_d3", *net1[2:], "output"),
        *path("input", "c3_d1", *net2, "output"),
        *path("c3_d1", "net3_growing__conv2", "c7_d3", "net3_growing__conv4", "net3_growing__conv5", "output"),
    ])


def test_app_a_merge_gets_an_output_head():
    graph = merge_networks(APPA, "appa").graph
    assert [str(v) for v in graph.inputs_of("head_concat")] == [
        "net2_3x3__conv6", "net1_7x7__conv8", "net3_growing__conv5"]  # final sigmoids moved to the head
    assert graph.node("head").attrs.out_channels == 1
    assert graph.inputs_of("output")[0].node == "head_sigmoid"
    assert [str(v) for v in graph.inputs_of("c7_d3_concat")] == ["net1_7x7__conv2_relu", "net3_growing__conv2_relu"]


def strided_pair(strided_first: bool) -> list[spdnn.Graph]:
    """Two parents whose (5C,2) layers see 32x32 and 16x16 inputs (the paper's label ignores stride)."""
    full = chain("full", [conv(3), conv(5), conv(3, width=1)])
    strided = chain("strided", [conv(7, stride=2), conv(5), conv(3, width=1), ("upsample", {"scale_factor": 2})])
    return [strided, full] if strided_first else [full, strided]


@pytest.mark.parametrize("strided_first", [True, False])
@pytest.mark.parametrize("align", ["unpool", "auto"])
def test_different_resolutions_are_aligned_before_concatenation(align, strided_first):
    # The last layers' edges to the output tie (full: none, strided: upsample): the alphabetically
    # first parent, "full", wins, whatever the order; auto aligns to full's 32x32 (a tie too).
    result = merge_networks(strided_pair(strided_first), options=MergeOptions(align=align))
    g = result.graph
    assert [n.op for n in g.nodes() if "align" in n.name] == ["repeat_unpool"]
    concat = g.inputs_of("c5_d2_concat")
    assert {g.type_of(v).shape[2:] for v in concat} == {(32, 32)}
    module = spdnn.build_torch(g)
    assert module(torch.randn(2, 1, 32, 32)).shape == (2, 1, 32, 32)


@pytest.mark.parametrize("strided_first", [True, False])
def test_misaligned_merge_reports_the_output_mismatch(strided_first):
    # align="pool" brings c5_d2 to 16x16, and the edge kept to the output ("full"'s) has no upsample
    with pytest.raises(MergeError, match=r"the merged network outputs \(1, 16, 16\), the parents \(1, 32, 32\)"):
        merge_networks(strided_pair(strided_first), options=MergeOptions(align="pool"))


def test_extended_key_keeps_layers_with_different_activations_apart():
    a = chain("a", [conv(3), ("relu", {}), conv(3, width=1)])
    b = chain("b", [conv(3), ("tanh", {}), conv(3, width=1)])
    paper = merge_networks([a, b], options=MergeOptions(output_pass=False))
    extended = merge_networks([a, b], options=MergeOptions(key="extended", output_pass=False))
    assert len(paper.final.layers()) == 2      # both layers merge on (3C,1) and (3C,2)
    assert len(extended.final.layers()) == 3   # the first layers differ in activation


@pytest.mark.parametrize("policy,width", [("max", 8), ("min", 2), ("mean", 5)])
def test_width_policy(policy, width):
    a = chain("a", [conv(3, width=8), conv(3, width=1)])
    b = chain("b", [conv(3, width=2), conv(5, width=1)])
    result = merge_networks([a, b], options=MergeOptions(width_policy=policy))
    assert result.widths["c3_d1"] == width
    assert result.graph.node("c3_d1").attrs.out_channels == width


@pytest.mark.parametrize("parents", ["appa", "iris", "depth"])
@pytest.mark.parametrize("budget", ["largest", 1_000_000])
def test_budget_lands_within_two_percent(parents, budget):
    nets = {"appa": APPA, "iris": IRIS, "depth": DEPTH}[parents]
    result = merge_networks(nets, options=MergeOptions(budget=budget))
    target = max(p for p, _ in result.parent_totals.values()) if budget == "largest" else budget
    module = spdnn.build_torch(result.graph)
    params = sum(p.numel() for p in module.parameters())
    assert params == result.summary.total_params
    assert abs(params - target) <= 0.02 * target


def test_unreachable_budget_is_a_clear_error():
    with pytest.raises(MergeError, match="cannot reach 10 parameters within 2%"):
        merge_networks(APPA, options=MergeOptions(budget=10))


def test_report_lists_origins_labels_and_reduction():
    report = merge_networks(IRIS, "iris").report()
    node = next(n for n in report["nodes"] if n["node"] == "c7_o3")
    assert node["label"] == "(7C,3)"
    assert node["input_side_labels"] == ["(7C,5)", "(7C,7)", "(7C,9)", "(7C,11)"]
    assert node["from"] == ["iris_p1.conv5", "iris_p2.conv7", "iris_p3.conv9", "iris_p4.conv11"]
    total = sum(p["params"] for p in report["parents"].values())
    assert report["sum_of_parents"]["params"] == total
    assert report["reduction_percent"]["params"] == round(100 * (1 - report["merged"]["params"] / total), 2)
    assert len(report["refused_merges"]) == 6


# ------------------------------------------------------------------ merged networks run and train
def train_bce(module, x, target, optimiser, steps: int) -> list[float]:
    """``steps`` optimiser steps of binary cross-entropy on one batch; the loss before each."""
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy(module(x), target)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("parents", ["appa", "iris", "depth"])
def test_merged_network_trains_and_runs_at_any_batch_size(parents):
    torch.manual_seed(0)
    nets, budget = {"appa": (APPA, 20_000), "iris": (IRIS, 20_000), "depth": (DEPTH, None)}[parents]
    result = merge_networks(nets, options=MergeOptions(budget=budget))
    module = spdnn.build_torch(result.graph, seed=0)
    shape = result.final.input_shape
    x = torch.rand(4, *shape)
    target = (x[:, :1] > 0.5).float()  # a learnable synthetic "segmentation"
    losses = train_bce(module, x, target, torch.optim.Adam(module.parameters(), lr=1e-3), steps=6)
    assert losses[-1] < losses[0]
    module.eval()
    with torch.no_grad():
        for batch in (1, 3):
            assert module(torch.rand(batch, *shape)).shape == (batch, 1, *shape[1:])


def test_stages_run_one_by_one_from_python():
    lg = from_networks(APPA)
    label_from_input(lg)
    first = contract(lg)
    label_from_output(first.graph)
    second = contract(first.graph, tag="o")
    from spdnn.merge import member_widths, to_network
    graph = to_network(second.graph, member_widths(second.graph))
    assert graph.structure() == merge_networks(APPA).graph.structure()


def test_layer_graph_walks_in_topological_order_with_producers_and_edges():
    lg = from_networks(DEPTH)
    walked = list(lg.walk())
    assert [n for n, _, _ in walked] == lg.order()
    for n, block, preds in walked:
        assert block is lg.block(n) and sorted(preds) == sorted(lg.predecessors(n))
        assert all(preds[u] is lg.edge(u, n) for u in preds)
    assert [(u, v) for u, v, _ in lg.edge_items()] == list(lg.edges())
    assert all(e is lg.edge(u, v) for u, v, e in lg.edge_items())
    edge = next(e for _, _, e in lg.edge_items())
    with pytest.raises(AttributeError):
        edge.parent = "other"  # edges are values: the reader shares equal ones


@pytest.mark.parametrize("parents,message", [
    ([APPA[0]], "at least two parent networks"),
    ([APPA[0], APPA[0]], "two parents are called"),
    ([APPA[0], chain("small", [conv(3, width=1)])], "parents must share one input"),
])
def test_unmergeable_parents_are_clear_errors(parents, message):
    with pytest.raises(MergeError, match=message):
        merge_networks(parents)


def test_parents_with_joins_other_than_add_and_concat_are_refused():
    g = spdnn.Graph("gate")
    g.add_node("x", "input", {"shape": [1, 8, 8]})
    g.add_node("a", "conv2d", {"out_channels": 1, "kernel_size": 3, "padding": "same"}, ["x"])
    g.add_node("s", "mul", {}, ["a", "x"])
    g.add_node("y", "output", {}, ["s"])
    spdnn.infer_shapes(g)
    with pytest.raises(MergeError, match=r"node 's' \(mul\) joins or splits paths.*'add' or channel 'concat'"):
        merge_networks([g, chain("c", [conv(3, width=1)], shape=(1, 8, 8))])


def test_app_b_depth_labels_on_the_shipped_parents():
    got = labels(label_from_input(from_networks(DEPTH)))
    assert {got[f"depth_net{i}__conv1"] for i in range(1, 9)} == {"(3C,1)"}           # A, L3419
    assert got["depth_net2__conv4"] == got["depth_net6__conv4"] == "(3C2P,4)"        # K, L3420-3421
    assert got["depth_net4__conv4"] == "(3C8P,4)"                                     # L3401-3406
    assert got["depth_net5__fc5"] == "(30F,5)"                                        # FC clears pooling
    assert got["depth_net2__conv6"] == "(3C,6)"                                       # unpooling removed 2P


def test_app_b_depth_merge_topology():
    result = merge_networks(DEPTH, "depth_spdnn")
    first = result.stages["contracted"]
    assert first.successors("c3_d1") == ["c3_d2", "c3p2_d2", "c3p4_d2", "c3p8_d2"]  # A -> B, C, D, E (L3428-3430)
    g = result.graph
    joins = {n.name: [str(v) for v in g.inputs_of(n.name)] for n in g.nodes("concat")}
    # N and O: "the outputs of nodes J, K, L, and M are concatenated" (L3444-3448)
    assert joins["f30_d5_concat"] == ["c3_d4_flatten", "c3p2_d4_flatten", "c3p4_d4_flatten", "c3p8_d4_flatten"]
    assert joins["c3_d6_concat"] == ["depth_net1__conv5_relu", "depth_net2__conv5_repeat_unpool",
                                     "depth_net3__conv5_repeat_unpool", "depth_net4__conv5_repeat_unpool"]
    assert joins["head_concat"] == ["c3_d6", "f21120_d6_reshape"]
    assert g.node("head").attrs.out_channels == 1 and g.inputs_of("output")[0].node == "head_sigmoid"
    module = spdnn.build_torch(g).eval()
    with torch.no_grad():
        assert module(torch.rand(2, 2, 80, 264)).shape == (2, 1, 80, 264)


def test_merge_restores_the_garbage_collector_and_keeps_the_programs_frozen_objects():
    """The merge pauses the cyclic collector and hands its survivors to the oldest generation
    (freeze + unfreeze); the collector's state is as before, and objects the program froze stay
    frozen (the trick is skipped then)."""
    import gc

    parents = IRIS[:2]
    assert gc.isenabled()
    merge_networks(parents, "iris")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        merge_networks(parents, "iris")
        assert not gc.isenabled()
    finally:
        gc.enable()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        merge_networks(parents, "iris")
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
