"""`spdnn compile --init-from-parents`: the merged ONNX starts as the parents' logit average."""

from __future__ import annotations

import shutil

import numpy as np
from conftest import ROOT

from spdnn.backends.onnx_exporter import run_onnx
from spdnn.cli import main


def _logit(p: np.ndarray) -> np.ndarray:
    p = p.astype(np.float64)
    return np.log(p) - np.log1p(-p)


def test_warm_start_from_trained_parents_on_the_command_line(tmp_path, capsys):
    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs" / "iris", specs, ignore=shutil.ignore_patterns("*.md", "*.yml"))
    parents = sorted(specs.glob("p*.yaml"))
    for i, spec in enumerate(parents):  # "trained" parents: each with its own seed
        assert main(["compile", str(spec), "-o", str(tmp_path / spec.stem), "--seed", str(i + 1), "-q"]) == 0
        (tmp_path / spec.stem / f"iris_{spec.stem}.pt").rename(spec.with_suffix(".pt"))
    assert main(["compile", *map(str, parents), "--init-from-parents", "--name", "iris", "-o", str(tmp_path / "merged")]) == 0
    assert "more parameters than the parents together" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((2, 1, 96, 128)).astype(np.float32)
    outs = [run_onnx(str(tmp_path / p.stem / f"iris_{p.stem}.onnx"), [x])[0] for p in parents]
    merged = run_onnx(str(tmp_path / "merged" / "iris.onnx"), [x])[0]
    average = np.mean([_logit(next(iter(o.values()))) for o in outs], axis=0)
    np.testing.assert_allclose(_logit(next(iter(merged.values()))), average, atol=2e-4)


def test_warm_start_needs_weights_and_refuses_a_budget(tmp_path, capsys):
    parents = [str(p) for p in sorted((ROOT / "specs" / "iris").glob("p*.yaml"))]
    assert main(["compile", *parents, "--init-from-parents", "-o", str(tmp_path / "a")]) == 2
    assert "has no trained weights" in capsys.readouterr().err
    assert main(["compile", *parents, "--init-from-parents", "--budget", "largest", "-o", str(tmp_path / "b")]) == 2
    assert "budget cannot be combined" in capsys.readouterr().err
