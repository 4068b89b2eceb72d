"""`spdnn run`: random inputs, checked .npy inputs, output files, hostile inputs (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from spdnn.cli import main

CLASSIFIER = ROOT / "specs" / "vacgan_mnist" / "classifier.yaml"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    assert main(["compile", str(CLASSIFIER), "-o", str(out), "-q"]) == 0
    return out / "vacgan_mnist_classifier.onnx"


def test_random_inputs_are_seeded_and_batched(model, tmp_path, capsys):
    assert main(["run", str(model), "--random", "--batch", "3", "-o", str(tmp_path / "a.npz")]) == 0
    assert main(["run", str(model), "--random", "--batch", "3", "-o", str(tmp_path / "b.npz"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "provider: CPUExecutionProvider" in out and "shape (3, 10) float32" in out
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(a["class_probs"], b["class_probs"])
    np.testing.assert_allclose(a["class_probs"].sum(axis=1), 1, rtol=1e-5)


def test_npy_input_runs(model, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32))
    assert main(["run", str(model), "-i", str(tmp_path / "x.npy")]) == 0
    assert "shape (2, 10)" in capsys.readouterr().out


def _huge_header(path):
    """A valid .npy header promising 10^12 float32 elements, followed by 16 bytes."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (10**6, 1, 1000, 1000)})
        f.write(b"\0" * 16)


@pytest.mark.parametrize("make,args,message", [
    (lambda p: np.save(p, np.zeros((0, 1, 28, 28), np.float32)), [], "the array is empty"),
    (_huge_header, [], "limit 4,294,967,296 (input_bytes)"),
    (lambda p: p.write_bytes(b"not an array"), [], "not a .npy array file"),
    (lambda p: np.save(p, np.array(["a", "b"])), [], "is not numeric"),
    (lambda p: np.save(p, np.zeros((2, 3, 28, 28), np.float32)), [], "expected shape ('N', 1, 28, 28), got (2, 3, 28, 28)"),
    (lambda p: np.save(p, np.zeros((2, 1, 28, 28), np.float32)), ["-o", "{tmp}"], "is a folder; give a file name such as"),
    (lambda p: np.save(p, np.zeros((2, 1, 28, 28), np.float32)), ["-o", "{tmp}/y.txt"], "give a name ending in .npz"),
    (lambda p: np.save(p, np.zeros((2, 1, 28, 28), np.float32)), ["--random"], "either --random or --input"),
])
def test_hostile_inputs_exit_2(model, tmp_path, capsys, make, args, message):
    path = tmp_path / "x.npy"
    make(path)
    argv = ["run", str(model), "-i", str(path), *(a.format(tmp=tmp_path) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_batch_zero_and_missing_inputs_exit_2(model, capsys):
    assert main(["run", str(model), "--random", "--batch", "0"]) == 2
    assert "expected a positive integer, got 0" in capsys.readouterr().err
    assert main(["run", str(model)]) == 2
    assert "no inputs" in capsys.readouterr().err
