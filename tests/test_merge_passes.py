"""The SPDNN stages as registered passes over a MergeModule: listed by ``spdnn passes``, run one
at a time from Python, stoppable and replaceable; merge_networks is their pipeline."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import pytest
from test_merge import APPA, IRIS, labels
from test_merge_dag import parents as dag_parents

from spdnn.cli import main
from spdnn.errors import PassError
from spdnn.merge import MergeOptions, merge_networks
from spdnn.merge.pipeline import merge_pipeline
from spdnn.passes import PASSES, PassOptionsError, PassResult, run_pipeline
from spdnn.passes.spdnn import MergeModule, ModulePass

STAGES = ["spdnn-label-input", "spdnn-contract", "spdnn-label-output", "spdnn-widths", "spdnn-to-network"]


def test_spdnn_passes_lists_every_stage_with_its_rule(capsys):
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    for name in STAGES:
        first = PASSES[name].__doc__.strip().splitlines()[0]
        assert re.search(rf"^{name} +{re.escape(first)}$", out, re.M), name
    assert main(["passes", "spdnn-contract"]) == 0
    out = capsys.readouterr().out
    assert "S1 L1169-1182" in out and re.search(r"key +literal|key .*paper", out)


@pytest.mark.parametrize("parents", [APPA, IRIS, dag_parents()], ids=["appa", "iris", "dag"])
def test_stages_one_at_a_time_give_the_merge_networks_result(parents):
    module = MergeModule.of(parents)
    for stage in ["spdnn-label-input", "spdnn-contract", "spdnn-label-output", "spdnn-contract", "spdnn-widths",
                  "spdnn-to-network"]:
        run_pipeline(module, stage)
    assert module.analyses["network"].structure() == merge_networks(parents).graph.structure()
    assert [c.graph.order() for c in module.contractions] == [
        c.graph.order() for c in merge_networks(parents).contractions]


def test_stop_after_the_first_contraction_and_inspect_the_labelled_graph():
    module = MergeModule.of(APPA[::-1])  # the order given does not matter: parents are taken by name
    run_pipeline(module, "spdnn-label-input,spdnn-contract")
    assert list(module.graphs) == ["net1_7x7", "net2_3x3", "net3_growing"]
    assert module.contractions[0].groups["c3_d1"] == ["net2_3x3__conv1", "net3_growing__conv1"]
    assert labels(module.layer_graph)["c3_d1"] == "(3C,1)"
    assert "network" not in module.analyses


def test_a_user_stage_replaces_the_widths_stage():
    @dataclass(frozen=True)
    class FiveWide(ModulePass):
        """Every merged layer five wide except those feeding the output."""

        name: ClassVar[str] = "five-wide"

        def call(self, module):
            lg = module.layer_graph
            fixed = set(lg.predecessors("output"))
            module.analyses["widths"] = {n: lg.block(n).members[0].width if n in fixed else 5 for n in lg.layers()}
            return PassResult(module, True)

    module = MergeModule.of(IRIS)
    run_pipeline(module, ["spdnn-label-input", "spdnn-contract", "spdnn-label-output", "spdnn-contract",
                          FiveWide(), "spdnn-to-network"])
    g, lg = module.analyses["network"], module.layer_graph
    free = [n for n in lg.layers() if n not in lg.predecessors("output")]
    assert len(free) > 3 and {g.node(n).attrs.out_channels for n in free} == {5}


def test_stage_options_are_validated_and_a_stage_refuses_a_single_graph():
    with pytest.raises(PassOptionsError, match="pass 'spdnn-contract' option 'key'"):
        run_pipeline(MergeModule.of(IRIS), "spdnn-contract:key=wide")
    with pytest.raises(PassError, match="'spdnn-label-input' is an SPDNN merge stage: it runs on the parents"):
        run_pipeline(IRIS[0], "spdnn-label-input")
    module = MergeModule.of(IRIS)
    with pytest.raises(Exception, match="no layer graph yet: run spdnn-label-input first"):
        run_pipeline(module, "spdnn-contract")


def test_merge_options_map_to_the_stage_pipeline():
    names = [p.name for p in merge_pipeline(MergeOptions(output_pass=False, key="extended", budget=500))]
    assert names == ["spdnn-label-input", "spdnn-contract", "spdnn-widths", "spdnn-to-network"]
    passes = merge_pipeline(MergeOptions(init_from_parents=True))
    assert passes[1].key == "paper" and passes[-2].policy == "sum"
