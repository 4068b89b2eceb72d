"""Every paper system under specs/<paper>/systems/ loads, and a few training steps on synthetic data
give every trainable parameter a gradient and keep the losses finite.

Each case: (system file, synthetic arrays for its data tensors). Tiny batches keep this fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import ROOT

import spdnn


def images(shape, low=0.0, high=1.0, n=4, seed=0):
    return np.random.default_rng(seed).uniform(low, high, (n, *shape)).astype("float32")


def labels(classes, n=4, seed=0):
    return np.random.default_rng(seed).integers(0, classes, n)


def noisy(clean, sigma, seed=1):
    """Clipped additive white Gaussian noise, y = clip(x + n) (seed 001, L61), on images in [-1, 1]."""
    n = np.random.default_rng(seed).normal(0.0, sigma, clean.shape).astype("float32")
    return np.clip(clean + n, -1.0, 1.0)


#: (system path relative to specs/, data arrays); add your folder's systems here.
CASES = [
    # seed 000: L_rec + L_cls on [0, 1] images and class ids
    ("dynamic_filters/systems/mnist_dynamic.yaml", {"x": images((1, 28, 28)), "y": labels(10)}),
    ("dynamic_filters/systems/cifar_dynamic.yaml", {"x": images((3, 32, 32), n=2), "y": labels(10, n=2)}),
    ("dynamic_filters/systems/mtfl_dynamic.yaml", {"x": images((3, 64, 64), n=2), "y": images((5, 64, 64), n=2)}),
    # seed 004: E_PL + E_SFL on images scaled to [-1, 1]
    ("spatial_frequency/systems/cae_sfl.yaml", {"x": images((3, 64, 64), -1.0, 1.0, n=2)}),
    # seed 001: pixel + feature + GAN losses on ImageNet-size images in [-1, 1] (G ends in tanh)
    ("robust_ae/systems/autoencoder.yaml", {"x": images((3, 224, 224), -1.0, 1.0, n=2)}),
    # seed 001 App. A4.3: the denoiser maps clip(x + n) to x (noise sigma 50/255 on [0, 1] = 100/255 on [-1, 1])
    ("robust_ae/systems/denoiser.yaml", {"x": images((3, 224, 224), -1.0, 1.0, n=2),
                                         "noisy": noisy(images((3, 224, 224), -1.0, 1.0, n=2), 100 / 255)}),
    # seed 002 Alg. 1: MNIST digits in [0, 1]; z is drawn by the system
    ("filter_generation/systems/algorithm1.yaml", {"x": images((1, 28, 28))}),
    # seed 003 App. E: k = 2 same-class grey 96x96 faces stacked as channels, another face of the class
    # as A's target and B's second input, and the class; two network As: one set of arrays per class
    ("smart_augmentation/systems/one_network_a.yaml",
     {"x": images((2, 96, 96), n=2), "target": images((1, 96, 96), n=2, seed=1), "y": labels(2, n=2)}),
    ("smart_augmentation/systems/two_network_a.yaml",
     {"x0": images((2, 96, 96), n=2), "t0": images((1, 96, 96), n=2, seed=1), "y0": np.zeros(2, np.int64),
      "x1": images((2, 96, 96), n=2, seed=2), "t1": images((1, 96, 96), n=2, seed=3), "y1": np.ones(2, np.int64)}),
    # seed 003 App. F: BEGAN on 128x128 faces in [-1, 1] (one sample: no batch norm); the landmark MLP
    # on recovered latents z in [-1, 1] and landmarks in [0, 1]
    ("began/systems/began_faces.yaml", {"x": images((3, 128, 128), -1.0, 1.0, n=1)}),
    ("began/systems/landmark_generator.yaml", {"z": images((64,), -1.0, 1.0), "y": images((98,))}),
    # seed 003 App. I: 48x48 faces and their 98 landmark values, both in [-1, 1]
    ("vargan/systems/var_gan.yaml", {"x": images((3, 48, 48), -1.0, 1.0, n=2), "y": images((98,), -1.0, 1.0, n=2)}),
    ("vargan/systems/cbigan.yaml", {"x": images((3, 48, 48), -1.0, 1.0, n=2), "y": images((98,), -1.0, 1.0, n=2)}),
]


def test_every_system_of_the_covered_folders_has_a_case():
    covered = {c[0].split("/")[0] for c in CASES}
    shipped = {str(p.relative_to(ROOT / "specs")) for f in covered for p in (ROOT / "specs" / f).glob("systems/*.yaml")}
    assert shipped == {c[0] for c in CASES}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("path,data", CASES, ids=[c[0] for c in CASES])
def test_paper_system_trains_a_few_steps(path, data):
    spec = spdnn.load_system(ROOT / "specs" / path)
    system = spdnn.build_system(spec, seed=0)
    n = len(next(iter(data.values())))
    arrays = {spec.data_keys()[k].name: torch.from_numpy(v) for k, v in data.items()}
    for step in range(2):
        tensors = system.batch(arrays, torch.Generator().manual_seed(step), n)
        for opt in spec.optimizers.values():
            system.networks.zero_grad(set_to_none=True)
            losses = system.loss(opt.loss, system.env(tensors, set(opt.networks)))
            assert math.isfinite(float(losses.total.detach())), (path, opt.name, float(losses.total.detach()))
            losses.total.backward()
            for net in opt.networks:
                missing = [k for k, p in system.networks[net].named_parameters()
                           if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.any()]
                assert not missing, (path, opt.name, net, missing)
            with torch.no_grad():
                for net in opt.networks:
                    for p in system.networks[net].parameters():
                        p -= 1e-3 * p.grad


def _var_variants():
    import yaml
    out = []
    for path in sorted((ROOT / "specs").glob("*/expected.yml")):
        for v in yaml.safe_load(path.read_text(encoding="utf-8")).get("var_variants", []):
            out.append((path.parent / f"{v['model']}.yaml", v))
    return out


@pytest.mark.parametrize("path,variant", _var_variants(), ids=lambda v: v["table"] if isinstance(v, dict) else "")
def test_paper_table_variants_given_as_vars_match_their_hand_counts(path, variant):
    """A paper's sizes (seed 000 Tables 1-2: nenc, s) are vars of one spec, not copies."""
    import yaml
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["vars"].update(variant["vars"])
    graph = spdnn.load_spec_text(yaml.safe_dump(doc, sort_keys=False), str(path))
    assert spdnn.count_params(graph) == variant["params"]


@pytest.mark.slow
def test_smart_augmentation_vgg16_at_the_thesis_input_size_runs():
    """VGG16 (network B2) as trained in the thesis (256x256 RGB, experiment 25): 165,726,018
    parameters, too large for the per-spec tests, which build it at its default 32x32 side."""
    import yaml
    path = ROOT / "specs" / "smart_augmentation" / "smartaug_network_b2_vgg16.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["vars"]["size"] = 256
    graph = spdnn.load_spec_text(yaml.safe_dump(doc, sort_keys=False), str(path))
    module = spdnn.build_torch(graph, seed=0).eval()
    assert sum(p.numel() for p in module.parameters()) == 165_726_018
    with torch.no_grad():
        probs = module(torch.rand(1, 3, 256, 256))
    assert probs.shape == (1, 2) and torch.allclose(probs.sum(1), torch.ones(1))
