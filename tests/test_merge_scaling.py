"""Merge scaling: the benchmark's --quick mode runs and checks its own promises, and the
contraction's bitset reachability (contract.py rule 3) decides exactly what a plain graph search
on the quotient graph decides, on random parents that make it refuse merges."""

from __future__ import annotations

import re
import subprocess
import sys

import networkx as nx
import pytest
from conftest import ROOT

from spdnn.merge import contract, from_networks, label_from_input, label_from_output
from spdnn.merge.contract import _key

sys.path.insert(0, str(ROOT / "bench"))
from merge_scaling import random_parents  # noqa: E402


def test_benchmark_quick_mode_runs_the_output_side_search_and_grows():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "merge_scaling.py"), "--quick"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = re.findall(r"([\d,]+) layer nodes -> +([\d,]+) after input side -> +([\d,]+) merged; "
                      r"searches (\d+) \+ (\d+), ([\d,]+) refused", proc.stdout)
    assert [r[0] for r in rows] == ["1,000", "10,000"], proc.stdout
    for _, _, _, first, second, refused in rows:
        assert int(first) == 0 and int(second) > 0 and int(refused.replace(",", "")) > 0
    merged = [int(r[2].replace(",", "")) for r in rows]
    assert merged[1] > merged[0]
    assert re.search(r"size ratio 10\.0, time ratio [\d.]+", proc.stdout)


def reference_groups(lg, key="paper"):
    """Rule 3 done the slow, obvious way: a networkx path search on the quotient graph so far."""
    quotient = nx.DiGraph()
    group_of, members, candidates = {}, [], {}
    for n in lg.order():
        preds = {group_of[p] for p in lg.predecessors(n)}
        chosen = None
        if n not in ("input", "output"):
            for g in candidates.get(_key(lg.block(n), key), ()):
                if not any(g == p or nx.has_path(quotient, g, p) for p in preds):
                    chosen = g
                    break
        if chosen is None:
            chosen = len(members)
            members.append([])
            quotient.add_node(chosen)
            if n not in ("input", "output"):
                candidates.setdefault(_key(lg.block(n), key), []).append(chosen)
        members[chosen].append(n)
        quotient.add_edges_from((p, chosen) for p in preds)
        group_of[n] = chosen
    return members


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_output_side_contraction_matches_a_plain_path_search(seed):
    lg = label_from_input(from_networks(random_parents(300, seed=seed), "m"))
    first = contract(lg)
    assert first.searches == 0  # rule 4: input-side distances always increase along edges
    relabelled = label_from_output(first.graph)
    second = contract(relabelled, tag="o")
    assert second.searches > 0 and second.refused
    assert list(second.groups.values()) == reference_groups(relabelled)
    second.graph.order()  # acyclic
