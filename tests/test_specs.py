"""The shipped specs: shapes and parameter counts from the papers' tables, exact parity with
hand-written torch modules, training behaviour."""

from __future__ import annotations

import pytest
import torch
from conftest import SPECS, spec_cases, spec_key
from hand_written import Baseline, Classifier, Discriminator, Generator, Net3Growing

import spdnn

SPEC = {p.stem: p for p in SPECS}


def load(name: str) -> spdnn.Graph:
    return spdnn.load_spec(SPEC[name])


def conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def fc(fin, fout, bias=True):
    return fin * fout + (fout if bias else 0)



# Parameter counts derived by hand from each table's widths and kernels.
EXPECTED = {
    # seed 000 Table 4: conv 5x5 1->5, conv 5x5 5->5, FC 4*4*5 -> 10
    "mnist_baseline": (conv(1, 5, 5) + conv(5, 5, 5) + fc(80, 10), {"logits": (10,)}),
    # thesis App. H Table 1 with the authors' Lasagne batch_norm() (specs/vacgan_mnist README decision 3):
    # layers wrapped by BN lose their bias. Dense 10->1024, BN, Dense 1024->128*7*7, BN, Deconv 128->64, BN,
    # Deconv 64->1 (with bias): 6,653,889
    "generator": (fc(10, 1024, False) + 2 * 1024 + fc(1024, 6272, False) + 2 * 6272 + conv(128, 64, 5, False)
                  + 2 * 64 + conv(64, 1, 5), {"image": (1, 28, 28)}),
    # App. H Table 2, Lasagne: Conv 1->64, BN, Conv 64->128, BN, Dense 128*7*7->1024, BN (code only),
    # Dense 1024->1 (with bias): 6,632,385
    "discriminator": (conv(1, 64, 5, False) + 2 * 64 + conv(64, 128, 5, False) + 2 * 128
                      + fc(6272, 1024, False) + 2 * 1024 + fc(1024, 1), {"p_real": (1,)}),
    # App. H Table 3 with valid 3x3 convs: 28 -> 26 -> 13 -> 11 -> 5; Dense 5*5*8 -> 1024 -> 10
    "classifier": (conv(1, 16, 3) + conv(16, 8, 3) + fc(200, 1024) + fc(1024, 10), {"class_probs": (10,)}),
    # App. A parents, widths 12 / 34 / 16 (README decision 3): hidden convs without bias + BN, 1-channel output conv
    "net1_7x7": (conv(1, 12, 7, False) + 6 * conv(12, 12, 7, False) + 7 * 24 + conv(12, 1, 7),
                 {"mask": (1, 96, 128)}),
    "net2_3x3": (conv(1, 34, 3, False) + 4 * conv(34, 34, 3, False) + 5 * 68 + conv(34, 1, 3),
                 {"mask": (1, 96, 128)}),
    "net3_growing": (conv(1, 16, 3, False) + conv(16, 16, 5, False) + conv(16, 16, 7, False)
                     + conv(16, 16, 9, False) + 4 * 32 + conv(16, 1, 11), {"mask": (1, 96, 128)}),
}


# specs/building_blocks (sizes chosen small, README decisions 1-6)
EXPECTED.update({
    # linear 16 -> 8 filters x 4 base filters; repository of 4 base filters 1x3x3, no bias
    "dynamic_conv2d": (fc(16, 32) + 4 * 1 * 3 * 3, {"output": (8, 10, 10)}),
    # G: linear 16 -> 4*3*3*3; the per-sample conv's filters are an input
    "sample_conv2d": (fc(16, 108), {"output": (4, 8, 8)}),
    "haar_wavelet": (conv(3, 8, 3) + conv(8, 8, 3) + conv(8, 3, 3), {"output": (3, 16, 16)}),
    "log_filter_bank": (conv(1, 1, 3), {"output": (3, 32, 32)}),             # the LoG kernels are fixed
    "minibatch_discrimination": (512 * 100 * 5 + fc(612, 1), {"p": (1,)}),
    "repeat_code": (conv(3, 4, 3), {"output": (4, 6, 6)}),
})


def iris_parent(kernels: list[int]) -> int:
    """App. D parent (reference 6.9(d), 7.1): hidden convs without bias + BN, 3x3 1-channel output."""
    hidden = kernels[:-1]
    return (conv(1, 16, hidden[0], False) + sum(conv(16, 16, k, False) for k in hidden[1:])
            + 32 * len(hidden) + conv(16, 1, 3))


for _name, _kernels in {"p1": [3, 5, 7, 9, 7, 5, 3], "p2": [3, 5, 7, 9, 11, 9, 7, 5, 3],
                        "p3": [3, 5, 7, 9, 11, 13, 11, 9, 7, 5, 3],
                        "p4": [3, 5, 7, 9, 11, 13, 15, 13, 11, 9, 7, 5, 3]}.items():
    EXPECTED[_name] = (iris_parent(_kernels), {"mask": (1, 96, 128)})


def depth_parent(pool: int, dense: bool) -> int:
    """App. B reconstruction (specs/depth/README.md): 2-channel input, width 8, BN after every conv;
    in nets 5-8 conv4 has pool² / 8 · 8 = 1, 4, 16, 64 channels, so the FC 30 reads 21,120 features."""
    if dense:
        c4 = pool * pool
        left = conv(2, 8, 3) + 2 * conv(8, 8, 3) + conv(8, c4, 3) + 3 * 16 + 2 * c4
        return left + fc(c4 * (80 // pool) * (264 // pool), 30) + fc(30, 80 * 264)
    left = conv(2, 8, 3) + 3 * conv(8, 8, 3) + 4 * 16
    return left + conv(8, 8, 3) + 16 + conv(8, 1, 3)


for _i, (_pool, _dense) in enumerate([(p, d) for d in (False, True) for p in (1, 2, 4, 8)], start=1):
    EXPECTED[f"net{_i}"] = (depth_parent(_pool, _dense), {"depth": (1, 80, 264)})


def _from_expected_yml() -> None:
    """Specs not listed above take their hand-derived counts and shapes from their folder's
    expected.yml (checked against the compiler's summary in test_expected_values.py)."""
    import yaml

    for folder in sorted({p.parent for p in SPECS}):
        models = yaml.safe_load((folder / "expected.yml").read_text(encoding="utf-8"))["models"]
        for stem, want in models.items():
            if stem not in EXPECTED:
                EXPECTED[stem] = (want["params"], {k: tuple(v) for k, v in want["outputs"].items()})


_from_expected_yml()


def test_every_shipped_spec_has_expected_values():
    assert len(SPEC) == len(SPECS), "spec file names (stems) must be unique across specs/*/"

    assert sorted(EXPECTED) == sorted(SPEC)


@pytest.mark.parametrize("name", sorted(SPEC))
def test_parameter_counts_and_output_shapes_match_the_tables(name):
    graph = load(name)
    params, outputs = EXPECTED[name]
    assert spdnn.count_params(graph) == params
    module = spdnn.build_torch(graph, seed=0)
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == params
    for out in graph.output_nodes():
        assert graph.type_of(graph.inputs_of(out.name)[0]).sample_shape == outputs[out.name]


@pytest.mark.parametrize("name,batch", [(n, 1) for n in sorted(SPEC)] + spec_cases(
    [(n, 3) for n in sorted(SPEC)], key=lambda c: spec_key(SPEC[c[0]]), ids=lambda c: f"{c[0]}-3"))
def test_forward_at_any_batch_size_gives_inferred_shapes(name, batch):
    graph = load(name)
    module = spdnn.build_torch(graph, seed=0).eval()
    xs = [torch.randn(batch, *graph.out_types(n.name)[0].sample_shape) for n in graph.input_nodes()]
    with torch.no_grad():
        out = module(*xs)
    outs = out if isinstance(out, tuple) else (out,)
    want = EXPECTED[name][1]
    assert [tuple(o.shape) for o in outs] == [(batch, *want[n.name]) for n in graph.output_nodes()]


@pytest.mark.parametrize("name", spec_cases(sorted(SPEC), key=lambda n: spec_key(SPEC[n]), ids=str))
def test_gradients_reach_every_parameter(name):
    graph = load(name)
    module = spdnn.build_torch(graph, seed=0).train()
    xs = [torch.randn(2, *graph.out_types(n.name)[0].sample_shape, requires_grad=True) for n in graph.input_nodes()]
    out = module(*xs)  # inputs need gradients too: a spec may have no parameters (generated_layer)
    sum(o.square().mean() for o in (out if isinstance(out, tuple) else (out,))).backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_state_dict_keys_are_the_layer_names():
    module = spdnn.build_torch(load("mnist_baseline"))
    assert list(module.state_dict()) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                         "fc.weight", "fc.bias"]


def test_seed_makes_initial_weights_reproducible():
    a = spdnn.build_torch(load("classifier"), seed=7).state_dict()
    b = spdnn.build_torch(load("classifier"), seed=7).state_dict()
    c = spdnn.build_torch(load("classifier"), seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["hidden1.weight"], c["hidden1.weight"])


def test_batch_norm_uses_batch_statistics_in_train_mode_only():
    module = spdnn.build_torch(load("discriminator"), seed=0)
    x = torch.randn(4, 1, 28, 28)
    module.train()
    train_out = module(x)
    module.eval()
    assert not torch.allclose(train_out, module(x))
    assert module.bn1.num_batches_tracked.item() == 1


def test_wrong_input_shape_is_a_clear_error():
    module = spdnn.build_torch(load("mnist_baseline"))
    with pytest.raises(ValueError, match=r"input 'image' must have shape \(N, 1, 28, 28\), got \(2, 28, 28\)"):
        module(torch.randn(2, 28, 28))


# ------------------------------------------------------------------ hand-written references
@pytest.mark.parametrize("name,reference,shape", [
    ("mnist_baseline", Baseline, (1, 28, 28)),
    ("generator", Generator, (10,)),
    ("discriminator", Discriminator, (1, 28, 28)),
    ("classifier", Classifier, (1, 28, 28)),
    ("net3_growing", Net3Growing, (1, 96, 128)),
])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_outputs_equal_a_hand_written_module_with_the_same_weights(name, reference, shape, mode):
    module = spdnn.build_torch(load(name), seed=0)
    ref = reference()
    ref.load_state_dict(module.state_dict())  # same keys: submodules are named after layers
    getattr(module, mode)()
    getattr(ref, mode)()
    x = torch.randn(3, *shape)
    assert torch.equal(module(x), ref(x))
