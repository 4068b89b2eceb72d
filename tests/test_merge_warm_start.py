"""Warm start from trained parents: at step 0 the merged network's logits are the average of the
parents' logits; what it refuses."""

from __future__ import annotations

import pytest
import torch
from test_merge import IRIS, chain, conv

import spdnn
from spdnn.merge import MergeError, MergeOptions, merge_networks
from spdnn.merge.warm_start import warm_start_weights


def trained(parents):
    """Parents with seeded weights and non-trivial batch-norm statistics, in eval mode."""
    modules = {}
    for i, g in enumerate(parents):
        module = spdnn.build_torch(g, seed=i)
        with torch.no_grad():
            for mod in module.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.5, 0.5)
                    mod.running_var.uniform_(0.5, 2.0)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.2, 0.2)
        modules[g.name] = module.eval()
    return modules


def logits(module, layer, x):
    got = []
    handle = dict(module.named_modules())[layer].register_forward_hook(lambda m, i, o: got.append(o))
    with torch.no_grad():
        module(x)
    handle.remove()
    return got[0].double()


@pytest.mark.parametrize("batch", [1, 3])
def test_iris_warm_start_reproduces_the_parents_logit_average(batch):
    result = merge_networks(IRIS, "iris", MergeOptions(init_from_parents=True))
    parents = trained(IRIS)
    weights = warm_start_weights(result, {n: {k: t.numpy() for k, t in m.state_dict().items()}
                                          for n, m in parents.items()})
    merged = spdnn.build_torch(result.graph)
    merged.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()}, strict=True)
    merged.eval()
    last = {m.parent: m.layer for m in result.final.block("c3_o1").members}
    x = torch.rand(batch, 1, 96, 128, generator=torch.Generator().manual_seed(batch))
    average = sum(logits(parents[p], layer, x) for p, layer in last.items()) / len(last)
    got = logits(merged, "c3_o1", x)
    assert got.shape == (batch, 1, 96, 128)
    assert torch.allclose(got, average, atol=1e-5, rtol=0)
    assert not torch.allclose(got, logits(parents["iris_p1"], "conv7", x), atol=1e-3)


def test_warm_start_widths_are_summed_and_cost_more_parameters():
    result = merge_networks(IRIS, "iris", MergeOptions(init_from_parents=True))
    assert result.widths["c3_d1"] == 4 * 16 and result.widths["c11_d5"] == 3 * 16
    assert result.widths["c3_o1"] == 1
    assert result.report()["reduction_percent"]["params"] < 0  # larger than the parents together


def test_budget_is_refused_with_warm_start():
    with pytest.raises(MergeError, match="budget cannot be combined with init_from_parents"):
        merge_networks(IRIS, options=MergeOptions(init_from_parents=True, budget="largest"))


def test_warm_start_refuses_a_merge_that_dropped_information():
    a = chain("a", [conv(3), ("relu", {}), conv(3, width=1)])
    b = chain("b", [conv(3), ("tanh", {}), conv(3, width=1)])
    result = merge_networks([a, b], options=MergeOptions(init_from_parents=True))
    weights = {g.name: {k: t.numpy() for k, t in spdnn.build_torch(g).state_dict().items()} for g in (a, b)}
    with pytest.raises(MergeError, match="the merge dropped information .* kept activation relu"):
        warm_start_weights(result, weights)


def test_warm_start_needs_the_option():
    with pytest.raises(MergeError, match="init_from_parents=True"):
        warm_start_weights(merge_networks(IRIS), {})
