"""`spdnn compile SYSTEM.yaml` (artefacts per network, report, picture; located errors, exit 2),
loss weights that change with the epoch, and training data as a folder of .npy images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import ROOT

import spdnn
from spdnn.backends.torch_exporter.training.data import load_dataset, split
from spdnn.cli import main
from spdnn.errors import SpdnnError, SpecError
from spdnn.frontends.yaml_importer.system import load_system_text
from spdnn.system.compile import is_system_file
from spdnn.system.supervised import supervised_system

EXAMPLES = ROOT / "examples/06_train_system"
GAN = (EXAMPLES / "gan_aux.yaml").read_text()
# C frozen: no optimiser, no loss of its own
FROZEN = (GAN.replace("  C:\n    inline:", "  C:\n    frozen: true\n    inline:")
          .replace("  c: [{type: cross_entropy, input: c_fake, target: c}]\n", "")
          .replace("  opt_c: {type: sgd, lr: 0.01, momentum: 0.9, nesterov: true, networks: [C], loss: c}\n", "")
          .replace("update: [opt_d, opt_g, opt_c]", "update: [opt_d, opt_g]").replace("monitor: c", "monitor: g"))


def write(tmp_path, text: str, name: str = "sys.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_compile_system_writes_each_network_a_report_and_a_picture(tmp_path, capsys):
    spec = write(tmp_path, FROZEN)
    out = tmp_path / "out"
    assert main(["compile", str(spec), "-o", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([f"{k}.{ext}" for k in "GDC" for ext in ("pt", "onnx", "yaml", "dot", "mmd")]
                           + ["report.json", "report.md", "vacgan_toy.dot", "vacgan_toy.mmd"])
    report = json.loads((out / "report.json").read_text())
    nets = report["system"]["networks"]
    assert {k: (n["params"], n["trainable_params"], n["frozen"]) for k, n in nets.items()} == {
        "G": (8 * 32 + 32 + 32 * 16 + 16, 8 * 32 + 32 + 32 * 16 + 16, False),
        "D": (16 * 32 + 32 + 32 + 1, 16 * 32 + 32 + 32 + 1, False),
        "C": (16 * 16 + 16 + 16 * 2 + 2, 0, True)}
    assert report["system"]["flows"]["d_fake"] == {"network": "D", "inputs": {"x": "fake"}}
    assert report["system"]["tensors"]["c"] == {"kind": "partition", "of": "z", "classes": 2, "shape": [],
                                                "dtype": "int64"}
    assert report["system"]["losses"]["g"][1]["weight"] == "0.8"
    assert report["system"]["optimizers"]["opt_d"]["networks"] == ["D"]
    assert [m["model"] for m in report["models"]] == ["generator", "discriminator", "aux_classifier"]
    md = (out / "report.md").read_text()
    assert "| C | aux_classifier | inline | 306 | 0 | yes |" in md
    assert "* `g` = 0.2·bce(d_fake, 1) + 0.8·cross_entropy(c_fake, c)" in md
    dot = (out / "vacgan_toy.dot").read_text()
    assert '"net_C" [label="C: aux_classifier (frozen)", shape=box, style="rounded,dashed"];' in dot
    assert '"net_G" -> "net_D" [label="fake → x"];' in dot
    assert '"net_C" -> "loss_g" [label="0.8·cross_entropy: c_fake"];' in dot
    mmd = (out / "vacgan_toy.mmd").read_text()
    assert mmd.startswith('---\ntitle: "system vacgan_toy"\n---\nflowchart LR\n')
    assert '  tensor_z -->|"z"| net_G' in mmd and '  loss_d{{"loss d (minimised by opt_d)"}}' in mmd
    # G.pt holds the weights spdnn.build_system starts from (seed + index)
    state = torch.load(out / "G.pt", weights_only=True)
    built = spdnn.build_system(spdnn.load_system(spec), seed=0).networks["G"].state_dict()
    assert state.keys() == built.keys() and all(torch.equal(state[k], built[k]) for k in state)
    # a second compile replaces the folder as a whole
    assert main(["compile", str(spec), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == files


def test_mermaid_of_a_system_escapes_labels_and_reserved_ids(tmp_path):
    text = GAN.replace("name: generator", 'name: end').replace("vacgan_toy", "end")
    system = load_system_text(text, "sys.yaml", EXAMPLES)
    from spdnn.system.picture import system_mermaid

    mmd = system_mermaid(system)
    assert '  net_G["G: end"]' in mmd and mmd.startswith('---\ntitle: "system end"')


def test_system_mistakes_are_located_before_anything_is_built(tmp_path, capsys):
    text = FROZEN.replace("d_fake: {network: D,", "d_fake: {network: DD,")
    spec = write(tmp_path, text)
    out = tmp_path / "out"
    assert main(["compile", str(spec), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    line = 1 + text.splitlines().index("  d_fake: {network: DD, inputs: {x: fake}}")
    assert f"sys.yaml:{line}:21: flows.d_fake.network: unknown network 'DD' (did you mean 'D'?)" in err
    assert "Traceback" not in err and not out.exists()


def test_layers_spec_with_system_keys_points_to_system_tools(tmp_path, capsys):
    spec = write(tmp_path, (EXAMPLES / "classifier.yaml").read_text() + "losses: {l: []}\n", "model.yaml")
    assert not is_system_file(spec) and is_system_file(EXAMPLES / "gan_aux.yaml")
    assert main(["compile", str(spec), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "model.yaml:12:1: losses: 'losses' belongs to system specs" in err
    assert "spdnn.load_system" in err and "spdnn train" in err


# -- loss weights that change with the epoch -------------------------------------------------------
SCHEDULED = GAN.replace("{type: cross_entropy, input: c_fake, target: c, weight: 0.8}",
                        "{type: cross_entropy, input: c_fake, target: c, weight: {epochs: [0, 4], values: [1.0, 0.2]}}")


def test_scheduled_weight_interpolates_between_epochs_and_holds_outside():
    system = load_system_text(SCHEDULED, "sys.yaml", EXAMPLES)
    term = system.losses["g"].terms[1]
    assert [term.weight_at(e) for e in (0, 1, 2, 4, 9)] == pytest.approx([1.0, 0.8, 0.6, 0.2, 0.2])
    assert term.weight_text() == "w(epoch 0: 1, 4: 0.2)"
    torch_system = spdnn.build_system(system, seed=0)
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    tensors = torch_system.batch({"x": x}, torch.Generator().manual_seed(0), 8)
    env = torch_system.env(tensors, {"G"})
    parts = torch_system.loss("g", env).parts
    by_epoch = {}
    for epoch in (0, 2):
        torch_system.epoch = epoch
        by_epoch[epoch] = float(torch_system.loss("g", torch_system.env(tensors, {"G"})).total.detach())
    gan, ce = parts["g.0.bce"], parts["g.1.cross_entropy"]
    assert by_epoch[0] == pytest.approx(0.2 * gan + 1.0 * ce, rel=1e-5)
    assert by_epoch[2] == pytest.approx(0.2 * gan + 0.6 * ce, rel=1e-5)


@pytest.mark.parametrize("weight, where, message", [
    ("{epochs: [0, 4], values: [1.0]}", "values", "values must be 2 numbers, one per epoch in epochs"),
    ("{epochs: [4, 0], values: [1.0, 0.2]}", "epochs", "epochs must be a non-empty list of increasing"),
    ("{epoch: [0], values: [1.0]}", "epoch", "unknown key 'epoch'; allowed: epochs, values"),
    ("high", "", "weight must be a number or {epochs: [...], values: [...]}, got 'high'"),
])
def test_bad_weight_schedules_are_located(weight, where, message):
    text = GAN.replace("target: c, weight: 0.8}", f"target: c, weight: {weight}}}")
    with pytest.raises(SpecError) as info:
        load_system_text(text, "sys.yaml", EXAMPLES)
    found = [str(p) for p in info.value.problems]
    path = "losses.g[1].weight" + (f".{where}" if where else "")
    assert len(found) == 1 and found[0].startswith("sys.yaml:") and f": {path}: " in found[0] and message in found[0]


# -- image folders -----------------------------------------------------------------------------------
def classifier_spec():
    return supervised_system(spdnn.load_spec(EXAMPLES / "classifier.yaml"))


def save_images(folder, count, start=0, bright_top=True, dtype="float32"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = np.zeros((1, 8, 8), dtype=dtype)
        image[:, :4] = 1 if bright_top else 0
        image[:, 4:] = 0 if bright_top else 1
        np.save(folder / f"im{start + i:02d}.npy", image * (255 if dtype == "uint8" else 1))


def test_class_subfolders_and_labels_csv_give_the_same_arrays(tmp_path):
    by_folder = tmp_path / "a"
    save_images(by_folder / "bottom", 3, bright_top=False)
    save_images(by_folder / "top", 2, start=3, dtype="uint8")
    data = load_dataset(by_folder, classifier_spec())
    assert data.arrays["y"].tolist() == [0, 0, 0, 1, 1]
    assert data.arrays["image"].shape == (5, 1, 8, 8) and data.arrays["image"].dtype == np.float32
    assert data.arrays["image"][3, 0, 0, 0] == 1.0 and data.arrays["image"][0, 0, 7, 0] == 1.0  # uint8 / 255
    by_csv = tmp_path / "b"
    save_images(by_csv, 3, bright_top=False)
    save_images(by_csv, 2, start=3)
    (by_csv / "labels.csv").write_text("file,label\n" + "".join(
        f"im{i:02d}.npy,{'bottom' if i < 3 else 'top'}\n" for i in range(5)))
    other = load_dataset(by_csv, classifier_spec())
    assert np.array_equal(other.arrays["y"], data.arrays["y"])
    assert np.array_equal(other.arrays["image"], data.arrays["image"])
    train, val = split(data, 0.4, 0, "data")
    assert len(train) == 3 and len(val) == 2


def test_masks_folder_trains_a_segmenter(tmp_path, capsys):
    spec = write(tmp_path, "name: seg\ninputs: {x: [1, 8, 8]}\nlayers:\n"
                 "  - {name: conv, op: conv2d, out_channels: 2, kernel_size: 3, padding: 1}\n"
                 "  - {name: probs, op: softmax, dim: 1}\n", "seg.yaml")
    folder = tmp_path / "seg"
    save_images(folder / "images", 6)
    (folder / "masks").mkdir()
    for i in range(6):
        np.save(folder / "masks" / f"im{i:02d}.npy", (np.arange(64).reshape(8, 8) < 32).astype("uint8"))
    assert main(["train", str(spec), "--data", str(folder), "-o", str(tmp_path / "run"), "--epochs", "2",
                 "--batch-size", "2", "--val-fraction", "0.34", "-q"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(np.isfinite(r["train/loss"]) for r in rows)
    assert main(["eval", str(tmp_path / "run/seg.onnx"), "--data", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 6


@pytest.mark.parametrize("make, message", [
    (lambda f: (save_images(f / "a", 1), (f / "a" / "x.png").write_bytes(b"\x89PNG")),
     "x.png: not a readable picture"),
    (lambda f: save_images(f, 2), "missing labels: the targets 'y' come from subfolders per class, a labels.csv"),
    (lambda f: (save_images(f / "images", 2), (f / "masks").mkdir(), save_images(f / "masks", 1)),
     "image im01.npy has no mask masks/im01.npy"),
    (lambda f: (f.mkdir(), np.save(f / "a.npy", np.zeros((3, 8, 8), "float32")),
                (f / "labels.csv").write_text("a.npy,0\n")), "a.npy: shape (3, 8, 8), expected (1, 8, 8)"),
    (lambda f: (save_images(f, 1), (f / "labels.csv").write_text("file,label\nim00.npy,0\nim09.npy,1\n")),
     "labels.csv:3: image 'im09.npy' not found"),
    (lambda f: (save_images(f, 1), (f / "labels.csv").write_text("im00.npy,7\n")), "labels must be in [0, 2)"),
    (lambda f: (f / "empty").mkdir(parents=True), "no images (.npy arrays or pictures) in"),
])
def test_bad_image_folders_name_the_file(tmp_path, make, message):
    folder = tmp_path / "data"
    make(folder)
    with pytest.raises(SpdnnError) as info:
        load_dataset(folder, classifier_spec())
    assert message in str(info.value)


def test_bad_image_folder_from_the_cli_exits_2(tmp_path, capsys):
    save_images(tmp_path / "data", 2)
    code = main(["train", str(EXAMPLES / "classifier.yaml"), "--data", str(tmp_path / "data"),
                 "-o", str(tmp_path / "run"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "missing labels" in err and "Traceback" not in err
