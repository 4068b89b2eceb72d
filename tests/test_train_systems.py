"""Training each kind of system a few dozen steps on synthetic data: every trainable parameter
gets a gradient and changes, frozen ones do not change, losses are finite and go down."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import ROOT

import spdnn
from spdnn.backends.torch_exporter.training.loop import Trainer, TrainOptions
from spdnn.frontends.yaml_importer.system import load_system_text


def mlp(name, inputs, width, out, last=None, extra=""):
    layers = [f"{{name: fc1, op: linear, out_features: {width}}}", "{name: act1, op: relu}",
              f"{{name: fc2, op: linear, out_features: {out}}}"] + ([f"{{name: last, op: {last}}}"] if last else [])
    return f"{{name: {name}, inputs: {inputs}, layers: [{', '.join(layers)}]{extra}}}"


BEGAN = f"""
name: began_toy
networks:
  G: {{inline: {mlp('g', '{z: [4]}', 16, 8, 'tanh')}}}
  D: {{inline: {mlp('d', '{x: [8]}', 4, 8)}}}
tensors: {{x: {{data: x}}, z: {{noise: uniform, shape: [4]}}}}
flows:
  fake: {{network: G, inputs: {{z: z}}}}
  d_real: {{network: D, inputs: {{x: x}}}}
  d_fake: {{network: D, inputs: {{x: fake}}}}
losses:
  d: [{{type: began, real: x, real_recon: d_real, fake: fake, fake_recon: d_fake, gamma: 0.5, lambda_k: 0.01}}]
  g: [{{type: autoencoder, input: fake, recon: d_fake}}]
optimizers:
  opt_d: {{type: adam, lr: 0.003, betas: [0.5, 0.999], networks: [D], loss: d}}
  opt_g: {{type: adam, lr: 0.003, betas: [0.5, 0.999], networks: [G], loss: g}}
training: {{epochs: 6, batch_size: 16, monitor: d}}
"""

SMART_AUG = f"""
name: smart_aug_toy
networks:
  A: {{inline: {{name: a, inputs: {{pair: [2, 6, 6]}}, layers: [{{name: conv, op: conv2d, out_channels: 1, kernel_size: 3, padding: 1}}]}}}}
  B: {{inline: {{name: b, inputs: {{image: [1, 6, 6]}}, layers: [{{name: flat, op: flatten}}, {{name: fc, op: linear, out_features: 2}}, {{name: p, op: softmax}}]}}}}
tensors: {{pair: {{data: pair}}, target: {{data: target}}, y: {{data: y}}}}
flows:
  aug: {{network: A, inputs: {{pair: pair}}}}
  cls: {{network: B, inputs: {{image: aug}}}}
losses:
  total: [{{type: mse, input: aug, target: target, weight: 0.3}}, {{type: cross_entropy, input: cls, target: y, weight: 0.7}}]
optimizers: {{opt: {{type: sgd, lr: 0.05, momentum: 0.9, nesterov: true, networks: [A, B], loss: total}}}}
training: {{epochs: 6, batch_size: 16}}
"""

JOINT_000 = f"""
name: joint_000
networks:
  AE: {{inline: {{name: ae, inputs: {{x: [8]}}, layers: [{{name: enc, op: linear, out_features: 4}}, {{name: act, op: relu}}, {{name: dec, op: linear, out_features: 8}}, {{name: rec, op: sigmoid}}], outputs: {{recon: rec, code: enc}}}}}}
  P: {{inline: {mlp('p', '{code: [4]}', 8, 3, 'softmax')}}}
tensors: {{x: {{data: x}}, y: {{data: y}}}}
flows:
  ae: {{network: AE, inputs: {{x: x}}}}
  pred: {{network: P, inputs: {{code: ae.code}}}}
losses:
  total: [{{type: bce, input: ae.recon, target: x}}, {{type: cross_entropy, input: pred, target: y}}]
optimizers: {{opt: {{type: adam, lr: 0.01, networks: [AE, P], loss: total}}}}
training: {{epochs: 6, batch_size: 16}}
"""

FROZEN_ENCODER = f"""
name: frozen_encoder
networks:
  E: {{frozen: true, inline: {mlp('e', '{x: [8]}', 8, 4)}}}
  G: {{inline: {mlp('g', '{code: [4]}', 16, 8)}}}
  D: {{inline: {mlp('d', '{x: [8]}', 8, 1, 'sigmoid')}}}
tensors: {{x: {{data: x}}}}
flows:
  code: {{network: E, inputs: {{x: x}}}}
  recon: {{network: G, inputs: {{code: code}}}}
  d_real: {{network: D, inputs: {{x: x}}}}
  d_fake: {{network: D, inputs: {{x: recon}}}}
losses:
  g: [{{type: l1, input: recon, target: x}}, {{type: feature, network: E, input: recon, target: x, weight: 0.5}}, {{type: bce, input: d_fake, target: 1, weight: 0.01}}]
  d: [{{type: bce, input: d_real, target: 1}}, {{type: bce, input: d_fake, target: 0}}]
optimizers:
  opt_g: {{lr: 0.01, networks: [G], loss: g}}
  opt_d: {{type: rmsprop, lr: 0.001, networks: [D], loss: d}}
training: {{epochs: 6, batch_size: 16, update: [opt_d, {{optimizer: opt_g, times: 2}}], monitor: g}}
"""


def data_for(name: str, n: int = 96) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, n)
    if name == "smart_aug_toy":
        base = np.where(y[:, None, None, None] == 0, 1.0, -1.0) * np.ones((n, 1, 6, 6))
        pair = np.concatenate([base, base], 1) + rng.normal(0, 0.3, (n, 2, 6, 6))
        return {"pair": pair.astype("float32"), "target": (base + rng.normal(0, 0.1, base.shape)).astype("float32"),
                "y": y}
    x = (np.linspace(0.1, 0.9, 8)[None] + 0.05 * rng.normal(size=(n, 8))).astype("float32")
    if name == "joint_000":
        x[y == 1, :4] = 0.9
        return {"x": x.clip(0, 1), "y": y}
    if name == "vacgan_toy":
        return {"x": np.tanh(np.concatenate([x, x], 1) * 2 - 1).astype("float32")}
    return {"x": x}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


SYSTEMS = {"began_toy": BEGAN, "smart_aug_toy": SMART_AUG, "joint_000": JOINT_000, "frozen_encoder": FROZEN_ENCODER,
           "vacgan_toy": None}


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_system_trains(name, tmp_path):
    text = SYSTEMS[name] or (ROOT / "examples/06_train_system/gan_aux.yaml").read_text().replace(
        "epochs: 3", "epochs: 6")
    spec = load_system_text(text, f"{name}.yaml", ROOT / "examples/06_train_system")
    np.savez(tmp_path / "d.npz", **data_for(name))

    # one step by hand: every trainable parameter of the stepped networks gets a gradient
    system = spdnn.build_system(spec, seed=0)
    arrays = {spec.data_keys()[k].name: torch.from_numpy(np.asarray(v[:16])) for k, v in data_for(name).items()}
    tensors = system.batch(arrays, torch.Generator().manual_seed(0), 16)
    for opt in spec.optimizers.values():
        system.networks.zero_grad(set_to_none=True)
        system.loss(opt.loss, system.env(tensors, set(opt.networks))).total.backward()
        for net in opt.networks:
            missing = [k for k, p in system.networks[net].named_parameters() if p.grad is None or not p.grad.any()]
            assert not missing, (opt.name, net, missing)
    frozen = [n for n, net in spec.networks.items() if net.frozen]
    assert all(p.grad is None for n in frozen for p in system.networks[n].parameters())

    before = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in system.networks.items()}
    result = Trainer(spec, TrainOptions(str(tmp_path / "d.npz"), str(tmp_path / "run"), val_fraction=0.0),
                     say=lambda _: None).run()
    history = result["history"]
    after = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["networks"]
    for n, state in before.items():
        changed = [k for k, v in state.items() if v.is_floating_point() and not torch.equal(v, after[n][k])]
        params = [k for k, _ in system.networks[n].named_parameters()]
        if n in frozen:
            assert not changed, (n, changed)
        else:
            assert set(params) <= set(changed), (n, set(params) - set(changed))
    for row in history:
        assert all(math.isfinite(v) for k, v in row.items() if k.startswith("train/")), row
    monitor = spec.training.monitor
    first, last = history[0][f"train/{monitor}"], history[-1][f"train/{monitor}"]
    if name == "began_toy":  # BEGAN's progress is its convergence measure M
        first, last = history[0]["train/d.0.convergence"], history[-1]["train/d.0.convergence"]
        assert history[-1]["train/d.0.k_t"] != 0.0
    assert last < first, (monitor, first, last)
    exported = {p.name for p in (tmp_path / "run").iterdir()}
    for n in spec.trainable():
        assert {f"{spec.networks[n].graph.name}.pt", f"{spec.networks[n].graph.name}.onnx"} <= exported
