"""No silent choices: what a merge drops is reported with the winner and the rule, the parents'
order never changes the result, and per-branch ("auto") alignment."""

from __future__ import annotations

import json

import pytest
import torch
from test_merge import APPA, DEPTH, IRIS, chain, conv

import spdnn
from spdnn.backends.yaml_exporter import dump_spec
from spdnn.merge import MergeOptions, merge_networks


def two(first_act: str, second_act: str, **extra) -> list[spdnn.Graph]:
    a = chain("a", [conv(3, **extra.get("a", {})), (first_act, {}), conv(3, width=1)])
    b = chain("b", [conv(3, **extra.get("b", {})), (second_act, {}), conv(3, width=1)])
    return [a, b]


def decisions_of(parents, **options) -> list[dict]:
    return merge_networks(parents, options=MergeOptions(**options)).report()["decisions"]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_activation_tie_goes_to_the_alphabetically_first_parent_and_is_reported(order):
    parents = two("relu", "leaky_relu")
    result = merge_networks([parents[i] for i in order])
    assert result.graph.node("c3_d1_relu").op == "relu"  # "a" wins the tie, in either order
    assert result.report()["decisions"] == [{
        "where": "c3_d1", "aspect": "activation", "kept": "relu()", "winner": "a.conv2d0",
        "dropped": {"leaky_relu()": ["b.conv2d0"]},
        "rule": "tie at 1 of 2 members: alphabetically first parent"}]
    assert result.warnings() == [
        "warning: merge c3_d1: kept activation relu() from a.conv2d0, dropped leaky_relu() (b.conv2d0) "
        "[tie at 1 of 2 members: alphabetically first parent]"]
    assert "kept activation relu() from a.conv2d0" in result.report_markdown()


def test_the_majority_beats_the_alphabetical_order():
    a = chain("a", [conv(3), ("tanh", {}), conv(3, width=1)])
    b = chain("b", [conv(3), ("relu", {}), conv(3, width=1)])
    c = chain("c", [conv(3), ("relu", {}), conv(3, width=1)])
    result = merge_networks([a, b, c])
    assert result.graph.node("c3_d1_relu").op == "relu"
    (d,) = result.report()["decisions"]
    assert (d["kept"], d["winner"], d["dropped"], d["rule"]) == (
        "relu()", "b.conv2d0", {"tanh()": ["a.conv2d0"]}, "majority: 2 of 3 members")


def test_stride_padding_and_normalisation_are_reported():
    a = chain("a", [conv(3, stride=2, padding=1), ("batch_norm", {}), ("relu", {}), conv(3, width=1),
                    ("upsample", {"scale_factor": 2})])
    b = chain("b", [conv(3), ("relu", {}), conv(3, width=1)])
    got = {(d["where"], d["aspect"]): (d["kept"], d["winner"], d["dropped"]) for d in decisions_of([a, b])}
    assert got[("c3_d1", "stride")] == ("[2, 2]", "a.conv2d0", {"[1, 1]": ["b.conv2d0"]})
    assert got[("c3_d1", "padding")] == ('[1, 1]', "a.conv2d0", {'"same"': ["b.conv2d0"]})
    assert got[("c3_d1", "normalisation")][0].startswith("batch_norm(")
    assert got[("c3_d1", "normalisation")][2] == {"none": ["b.conv2d0"]}
    # the tied edge to the output: a's upsample kept, b's plain edge dropped
    assert got[("c3_d2 -> output", "unpooling")] == (
        "upsample(scale_factor=[2, 2])", "a", {"none": ["b"]})


def test_pooling_kind_on_a_collapsed_edge_is_reported():
    a = chain("a", [conv(3), ("avg_pool2d", {"kernel_size": 2}), conv(3, width=1),
                    ("repeat_unpool", {"factor": 2})])
    b = chain("b", [conv(3), ("max_pool2d", {"kernel_size": 2}), conv(3, width=1),
                    ("repeat_unpool", {"factor": 2})])
    result = merge_networks([b, a])
    assert [n.op for n in result.graph.nodes() if "pool" in n.op] == ["avg_pool2d", "repeat_unpool"]
    (d,) = result.report()["decisions"]
    assert (d["where"], d["aspect"], d["kept"], d["winner"]) == ("c3_d1 -> c3p2_d2", "pooling",
                                                                 "avg_pool2d(kernel_size=[2, 2])", "a")
    assert d["dropped"] == {"max_pool2d(kernel_size=[2, 2])": ["b"]}


@pytest.mark.parametrize("parents", ["appa", "iris", "depth", "mixed"])
def test_parent_order_never_changes_the_merged_spec(parents):
    nets = {"appa": APPA, "iris": IRIS, "depth": DEPTH[:4],
            "mixed": [*two("relu", "leaky_relu"), chain("c", [conv(5), ("tanh", {}), conv(3, width=1)])]}[parents]
    forward = merge_networks(nets, "m")
    backward = merge_networks(list(reversed(nets)), "m")
    assert dump_spec(forward.graph) == dump_spec(backward.graph)
    assert json.dumps(forward.report()) == json.dumps(backward.report())


def test_a_larger_merged_network_says_more_parameters():
    a = chain("a", [conv(3, width=1)])
    b = chain("b", [conv(5, width=1)])  # nothing merges, and the head adds a layer
    result = merge_networks([a, b])
    red = result.report()["reduction_percent"]["params"]
    assert red < 0
    assert f"{-red}% more parameters" in result.warnings()[-1]
    assert f"{-red}% more parameters" in result.report_markdown()


def test_shipped_parents_report_their_drops_or_none():
    assert "- none" in merge_networks(IRIS).report_markdown()


# ------------------------------------------------------------------ per-branch alignment
def four_resolutions() -> list[spdnn.Graph]:
    """(5C,2) layers seeing 32 (a), 16 (b, c) and 8 (d): "auto" aligns to 16, the majority."""
    return [
        chain("a", [conv(3), conv(5), conv(3, width=1)]),
        chain("b", [conv(7, stride=2), conv(5), conv(3, width=1), ("upsample", {"scale_factor": 2})]),
        chain("c", [conv(7, stride=2), conv(5), conv(3, width=1), ("upsample", {"scale_factor": 2})]),
        chain("d", [conv(9, stride=4), ("avg_pool2d", {"kernel_size": 1}), conv(5), conv(3, width=1),
                    ("upsample", {"scale_factor": 4})]),
    ]


def test_auto_alignment_pools_some_branches_and_unpools_others():
    result = merge_networks(four_resolutions())
    g = result.graph
    aligned = {str(g.inputs_of(n.name)[0]): n.op for n in g.nodes() if "align" in n.name}
    assert aligned == {"a__conv2d0": "max_pool2d", "d__conv2d0_avg_pool2d": "repeat_unpool"}
    assert {g.type_of(v).shape[2:] for v in g.inputs_of("c5_d2_concat")} == {(16, 16)}
    resolution = [d for d in result.report()["decisions"] if d["where"] == "c5_d2"]
    assert resolution == [{"where": "c5_d2", "aspect": "input resolution", "kept": "16x16", "winner": "b.conv2d1",
                           "dropped": {"32x32": ["a.conv2d1"], "8x8": ["d.conv2d2"]},
                           "rule": "majority: 2 of 4 members"}]
    module = spdnn.build_torch(g)
    assert module(torch.randn(2, 1, 32, 32)).shape == (2, 1, 32, 32)


def test_auto_alignment_pools_with_the_branch_parents_pooling_op():
    parents = four_resolutions()
    parents[0] = chain("a", [conv(3), conv(5), ("avg_pool2d", {"kernel_size": 1}), conv(3, width=1)])
    g = merge_networks(parents).graph
    assert [n.op for n in g.nodes() if "align" in n.name and "pool2d" in n.op] == ["avg_pool2d"]


def test_global_align_overrides_per_branch():
    a, b, _, d = four_resolutions()
    g = merge_networks([a, b, d], options=MergeOptions(align="unpool")).graph
    assert [n.op for n in g.nodes() if n.name.startswith("c5_d2_align")] == ["repeat_unpool", "repeat_unpool"]
    assert {g.type_of(v).shape[2:] for v in g.inputs_of("c5_d2_concat")} == {(32, 32)}
    # "pool" brings c5_d2 to 8x8; the majority edge to the output upsamples by 2 only
    with pytest.raises(spdnn.SpdnnError, match=r"outputs \(1, 16, 16\), the parents \(1, 32, 32\)"):
        merge_networks(four_resolutions(), options=MergeOptions(align="pool"))


def test_unknown_alignment_is_a_clear_error():
    with pytest.raises(spdnn.SpdnnError, match="unknown alignment 'sideways'; choose one of auto, pool, unpool"):
        merge_networks(four_resolutions(), options=MergeOptions(align="sideways"))


def _frozen(graph: spdnn.Graph, *layers: str, **options) -> spdnn.Graph:
    from spdnn.layer_options import LayerOptions

    for layer in layers:
        graph.meta_of(layer)["layer_options"] = LayerOptions(**options)
    return graph


def test_layer_options_come_from_the_winning_member_and_a_disagreement_is_reported():
    a, b = two("relu", "relu")
    c = chain("c", [conv(3), ("relu", {}), conv(3, width=1)])
    parents = [_frozen(a, "conv2d0", trainable=False), _frozen(b, "conv2d0", trainable=False), c]
    result = merge_networks(parents)
    merged = result.graph
    first = next(n.name for n in merged if n.op == "conv2d")
    assert merged.meta_of(first)["layer_options"].trainable is False  # 2 of 3 members frozen
    assert {"where": first, "aspect": "layer options", "kept": '{"trainable": false}', "winner": "a.conv2d0",
            "dropped": {"none": ["c.conv2d0"]}, "rule": "majority: 2 of 3 members"}.items() <= next(
        d for d in result.report()["decisions"] if d["aspect"] == "layer options").items()
    # The resolved spec keeps the option, so the merged network compiles with the layer frozen.
    again = spdnn.load_spec_text(dump_spec(merged))
    assert again.meta_of(first)["layer_options"].trainable is False
    module = spdnn.build_torch(again)
    assert not any(p.requires_grad for p in getattr(module, first).parameters())


def test_vote_counts_equal_keys_together_whether_or_not_they_are_one_object():
    from spdnn.merge.decisions import vote

    shared = ("relu", 1)
    items = [("d", shared), ("c", shared), ("b", ("relu", 1)), ("a", ("tanh", 2)), ("e", ("tanh", 2))]
    # ("relu", 1) three times (two objects), ("tanh", 2) twice: the majority wins despite "a"
    assert vote(items, lambda i: i[1], lambda i: i[0]) == (("b", ("relu", 1)), 3)
    ties = [("b", ("x",)), ("a", tuple(["y"]))]
    assert vote(ties, lambda i: i[1], lambda i: i[0]) == (("a", ("y",)), 1)
    assert vote([("z", 1), ("y", 1)], lambda i: i[1], lambda i: i[0]) == (("y", 1), 2)


def test_members_made_fast_by_the_merge_equal_members_made_by_hand():
    from spdnn.merge import Member
    from spdnn.merge.layer_graph import Op

    op = Op("conv2d", spdnn.get_op("conv2d").attrs.model_validate({"out_channels": 4, "kernel_size": 3}))
    made = Member._of("p", "conv1", 4, op, (), (8, 8), ("",), (), Member.variant_of(op, ()))
    by_hand = Member("p", "conv1", 4, op, (), (8, 8), ("",), ())
    assert made == by_hand and hash(made) == hash(by_hand) and str(made) == "p.conv1"
    assert made.variant() == by_hand.variant() and made.in_size == (8, 8)
    with pytest.raises(AttributeError):
        made.width = 5  # still frozen
