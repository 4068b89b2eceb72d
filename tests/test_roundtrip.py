"""Resolved specs (``<name>.yaml`` written by compile) compile again to the same graph."""

from __future__ import annotations

import pytest
import torch
from conftest import SPECS
from spdnn.backends.yaml_exporter import dump_spec

import spdnn


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_resolved_spec_compiles_to_the_same_graph(path):
    graph = spdnn.load_spec(path)
    again = spdnn.load_spec_text(dump_spec(graph), "resolved.yaml")
    assert again.name == graph.name
    # Outputs come last in a spec; passes may have added theirs among the layers (same graph).
    assert sorted(again.structure(), key=str) == sorted(graph.structure(), key=str)
    assert {n.name: again.out_types(n.name) for n in again} == {n.name: graph.out_types(n.name) for n in graph}
    assert dump_spec(again) == dump_spec(graph)  # a fixed point


@pytest.mark.parametrize("path", SPECS[:3], ids=[p.stem for p in SPECS[:3]])
def test_resolved_spec_runs_with_the_original_weights(path):
    graph = spdnn.load_spec(path)
    module = spdnn.build_torch(graph, seed=0).eval()
    again = spdnn.build_torch(spdnn.load_spec_text(dump_spec(graph)), seed=1).eval()
    again.load_state_dict(module.state_dict())
    xs = [torch.randn(2, *node.attrs.shape) for node in graph.input_nodes()]
    assert torch.equal(module(*xs), again(*xs))


def test_resolved_spec_keeps_citations_and_ports():
    text = """
name: seg
inputs: {x: {shape: [1, 8, 8], source: "Table 9"}}
layers:
  - {name: pool, op: max_pool2d, kernel_size: 2, return_indices: true, source: "L12"}
  - {name: unpool, op: max_unpool2d, kernel_size: 2, inputs: [pool, "pool:indices"]}
"""
    graph = spdnn.load_spec_text(text)
    resolved = dump_spec(graph)
    assert "inputs: [pool, 'pool:1']" in resolved
    assert "source: L12" in resolved and "source: Table 9" in resolved
    assert spdnn.load_spec_text(resolved).structure() == graph.structure()
