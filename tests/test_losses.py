"""Each loss against its formula on small hand-computed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from spdnn.backends.torch_exporter.training import losses as L


def close(a, b, tol=1e-6):
    return abs(float(torch.as_tensor(a).detach()) - float(b)) < tol


def test_mse_l1_bce():
    x, t = torch.tensor([[0.5, 1.0]]), torch.tensor([[1.0, 3.0]])
    assert close(L.mse(x, t), (0.25 + 4.0) / 2)
    assert close(L.l1(x, t), (0.5 + 2.0) / 2)
    p, y = torch.tensor([0.8, 0.4]), torch.tensor([1.0, 0.0])
    assert close(L.bce(p, y), -(math.log(0.8) + math.log(0.6)) / 2)
    assert close(L.bce(p, 1), -(math.log(0.8) + math.log(0.4)) / 2)  # a constant target
    logits = torch.tensor([0.0, 2.0])
    assert close(L.bce(logits, y, "logits"), -(math.log(0.5) + math.log(1 - 1 / (1 + math.exp(-2)))) / 2)


def test_nll_and_cross_entropy_from_logits_and_probabilities():
    logp = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]]))
    labels = torch.tensor([0, 2])
    assert close(L.nll(logp, labels), -(math.log(0.7) + math.log(0.5)) / 2)
    assert close(L.cross_entropy(logp.exp(), labels, "probabilities"), -(math.log(0.7) + math.log(0.5)) / 2)
    scores = torch.tensor([[1.0, 0.0]])
    assert close(L.cross_entropy(scores, torch.tensor([1])), -math.log(math.exp(0) / (math.exp(1) + 1)))


def test_began_balance_k_update_and_convergence():
    b = L.BeganBalance(gamma=0.5, lambda_k=0.1, k=0.2)
    real, fake = torch.tensor(0.6), torch.tensor(0.5)
    assert close(b.d_loss(real, fake), 0.6 - 0.2 * 0.5)
    assert close(b.convergence(0.6, 0.5), 0.6 + abs(0.3 - 0.5))
    b.update(0.6, 0.5)
    assert close(b.k, 0.2 + 0.1 * (0.3 - 0.5))  # 0.18
    b.update(0.0, 10.0)
    assert b.k == 0.0  # clipped to [0, 1]
    v, d = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.5, 0.0]])
    assert close(L.autoencoder_loss(v, d, "l1"), (0.5 + 1.0) / 2)
    assert close(L.autoencoder_loss(v, d, "l2"), (0.25 + 1.0) / 2)


def test_info_code_and_var_regression():
    q, z = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert close(L.info_code_loss(q, z), ((1 + 4) + (1 + 1)) / 2)  # sum over the code, mean over the batch
    r, y = torch.tensor([0.25, -0.5]), torch.tensor([0.5, 0.0])  # y - R = 0.25, 0.5
    assert close(L.var_regression_loss(r, y, "paper"), -(math.log(0.75) + math.log(0.5)) / 2)
    assert close(L.var_regression_loss(r, y, "code", eps=0.0), (math.log(1.25) + math.log(1.5)) / 2)


def test_vac_classifier_and_smart_augmentation_mix_through_the_system_runtime():
    """VAC+GAN's L_g = theta L_gan + zeta BCE and Smart Augmentation's alpha L_A + beta L_B are
    weighted sums of terms: checked through TorchSystem.loss on known outputs."""
    from spdnn.frontends.yaml_importer.system import load_system_text

    text = """
name: smart
networks:
  A: {inline: {name: a, inputs: {pair: [2]}, layers: [{name: fc, op: linear, out_features: 2}]}}
  B: {inline: {name: b, inputs: {x: [2]}, layers: [{name: fc, op: linear, out_features: 2}]}}
tensors: {pair: {data: pair}, target: {data: target}, y: {data: y}}
flows:
  aug: {network: A, inputs: {pair: pair}}
  cls: {network: B, inputs: {x: aug}}
losses:
  total: [{type: mse, input: aug, target: target, weight: 0.3}, {type: cross_entropy, input: cls, target: y, weight: 0.7}]
optimizers: {opt: {networks: [A, B], loss: total}}
"""
    import spdnn

    system = spdnn.build_system(load_system_text(text), seed=0)
    with torch.no_grad():
        for net in system.networks.values():
            net.get_submodule("fc").weight.copy_(torch.eye(2))
            net.get_submodule("fc").bias.zero_()
    pair, target, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([1])
    value = system.loss("total", system.env({"pair": pair, "target": target, "y": y}))
    want = 0.3 * 0.5 + 0.7 * -math.log(math.exp(0) / (math.exp(1) + 1))
    assert close(value.total, want, 1e-5)


def test_log_kernel_sizes_and_values():
    sizes = [L.log_kernel(s).shape[0] for s in (0.8, 1.6, 3.2)]
    assert sizes == [7, 13, 27]
    k = L.log_kernel(1.0)
    # centre: -(2 - 0) * 1/(2 pi); at (0, 1): -(2 - 1) * exp(-1/2)/(2 pi)
    assert close(k[4, 4], -2 / (2 * math.pi))
    assert close(k[4, 5], -math.exp(-0.5) / (2 * math.pi))
    assert torch.allclose(k, k.T)


def test_spatial_frequency_loss_per_band_weights():
    sfl = L.SpatialFrequencyLoss([0.8, 1.6], [100.0, 10.0], channels=1)
    recon, orig = torch.zeros(1, 1, 9, 9), torch.zeros(1, 1, 9, 9)
    recon[0, 0, 4, 4] = 1.0  # an impulse: the LoG output is the kernel itself
    bands = sfl.bands(recon, orig)
    k0 = L.log_kernel(0.8)  # 7x7, fully inside the 9x9 image
    assert close(bands[0], 0.5 * float(k0.square().sum()) / 81, 1e-7)
    k1 = L.log_kernel(1.6)[2:11, 2:11]  # 13x13 cut to the image
    assert close(bands[1], 0.5 * float(k1.square().sum()) / 81, 1e-7)
    assert close(sfl(recon, orig), 100 * bands[0] + 10 * bands[1], 1e-6)
    assert not any(p.requires_grad for p in sfl.buffers())


def test_feature_loss_goes_through_a_frozen_encoder():
    from spdnn.frontends.yaml_importer.system import load_system_text
    import spdnn

    text = """
name: inv
networks:
  E: {frozen: true, inline: {name: e, inputs: {x: [2]}, layers: [{name: fc, op: linear, out_features: 1}]}}
  G: {inline: {name: g, inputs: {code: [1]}, layers: [{name: fc, op: linear, out_features: 2}]}}
tensors: {x: {data: x}}
flows:
  code: {network: E, inputs: {x: x}}
  recon: {network: G, inputs: {code: code}}
losses:
  g: [{type: feature, network: E, input: recon, target: x}]
optimizers: {opt: {networks: [G], loss: g}}
"""
    system = spdnn.build_system(load_system_text(text), seed=0)
    with torch.no_grad():
        system.networks["E"].get_submodule("fc").weight.copy_(torch.tensor([[1.0, 2.0]]))
        system.networks["E"].get_submodule("fc").bias.zero_()
        system.networks["G"].get_submodule("fc").weight.copy_(torch.tensor([[1.0], [1.0]]))
        system.networks["G"].get_submodule("fc").bias.zero_()
    x = torch.tensor([[1.0, 1.0]])  # E(x) = 3; G(3) = (3, 3); E(G) = 9
    value = system.loss("g", system.env({"x": x}, {"G"}))
    assert close(value.total, (9 - 3) ** 2)
    value.total.backward()
    assert system.networks["G"].get_submodule("fc").weight.grad is not None
    assert system.networks["E"].get_submodule("fc").weight.grad is None  # frozen


def test_bce_of_a_saturated_probability_is_finite():
    assert math.isfinite(float(L.bce(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0]))))
    with pytest.raises(ValueError):
        L.SpatialFrequencyLoss([1.0], [1.0, 2.0], 1)
