"""Behaviour of the seed 001 and seed 002 specs beyond counts and shapes (specs/robust_ae,
specs/filter_generation):

* seed 002: the generated layer (``sample_conv2d``) fed with the target CNN's own conv4 filters, one
  copy per sample, gives exactly the CNN's real layer-4 activation CNN^l(I) (Alg. 1 line 5);
* seed 002: D and Q share every layer but their last one (L110-111);
* seed 001: the denoiser's encoder convs have the AlexNet encoder's parameter shapes (the pre-trained
  encoder's weights load into it) and each Haar unpooling takes the details of the pooling at its own
  resolution.
"""

from __future__ import annotations

import torch
from conftest import ROOT

import spdnn

FG = ROOT / "specs" / "filter_generation"
AE = ROOT / "specs" / "robust_ae"


def test_generated_layer_with_the_real_filters_gives_the_real_activation():
    cnn = spdnn.build_torch(spdnn.load_spec(FG / "target_cnn.yaml"), seed=0).eval()
    layer = spdnn.build_torch(spdnn.load_spec(FG / "generated_layer.yaml"), seed=0).eval()
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        probs, below, real = cnn(images)
        filters = cnn.conv4.weight.expand(3, *cnn.conv4.weight.shape)
        fake = layer(below, filters)
    assert probs.shape == (3, 10) and real.shape == fake.shape == (3, 64, 14, 14)
    torch.testing.assert_close(fake, real, atol=1e-5, rtol=1e-5)
    # another filter set for one sample changes only that sample's activation
    other = filters.clone()
    other[1] = torch.randn_like(other[1])
    with torch.no_grad():
        mixed = layer(below, other)
    torch.testing.assert_close(mixed[[0, 2]], real[[0, 2]], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(mixed[1], real[1])


def test_d_and_q_share_all_layers_but_the_last():
    g = spdnn.load_spec(FG / "activation_discriminator.yaml")
    heads = {out.name: g.inputs_of(out.name)[0].node for out in g.output_nodes()}
    assert heads == {"p_real": "prob", "z_code": "q_out"}
    assert g.inputs_of("prob")[0].node == "d_out"
    assert g.inputs_of("d_out")[0].node == g.inputs_of("q_out")[0].node == "act3"


def test_denoiser_encoder_is_alexnet_and_unpoolings_take_their_own_level():
    encoder = spdnn.build_torch(spdnn.load_spec(AE / "encoder.yaml"), seed=0).state_dict()
    g = spdnn.load_spec(AE / "denoiser.yaml")
    denoiser = spdnn.build_torch(g, seed=0).state_dict()
    pairs = {"conv1": "conv1a", "conv2": "conv2b", "conv3": "conv3b", "conv4": "conv3c", "conv5": "conv3d"}
    for enc, den in pairs.items():
        for kind in ("weight", "bias"):
            assert encoder[f"{enc}.{kind}"].shape == denoiser[f"{den}.{kind}"].shape, (enc, den, kind)
    sources = {u: [(v.node, v.port) for v in g.inputs_of(u)] for u in ("unpool2a", "unpool3a", "unpool4a")}
    for unpool, pool in {"unpool2a": "pool4a", "unpool3a": "pool3a", "unpool4a": "pool2a"}.items():
        details = sources[unpool][1:]
        assert [node for node, _ in details] == [pool] * 3, (unpool, details)
        ll = g.out_types(sources[unpool][0][0])[0].shape
        assert ll == g.out_types(pool)[1].shape, (unpool, ll)
