"""The ONNX benchmark scripts run (in --quick mode) and print their tables. They are smoke tests:
nothing here is timed or compared."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("script,header,footer", [
    ("onnx_speed.py", "torch/spdnn ratio: min median    max", "lowest median torch/spdnn ratio:"),
    ("ort_vs_torch_export.py", "spdnn/torch.onnx: min median    max", "highest median spdnn/torch.onnx ratio:"),
])
def test_benchmark_quick_mode_prints_its_table(script, header, footer):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert header in lines[0]
    rows = [line for line in lines[1:-1]]
    assert [r.split()[0] for r in rows][:1] == ["dynamic_filters/mnist_baseline"]
    assert all(len(r.split("|")[-1].split()) == 3 for r in rows)  # min, median, max per row
    assert lines[-1].startswith(footer)
