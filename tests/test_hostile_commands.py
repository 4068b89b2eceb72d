"""Hostile input to every command besides inspect (issue 9's fuzz campaign over compile, run,
train, eval, passes, schema, --pass, --plugin, checkpoints and data files): each case found by the
campaign ends in exit code 2 with a message naming the file (or flag) at fault, never an
internal error (exit 1) or a traceback."""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np
import pytest
import torch
from conftest import ROOT

from spdnn.cli import main

SPEC = ROOT / "examples/06_train_system/classifier.yaml"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny training run of the example classifier: its data, run folder and ONNX export."""
    d = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(0)
    np.savez(d / "images.npz", x=rng.normal(0, 1, (32, 1, 8, 8)).astype("float32"), y=rng.integers(0, 2, 32))
    np.save(d / "x.npy", rng.normal(0, 1, (2, 1, 8, 8)).astype("float32"))
    assert main(["train", str(SPEC), "--data", str(d / "images.npz"), "-o", str(d / "run"), "--epochs", "1", "-q"]) == 0
    return d


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return code, err


# ---------------------------------------------------------------- .npz data and .npy headers
def _damaged_member(path, data):
    """An .npz whose local file header of the first member is overwritten (central directory intact)."""
    data.write_bytes(path.read_bytes())
    blob = bytearray(data.read_bytes())
    blob[0:4] = b"XXXX"  # the first local header's magic number
    data.write_bytes(bytes(blob))


@pytest.mark.parametrize("command", ["train", "eval"])
def test_a_damaged_npz_member_names_the_file_and_array(trained, tmp_path, capsys, command):
    data = tmp_path / "data.npz"
    _damaged_member(trained / "images.npz", data)
    model = trained / "run" / "tiny_classifier.onnx"
    argv = (["train", SPEC, "--data", data, "-o", tmp_path / "run", "-q"] if command == "train"
            else ["eval", model, "--data", data])
    code, err = run_cli(capsys, *argv)
    assert code == 2 and f"data {data}: array 'x': cannot be read from the .npz file (damaged?)" in err


def _npy_with_header(path, header: str) -> None:
    h = header.encode()
    h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + b"\0" * 64)


@pytest.mark.parametrize("header", [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 8, 8)",  # unclosed: tokenize.TokenError
    "__import__('os').system('echo pwned')",
    "{'descr': '<U99999999999', 'fortran_order': False, 'shape': (2,), }",
])
def test_a_broken_npy_header_is_not_a_npy_file(trained, tmp_path, capsys, header):
    path = tmp_path / "x.npy"
    _npy_with_header(path, header)
    code, err = run_cli(capsys, "run", trained / "run" / "tiny_classifier.onnx", "-i", path)
    assert code == 2 and f"input {path}: " in err


def test_run_names_the_file_of_a_wrong_shape_and_an_empty_file_name(trained, tmp_path, capsys):
    model = trained / "run" / "tiny_classifier.onnx"
    np.save(tmp_path / "flat.npy", np.zeros((2, 64), np.float32))
    code, err = run_cli(capsys, "run", model, "-i", f"image={tmp_path / 'flat.npy'}")
    assert code == 2 and f"input 'image' ({tmp_path / 'flat.npy'}): expected shape ('N', 1, 8, 8), got (2, 64)" in err
    code, err = run_cli(capsys, "run", model, "-i", "image=")
    assert code == 2 and "--input 'image=': no file name" in err


@pytest.mark.parametrize("command", ["run", "compile", "train"])
def test_a_negative_seed_is_a_usage_error(trained, tmp_path, capsys, command):
    argv = {"run": ["run", trained / "run" / "tiny_classifier.onnx", "--random"],
            "compile": ["compile", SPEC, "-o", tmp_path / "o"],
            "train": ["train", SPEC, "--data", trained / "images.npz", "-o", tmp_path / "r"]}[command]
    code, err = run_cli(capsys, *argv, "--seed", "-1")
    assert code == 2 and "--seed: expected a seed from 0 to 2**63 - 1, got -1" in err


# ---------------------------------------------------------------- checkpoints
def _resume(trained, tmp_path, capsys, change, epochs=2):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    change(run)
    return run, run_cli(capsys, "train", SPEC, "--data", trained / "images.npz", "-o", run, "--epochs", epochs,
                        "--resume", "-q")


def _edit_last(edit):
    def change(run):
        ckpt = torch.load(run / "last.pt", weights_only=True)
        edit(ckpt)
        torch.save(ckpt, run / "last.pt")
    return change


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.update(settings=[1]), "field 'settings' must be a mapping of integers"),
    (lambda c: c["settings"].update(seed=torch.zeros(3)), "field 'settings' must be a mapping of integers"),
    (lambda c: c["settings"].update(seed=7), "the run was started with seed 7"),
    (lambda c: c.update(system=["x"]), "field 'system' must be a name"),
    (lambda c: c.update(epoch="x"), "field 'epoch' must be an integer >= 0"),
    (lambda c: c.update(step=-5), "field 'step' must be an integer >= 0"),
    (lambda c: c.update(history=[{"epoch": "one"}]), "field 'history' must be a list of metric rows"),
    (lambda c: c.update(best={}), "field 'best' must be the best epoch's record"),
    (lambda c: c["rng"].update(torch=torch.zeros(3)), "field 'rng' must be the two random generator states"),
    (lambda c: c.update(sums={"loss": 1.0}), "fields 'sums' and 'counts' name different losses"),
    (lambda c: c.pop("balances"), "field 'balances' is missing"),
    (lambda c: c["networks"]["model"].update({"conv1.weight": torch.zeros(2, 2)}), "does not fit this system"),
    (lambda c: c["optimizers"]["opt"].update(param_groups=5), "does not fit this system"),
])
def test_a_damaged_checkpoint_is_refused_on_resume(trained, tmp_path, capsys, edit, message):
    _, (code, err) = _resume(trained, tmp_path, capsys, _edit_last(edit))
    assert code == 2 and message in err, err


def test_a_pickle_with_code_is_refused_and_never_runs(trained, tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    def change(run):
        (run / "last.pt").write_bytes(pickle.dumps({"format": Evil()}))

    _, (code, err) = _resume(trained, tmp_path, capsys, change)
    assert code == 2 and "cannot be read as a torch checkpoint with weights_only=True" in err
    assert not marker.exists()


def test_a_best_checkpoint_of_another_network_is_refused_at_export(trained, tmp_path, capsys):
    def change(run):
        best = torch.load(run / "best.pt", weights_only=True)
        best["networks"] = {"model": {"nope": torch.zeros(1)}}
        torch.save(best, run / "best.pt")

    run, (code, err) = _resume(trained, tmp_path, capsys, change, epochs=1)  # nothing left to train: export
    assert code == 2 and f"{run / 'best.pt'} does not hold the weights of network 'model'" in err


def test_eval_weights_of_the_wrong_shapes_are_refused(trained, tmp_path, capsys):
    state = torch.load(trained / "run" / "tiny_classifier.pt", weights_only=True)
    state = {k: torch.zeros(1) for k in state}
    torch.save(state, tmp_path / "w.pt")
    code, err = run_cli(capsys, "eval", SPEC, "--weights", tmp_path / "w.pt", "--data", trained / "images.npz")
    assert code == 2 and f"weights {tmp_path / 'w.pt'} do not fit the network" in err


# ---------------------------------------------------------------- plugins, output files
def test_a_plugin_that_exits_is_reported_as_a_plugin_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "exiting_plugin.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, err = run_cli(capsys, "passes", "--plugin", "exiting_plugin")
    assert code == 2 and "plugin exiting_plugin could not be loaded: SystemExit: 3" in err


def test_an_output_file_in_a_missing_folder_names_the_file(tmp_path, capsys):
    target = tmp_path / "no" / "such" / "schema.json"
    code, err = run_cli(capsys, "schema", "-o", target)
    assert code == 2 and f"cannot write {target}: no such file or directory" in err


def test_a_half_written_file_of_a_killed_run_is_removed_by_the_next_write(tmp_path, capsys):
    dead = 2**22 + 12345  # above the default pid_max: no such process
    leftover = tmp_path / f".spdnn-file-schema.json-{dead}-abc123"
    leftover.write_bytes(b"half")
    mine = tmp_path / f".spdnn-file-schema.json-{os.getpid()}-def456"  # a live writer's file stays
    mine.write_bytes(b"busy")
    assert main(["schema", "-o", str(tmp_path / "schema.json")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["schema.json", mine.name])


def test_a_npy_header_with_a_negative_dimension_is_refused(trained, tmp_path, capsys):
    path = tmp_path / "x.npy"
    _npy_with_header(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 1, 8, 8), }")
    code, err = run_cli(capsys, "run", trained / "run" / "tiny_classifier.onnx", "-i", path)
    assert code == 2 and f"input {path}: the header gives a negative dimension" in err


@pytest.mark.parametrize("flag,value,message", [
    ("--momentum", "-1", "expected a finite number >= 0, got -1.0"),
    ("--momentum", "nan", "expected a finite number >= 0, got nan"),
    ("--patience", "-1", "expected an integer >= 0, got -1"),
])
def test_train_flags_out_of_range_are_usage_errors(trained, tmp_path, capsys, flag, value, message):
    code, err = run_cli(capsys, "train", SPEC, "--data", trained / "images.npz", "-o", tmp_path / "r", flag, value)
    assert code == 2 and f"argument {flag}: {message}" in err


# ---------------------------------------------------------------- system specs: strict types
GAN = ROOT / "examples/06_train_system/gan_aux.yaml"


@pytest.mark.parametrize("old,new,where,message", [
    ("spdnn: 1", "spdnn: true", "4:8", "the format version is the integer 1, got True"),
    ("epochs: 3", "epochs: true", "52:11", "training.epochs: expected a valid integer (got True)"),
    ("batch_size: 16", "batch_size: 16.0", "53:15", "training.batch_size: expected a valid integer"),
    ("lr: 2.0e-4, betas: [0.5, 0.999], networks: [D]", "lr: .nan, betas: [0.5, 0.999], networks: [D]", "48:27",
     "optimizers.opt_d.lr: expected a finite number (got nan)"),
    ("nesterov: true", "nesterov: 1", "50:57", "optimizers.opt_c.nesterov: expected a valid boolean (got 1)"),
    ("{type: bce, input: d_real, target: 1}", "{type: [bce], input: d_real, target: 1}", "44:14",
     "unknown loss type ['bce']"),  # was TypeError: unhashable type: 'list'
    ("{type: bce, input: d_fake, target: 0}", "{type: bce, input: {a: 1}, target: 0}", "44:65",
     "bce loss: input must name a tensor, got {'a': 1}"),  # was TypeError: unhashable type: 'dict'
])
def test_system_spec_values_of_the_wrong_type_are_located_errors(tmp_path, capsys, old, new, where, message):
    text = GAN.read_text()
    assert old in text
    path = tmp_path / "gan.yaml"
    path.write_text(text.replace(old, new, 1))
    code, err = run_cli(capsys, "compile", path, "-o", tmp_path / "o")
    assert code == 2 and f"{path}:{where}: " in err and message in err, err


# ---------------------------------------------------------------- one error path for every command
@pytest.mark.parametrize("command", ["compile", "inspect", "run", "train", "eval", "list", "passes", "schema"])
def test_every_command_exits_2_on_a_user_mistake(trained, tmp_path, capsys, command):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ninputs: {x: [3]}\nlayers:\n  - {op: relux}\n")
    argv, fragment = {
        "compile": (["compile", bad, "-o", tmp_path / "o"], f"{bad}:4:"),
        "inspect": (["inspect", bad], f"{bad}:4:"),
        "run": (["run", bad, "--random"], str(bad)),
        "train": (["train", bad, "--data", trained / "images.npz", "-o", tmp_path / "r"], f"{bad}:4:"),
        "eval": (["eval", bad, "--data", trained / "images.npz"], f"{bad}:4:"),
        "list": (["list", "--jsn"], "unrecognized arguments: --jsn"),
        "passes": (["passes", "insert-dropuot"], "unknown pass 'insert-dropuot'"),
        "schema": (["schema", "-o", tmp_path / "missing" / "s.json"], f"cannot write {tmp_path / 'missing'}"),
    }[command]
    code, err = run_cli(capsys, *argv)
    assert code == 2 and fragment in err, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_a_model_name_too_long_for_a_file_name_is_located_and_creates_no_folder(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "long.yaml"
    spec.write_text(f"name: {'n' * 300}\ninputs: {{x: [3]}}\nlayers:\n  - {{op: relu}}\n")
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, "compile", spec)  # default output folder: out/<name>
    assert code == 2 and f"{spec}:1:7: " in err and "(name_chars)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.yaml"]


def test_onnxruntime_warnings_do_not_reach_the_terminal(trained, tmp_path):
    """An unused initializer makes onnxruntime log a coloured warning from C++ (fd 2) at session
    creation; spdnn run keeps its log quiet."""
    import subprocess
    import sys

    import onnx
    from onnx import numpy_helper

    model = onnx.load(trained / "run" / "tiny_classifier.onnx")
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.float32), "unused_init"))
    path = tmp_path / "unused.onnx"
    onnx.save(model, path)
    proc = subprocess.run([sys.executable, "-m", "spdnn", "run", str(path), "--random", "--cpu"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stderr + proc.stdout and "Removing initializer" not in proc.stderr


# ---------------------------------------------------------------- image folders
@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        np.save(data / f"f{i}.npy", np.zeros((1, 8, 8), np.float32))
    return data


def test_an_image_folder_npy_with_a_broken_header_names_the_file(folder, tmp_path, capsys):
    (folder / "labels.csv").write_text("f0.npy,0\nf1.npy,1\nf2.npy,0\nf3.npy,1\n")
    _npy_with_header(folder / "f1.npy", "{'descr': '<f4', 'shape': (1,")  # was TokenError
    code, err = run_cli(capsys, "train", SPEC, "--data", folder, "-o", tmp_path / "r", "--val-fraction", "0")
    assert code == 2 and f"data {folder / 'f1.npy'}: not a numpy .npy array" in err


def test_a_label_with_too_many_digits_is_located_in_labels_csv(folder, tmp_path, capsys):
    (folder / "labels.csv").write_text("f0.npy,0\nf1.npy,99999999999999999999\nf2.npy,1\nf3.npy,0\n")
    code, err = run_cli(capsys, "train", SPEC, "--data", folder, "-o", tmp_path / "r", "--val-fraction", "0")
    assert code == 2 and f"{folder / 'labels.csv'}:2: label '99999999999999999999' is not a class id" in err


# ---------------------------------------------------------------- layer names and the torch module
@pytest.mark.parametrize("name", ["_steps", "_num_slots", "_result_slots", "forward", "training", "graph_name"])
def test_layer_names_of_torch_internals_compile_or_are_located(tmp_path, capsys, name):
    """The generated module keeps its own state under names no layer can take (``_steps`` and the
    like compile and run); a layer named after a torch.fx.GraphModule attribute is refused at its
    line and column."""
    spec = tmp_path / "n.yaml"
    spec.write_text(f"name: t\ninputs: {{x: [4]}}\nlayers:\n  - {{name: {name}, op: relu}}\n  - {{op: linear, "
                    "out_features: 2}\n")
    code = main(["compile", str(spec), "-o", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    if name.startswith("_"):
        assert code == 0, err
        import onnxruntime as ort

        session = ort.InferenceSession(str(tmp_path / "o" / "t.onnx"), providers=["CPUExecutionProvider"])
        assert session.run(None, {"x": np.ones((2, 4), np.float32)})[0].shape == (2, 2)
    else:
        assert code == 2 and f"{spec}:4:5: layers[0]: layer name '{name}' is an attribute of the generated torch" in err


def test_a_system_network_file_name_too_long_is_located(tmp_path, capsys):
    name = "n" * 300 + ".yaml"
    text = GAN.read_text()
    start = text.index("  G:\n")
    end = text.index("  D:\n")
    path = tmp_path / "gan.yaml"
    path.write_text(text[:start] + f"  G: {name}\n" + text[end:])
    code, err = run_cli(capsys, "compile", path, "-o", tmp_path / "o")
    assert code == 2 and f"{path}:7:6: networks.G: network file 'nnnn" in err and "file name too long" in err, err


# ---------------------------------------------------------------- outputs that are not regular files
@pytest.mark.parametrize("command", ["schema", "run", "compile", "train"])
def test_an_output_that_is_a_fifo_or_device_is_never_replaced(trained, tmp_path, capsys, command):
    """Found by the campaign: as root, ``spdnn schema -o /dev/null`` renamed a regular file over
    /dev/null. A FIFO stands in for a device here (the same rule: not a regular file)."""
    fifo = tmp_path / ("out.npz" if command == "run" else "out")
    os.mkfifo(fifo)
    argv, message = {
        "schema": (["schema", "-o", fifo], f"{fifo} is not a regular file (a device, FIFO or socket)"),
        "run": (["run", trained / "run" / "tiny_classifier.onnx", "--random", "-o", fifo],
                f"output {fifo} is not a regular file"),
        "compile": (["compile", SPEC, "-o", fifo], f"output path {fifo} exists and is not a folder"),
        "train": (["train", SPEC, "--data", trained / "images.npz", "-o", fifo], f"run folder {fifo} exists and is "
                  "not a folder"),
    }[command]
    code, err = run_cli(capsys, *argv)
    assert code == 2 and message in err, err
    import stat

    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == [fifo.name]


def test_parents_of_different_inputs_are_named_with_their_file(tmp_path, capsys):
    iris, depth = ROOT / "specs/iris/p1.yaml", ROOT / "specs/depth/net1.yaml"
    code, err = run_cli(capsys, "compile", iris, depth, "-o", tmp_path / "o")
    assert code == 2 and "parents must share one input" in err
    assert f"parent 'iris_p1' ({iris})" in err or f"parent 'depth_net1' ({depth})" in err, err
