"""spdnn train / spdnn eval from the command line: files, bad input (exit 2), resume equal to an
uninterrupted run, Ctrl-C, and a 2-process torchrun run equal to a 1-process run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import ROOT

from spdnn.cli import main

SPEC = ROOT / "examples/06_train_system/classifier.yaml"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64)
    x = rng.normal(0, 0.3, (64, 1, 8, 8)).astype("float32")
    x[y == 0, :, :4] += 1.0
    x[y == 1, :, 4:] += 1.0
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    return path


def train(*args: str) -> int:
    return main(["train", str(SPEC), "-q", *args])


def test_train_writes_metrics_checkpoints_and_exports(images, tmp_path):
    run = tmp_path / "run"
    assert train("--data", str(images), "-o", str(run), "--epochs", "3", "--lr", "0.02", "--batch-size", "16") == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train/loss"] < rows[0]["train/loss"] and "val/loss" in rows[0]
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("epoch,train/loss")
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 3 and ckpt["format"] == "spdnn-train/1"
    assert set(torch.load(run / "tiny_classifier.pt", weights_only=True)) == {"conv1.weight", "conv1.bias",
                                                                             "fc.weight", "fc.bias"}
    assert main(["eval", str(run / "tiny_classifier.onnx"), "--data", str(images), "--json"]) == 0
    assert main(["eval", str(SPEC), "--weights", str(run / "best.pt"), "--data", str(images), "-q"]) == 0


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((8, 1, 7, 7), "float32"), "y": np.zeros(8, "int64")}, "rows have shape (1, 7, 7), expected (1, 8, 8)"),
    ({"x": np.zeros((8, 1, 8, 8), "int64"), "y": np.zeros(8, "int64")}, "expected floating-point values"),
    ({"x": np.zeros((8, 1, 8, 8), "float32")}, "missing array(s) ['y']"),
    ({"x": np.zeros((8, 1, 8, 8), "float32"), "y": np.full(8, 5)}, "labels must be in [0, 2); row 0 has 5"),
    ({"x": np.zeros((8, 1, 8, 8), "float32"), "y": np.zeros(7, "int64")}, "different numbers of rows"),
    ({"x": np.zeros((4, 1, 8, 8), "float32"), "y": np.zeros(4, "int64")}, "the validation split is empty"),
])
def test_bad_data_is_a_located_error_with_exit_2(arrays, message, tmp_path, capsys):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert train("--data", str(path), "-o", str(tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert f"data {path}" in err and message in err, err


def test_bad_checkpoint_and_foreign_run_folder(images, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"not a checkpoint")
    assert train("--data", str(images), "-o", str(run), "--resume") == 2
    assert "checkpoint" in capsys.readouterr().err
    assert train("--data", str(images), "-o", str(run)) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["train", str(ROOT / "examples/06_train_system/gan_aux.yaml"), "--data", str(images), "--lr", "1"]) == 2
    assert "--lr: for a single network" in capsys.readouterr().err


def assert_same_run(a, b):
    """Two run folders hold the same metrics (but speed) and the same final weights."""
    def metrics(run):
        return [{k: v for k, v in json.loads(line).items() if k != "samples_per_s"}
                for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert metrics(a) == metrics(b)
    wa = torch.load(a / "tiny_classifier.pt", weights_only=True)
    wb = torch.load(b / "tiny_classifier.pt", weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_equals_uninterrupted(images, tmp_path):
    common = ["--data", str(images), "--batch-size", "16", "--lr", "0.02", "--seed", "3"]
    assert train(*common, "-o", str(tmp_path / "a"), "--epochs", "4") == 0
    assert train(*common, "-o", str(tmp_path / "b"), "--epochs", "2") == 0
    assert train(*common, "-o", str(tmp_path / "b"), "--epochs", "4", "--resume") == 0
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_resume_from_the_middle_of_an_epoch_equals_uninterrupted(images, tmp_path, monkeypatch):
    """Interrupted after step 2 of epoch 2 (what Ctrl-C does: finish the step, save, exit 130),
    resumed: the same metrics and weights as a run that was never stopped."""
    from spdnn.backends.torch_exporter.training.loop import Trainer

    common = ["--data", str(images), "--batch-size", "8", "--lr", "0.02", "--seed", "5", "--epochs", "3"]
    assert train(*common, "-o", str(tmp_path / "a")) == 0
    iteration = Trainer._iteration

    def stop_after_step_2_of_epoch_2(self, rows, size):
        iteration(self, rows, size)
        if (self.epoch, self.step) == (1, 1):  # the step being finished is step 2 (0-based 1)
            self.stop_requested = True

    monkeypatch.setattr(Trainer, "_iteration", stop_after_step_2_of_epoch_2)
    assert train(*common, "-o", str(tmp_path / "b")) == 130
    ckpt = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"]) == (1, 2)
    monkeypatch.setattr(Trainer, "_iteration", iteration)
    assert train(*common, "-o", str(tmp_path / "b"), "--resume") == 0
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_ctrl_c_saves_a_loadable_checkpoint_and_exits_130(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", x=rng.normal(size=(4000, 1, 8, 8)).astype("float32"), y=rng.integers(0, 2, 4000))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "spdnn", "train", str(SPEC), "--data", str(tmp_path / "big.npz"),
                             "-o", str(run), "--epochs", "1000", "--batch-size", "8"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: saved" in out and "--resume" in out
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["epoch"] >= 1 and ckpt["format"] == "spdnn-train/1"


def test_torchrun_two_processes_equal_one(tmp_path):  # runs in CI (issue 12 asks for it)
    """Gradients averaged over 2 gloo ranks with half the global batch each = 1 process."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(64, 1, 8, 8)).astype("float32"), y=rng.integers(0, 2, 64))
    args = ["-m", "spdnn", "train", str(SPEC), "--data", str(tmp_path / "d.npz"), "--epochs", "2", "--batch-size",
            "16", "--val-fraction", "0", "--lr", "0.01", "-q", "--device", "cpu"]
    one = subprocess.run([sys.executable, *args, "-o", str(tmp_path / "one")], env=ENV, capture_output=True,
                         text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                          *args, "-o", str(tmp_path / "two")], env=ENV, capture_output=True, text=True, timeout=120)
    assert two.returncode == 0, two.stderr[-2000:]
    a = torch.load(tmp_path / "one" / "tiny_classifier.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "tiny_classifier.pt", weights_only=True)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    start = torch.load(tmp_path / "one" / "last.pt", weights_only=True)["history"]
    assert len(start) == 2
