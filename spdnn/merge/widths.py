"""Widths of merged layers and the parameter budget (thesis S2 L2055-2060, S3 L3576-3582).

Rules:
  1. A block's width (output channels or features) comes from its members' widths by a policy:
     ``max`` (default), ``min`` or ``mean`` (rounded).
  2. Blocks feeding the output and blocks followed by a reshape keep their widths (the output
     shape and the reshape's target depend on them).
  3. With a budget (a parameter count, or "largest" = the largest parent's count), every other
     width is scaled by one common factor, found by bisection, so the merged network's trainable
     parameter count lands within 2% of the budget (widths are rounded, at least 1). The thesis
     gives no procedure; a common multiplier keeps the parents' width proportions.
  4. When rounding leaves the count outside 2% (equal widths all step together, and one channel
     can be a large step), single widths are then moved by one channel at a time, each time the
     move that comes closest to the budget.
"""

from __future__ import annotations

from collections.abc import Callable

from spdnn.merge.channel_layout import summed_widths
from spdnn.merge.layer_graph import OUTPUT, LayerGraph, MergeError

__all__ = ["POLICIES", "TOLERANCE", "member_widths", "summed_widths", "fit_budget"]

POLICIES: dict[str, Callable[[list[int]], int]] = {
    "max": max,
    "min": min,
    "mean": lambda ws: max(1, round(sum(ws) / len(ws))),
}
TOLERANCE = 0.02


def member_widths(lg: LayerGraph, policy: str = "max") -> dict[str, int]:
    """Width of every layer block by ``policy`` over its members."""
    try:
        pick = POLICIES[policy]
    except KeyError:
        raise MergeError(f"unknown width policy {policy!r}; choose one of {', '.join(POLICIES)}") from None
    return {n: pick([m.width for m in lg.block(n).members]) for n in lg.layers()}


def _fixed(lg: LayerGraph) -> set[str]:
    """Blocks whose width the budget must not change: those feeding the output (their width is
    the parents' output or what the output head expects) and those followed by a reshape (the
    reshape's target shape depends on it)."""
    fixed = set(lg.predecessors(OUTPUT))
    for u, v in lg.edges():
        if any(op.op == "reshape" for op in lg.edge(u, v).transitions):
            fixed.add(u)
    return fixed


def fit_budget(lg: LayerGraph, widths: dict[str, int], budget: int,
               count: Callable[[dict[str, int]], int]) -> tuple[dict[str, int], int]:
    """Scale the free widths so that ``count(widths)`` is within 2% of ``budget``.

    Returns the widths and their parameter count; raises MergeError if no common factor gets
    within the tolerance (e.g. a budget below the smallest possible network).
    """
    fixed = _fixed(lg)

    def scaled(s: float) -> dict[str, int]:
        return {n: w if n in fixed else max(1, round(w * s)) for n, w in widths.items()}

    lo, hi = 0.0, 1.0
    while count(scaled(hi)) < budget:
        hi *= 2
        if hi > 1e4:
            raise MergeError(f"a parameter budget of {budget:,} is out of reach")
    best = (abs(count(scaled(hi)) - budget), hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        n = count(scaled(mid))
        best = min(best, (abs(n - budget), mid))
        if n < budget:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-6:
            break
    result = scaled(best[1])
    params = count(result)
    if abs(params - budget) > TOLERANCE * budget:
        result, params = _fine_tune(result, fixed, budget, count)
    if abs(params - budget) > TOLERANCE * budget:
        raise MergeError(f"cannot reach {budget:,} parameters within 2%: the closest is {params:,}")
    return result, params


def _fine_tune(widths: dict[str, int], fixed: set[str], budget: int,
               count: Callable[[dict[str, int]], int]) -> tuple[dict[str, int], int]:
    """Greedy: each round, move the one width (by +-1 channel) that brings the count closest to
    the budget; stop when no move helps or after 50 rounds."""
    params = count(widths)
    free = [n for n in widths if n not in fixed]
    for _ in range(50):
        step = 1 if params < budget else -1
        moves = [{**widths, n: widths[n] + step} for n in free if widths[n] + step >= 1]
        scored = [(abs(count(m) - budget), i) for i, m in enumerate(moves)]
        if not scored:
            break
        gap, i = min(scored)
        if gap >= abs(params - budget):
            break
        widths = moves[i]
        params = count(widths)
        if gap <= TOLERANCE * budget / 4:
            break
    return widths, params
