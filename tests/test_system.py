"""System specs: loading, and every mistake reported at its file:line:column before anything
is built."""

from __future__ import annotations

import pytest
from conftest import ROOT

import spdnn
from spdnn.errors import SpecError
from spdnn.frontends.yaml_importer.system import load_system_text

GAN = (ROOT / "examples/06_train_system/gan_aux.yaml").read_text()


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_system_text(text, "sys.yaml", ROOT / "examples/06_train_system")
    return [str(p) for p in info.value.problems]


def test_example_system_loads_with_shapes_and_defaults():
    system = spdnn.load_system(ROOT / "examples/06_train_system/gan_aux.yaml")
    assert list(system.networks) == ["G", "D", "C"]
    assert system.shapes["fake"].shape == (16,) and system.shapes["x"].shape == (16,)
    assert system.shapes["c"].dtype == "int64"
    assert [(s.optimizer, s.times) for s in system.training.update] == [("opt_d", 1), ("opt_g", 1), ("opt_c", 1)]
    # the classifier ends in softmax, so its cross-entropy takes probabilities
    assert system.losses["c"].terms[0].options["from"] == "probabilities"
    assert system.data_keys().keys() == {"x"}


def test_unknown_network_in_a_flow_is_located():
    text = GAN.replace("c_fake: {network: C,", "c_fake: {network: Cls,")
    line = 1 + text.splitlines().index("  c_fake: {network: Cls, inputs: {x: fake}}")
    assert problems(text) == [f"sys.yaml:{line}:21: flows.c_fake.network: unknown network 'Cls'"]


def test_tensor_into_an_input_of_the_wrong_shape():
    text = GAN.replace("z: {noise: uniform, shape: [8]}", "z: {noise: uniform, shape: [9]}")
    found = problems(text)
    assert any("flows.fake.inputs.z: tensor 'z' has shape (N, 9), but input 'z' of 'G' takes (N, 8)" in p
               for p in found), found


def test_loss_on_a_missing_tensor_and_unknown_loss_type():
    text = GAN.replace("{type: cross_entropy, input: c_fake, target: c}]", "{type: cross_entropy, input: c_fak, target: c}]")
    text = text.replace("d: [{type: bce,", "d: [{type: bcee,")
    found = problems(text)
    assert any("losses.c[0].input: loss on tensor 'c_fak', which does not exist (did you mean 'c_fake'?)" in p
               for p in found), found
    assert any("losses.d[0].type: unknown loss type 'bcee' (did you mean 'bce'?)" in p for p in found), found
    assert all(p.startswith("sys.yaml:") and p.split(":")[1].isdigit() for p in found)


def test_frozen_network_with_an_optimizer():
    text = GAN.replace("  C:\n    inline:", "  C:\n    frozen: true\n    inline:")
    found = problems(text)
    assert len(found) == 1 and "optimizers.opt_c.networks[0]: network 'C' is frozen but optimizer 'opt_c' updates it" \
        in found[0], found


def test_trainable_network_without_optimizer_and_unused_optimizer():
    text = GAN.replace("update: [opt_d, opt_g, opt_c]", "update: [opt_d, {optimizer: opt_g, times: 2}]")
    found = problems(text)
    assert len(found) == 1 and "optimizer 'opt_c' is not in training.update" in found[0]


def test_class_loss_target_must_be_labels_and_shape_mismatch():
    text = GAN.replace("target: c, weight: 0.8", "target: z, weight: 0.8")
    found = problems(text)
    assert any("losses.g[1].target: cross_entropy loss: target 'z' must hold integer class ids of shape (N) for "
               "scores (N, 2), got (N, 8) float32" in p for p in found), found


def test_missing_network_file_and_broken_inline_network():
    text = GAN.replace("  G:\n    inline:", "  H: {spec: nowhere.yaml}\n  G:\n    inline:", 1)
    text = text.replace("op: leaky_relu, negative_slope: 0.2", "op: leaky_rel")
    found = problems(text)
    assert any("networks.H.spec: network file 'nowhere.yaml' not found" in p for p in found), found
    assert any("unknown op 'leaky_rel'" in p and p.startswith("sys.yaml:") for p in found), found


def test_unknown_keys_are_refused_with_suggestions():
    found = problems(GAN.replace("training:\n", "trainng: {}\ntraining:\n"))
    assert len(found) == 1 and "unknown key 'trainng'; did you mean 'training'?" in found[0]
    found = problems(GAN.replace("target: 1, weight: 0.2}", "target: 1, wieght: 0.2}"))
    assert "bce loss: unknown key 'wieght'" in found[0]


def test_network_spec_loader_points_systems_to_load_system(write):
    with pytest.raises(SpecError, match="networks"):
        spdnn.load_spec(write(GAN))


def test_core_system_package_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, spdnn.system, spdnn.system.supervised; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
