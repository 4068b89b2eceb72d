"""Plugins: ops and passes from a package outside spdnn/, found through the ``spdnn.plugins``
entry-point group or ``--plugin MODULE``; broken plugins are clear errors naming them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT

PLUGIN_SRC = ROOT / "tests" / "plugin_pkg"
SPEC = """\
name: plugged
inputs: {x: [4]}
layers:
  - {name: fc, op: linear, out_features: 3}
  - {name: s, op: demo_scale, factor: 0.5}
  - {name: act, op: relu}
passes:
  - {name: demo-scale-outputs, factor: 4}
"""


def install(tmp: Path, entry: str = "spdnn_demo_plugin", name: str = "demo") -> Path:
    """Install the plugin's metadata into ``tmp`` as pip would (a dist-info with the entry point);
    its code comes from tests/plugin_pkg on PYTHONPATH."""
    info = tmp / "site" / "spdnn_demo_plugin-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spdnn-demo-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[spdnn.plugins]\n{name} = {entry}\n")
    return tmp / "site"


def spdnn(args: list[str], cwd: Path, site: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (site, PLUGIN_SRC) if p)
    return subprocess.run([sys.executable, "-m", "spdnn", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_an_installed_plugin_gives_ops_and_passes_to_compile(tmp_path):
    site = install(tmp_path)
    (tmp_path / "plugged.yaml").write_text(SPEC)
    proc = spdnn(["compile", "plugged.yaml", "-o", "out"], tmp_path, site)
    assert proc.returncode == 0, proc.stderr
    resolved = (tmp_path / "out" / "plugged.yaml").read_text()
    assert "op: demo_scale, inputs: [fc], factor: 0.5" in resolved
    assert "{name: output_scale, op: demo_scale, inputs: [act], factor: 4.0}" in resolved  # the plugin's pass ran
    model = onnx.load(str(tmp_path / "out" / "plugged.onnx"))
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Mul", "Relu", "Mul", "Identity"]
    listed = spdnn(["passes"], tmp_path, site)
    assert listed.returncode == 0 and re.search(r"^demo-scale-outputs +Put a demo_scale layer in front of every graph output\.$",
                                                  listed.stdout, re.M)


def test_the_plugin_op_matches_in_torch_and_onnxruntime(tmp_path):
    site = install(tmp_path)
    (tmp_path / "plugged.yaml").write_text(SPEC)
    code = f"""
import numpy as np, torch, spdnn
g = spdnn.load_spec("plugged.yaml")
m = spdnn.build_torch(g, seed=0).eval()
x = torch.randn(3, 4)
y = m(x)
y = next(iter(y.values())) if isinstance(y, dict) else y
ref = torch.relu(0.5 * m.fc(x)) * 4
outs, _ = spdnn.run_onnx(spdnn.export_onnx(g, m.state_dict()).SerializeToString(), {{"x": x.numpy()}})
print(float((y - ref).abs().max()), float(np.abs(next(iter(outs.values())) - y.detach().numpy()).max()))
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, (site, PLUGIN_SRC))))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    torch_err, onnx_err = map(float, proc.stdout.split())
    assert torch_err < 1e-6 and onnx_err < 1e-5


def test_plugin_module_from_the_command_line(tmp_path):
    (tmp_path / "plugged.yaml").write_text(SPEC)
    without = spdnn(["compile", "plugged.yaml", "-o", "out"], tmp_path)
    assert without.returncode == 2 and "unknown op 'demo_scale'" in without.stderr
    proc = spdnn(["compile", "plugged.yaml", "-o", "out", "--plugin", "spdnn_demo_plugin"], tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("entry, message", [
    ("spdnn_demo_plugin.broken", "plugin demo (spdnn_demo_plugin.broken) could not be loaded: ModuleNotFoundError: "
                                 "No module named 'spdnn_no_such_dependency'"),
    ("spdnn_demo_plugin.duplicate", "plugin demo (spdnn_demo_plugin.duplicate) could not be loaded: ValueError: "
                                    "op 'relu' is already registered"),
])
def test_a_broken_plugin_is_an_error_naming_it(tmp_path, entry, message):
    site = install(tmp_path, entry)
    (tmp_path / "plugged.yaml").write_text(SPEC)
    for args in (["compile", "plugged.yaml"], ["passes"]):
        proc = spdnn(args, tmp_path, site)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_plugin_flag_names_the_module(tmp_path):
    proc = spdnn(["passes", "--plugin", "no_such_plugin_module"], tmp_path)
    assert proc.returncode == 2
    assert "plugin no_such_plugin_module could not be loaded: ModuleNotFoundError" in proc.stderr


def test_a_torch_only_op_compiles_to_torch_and_refuses_onnx_naming_the_op(tmp_path):
    (tmp_path / "t.yaml").write_text("name: t\ninputs: {x: [4]}\nlayers:\n  - {op: linear, out_features: 2}\n"
                                     "  - {name: odd, op: demo_torch_only}\n")
    proc = spdnn(["compile", "t.yaml", "--plugin", "spdnn_demo_plugin"], tmp_path)
    assert proc.returncode == 2
    assert ("node 'odd': op 'demo_torch_only' cannot be exported to ONNX: op 'demo_torch_only' is torch only"
            in proc.stderr), proc.stderr
    code = ("import spdnn, spdnn_demo_plugin, torch\ng = spdnn.load_spec('t.yaml')\n"
            "print(tuple(spdnn.build_torch(g, seed=0)(torch.ones(2, 4)).shape))")
    env = dict(os.environ, PYTHONPATH=str(PLUGIN_SRC))
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "(2, 2)" in run.stdout or "'output'" in run.stdout
