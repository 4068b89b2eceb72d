"""Fast startup: ``spdnn --help`` and ``spdnn schema`` import neither networkx nor torch (nor onnx),
and building IR graphs does not need networkx (only ``Graph.view()`` and merge pictures do)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("networkx", "torch", "onnx", "onnxruntime")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv", [["--help"], ["schema"], ["compile", "--help"]])
def test_cli_commands_that_need_no_graph_import_nothing_heavy(argv):
    proc = run_python(f"""
import contextlib, io, sys
from spdnn.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main({argv!r})
    except SystemExit as e:
        code = e.code
print(repr(code), repr(out.getvalue()[:40]), file=sys.stderr)
print([m for m in {HEAVY!r} if m in sys.modules])
sys.stderr.write(out.getvalue())
""")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"{argv} imported {proc.stdout.strip()}"
    if argv == ["schema"]:
        schema = json.loads(proc.stderr.split("\n", 1)[1])
        assert schema["type"] == "object" and "layers" in schema["properties"]
    else:
        assert "usage: spdnn" in proc.stderr


def test_import_spdnn_is_light_and_the_facade_loads_on_use():
    proc = run_python("""
import sys
import spdnn
light = [m for m in ("networkx", "torch", "onnx", "pydantic", "spdnn.merge") if m in sys.modules]
g = spdnn.Graph("tiny")
g.add_node("x", "input", {"shape": [4]})
g.add_node("fc", "linear", {"out_features": 2}, ["x"])
g.add_node("y", "output", {}, ["fc"])
spdnn.infer_shapes(g)
g.verify()
print(light, "networkx" in sys.modules, spdnn.count_params(g), sorted(set(spdnn.__all__) - set(dir(spdnn))))
""")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "False", "10", "[]"]


def test_facade_reports_unknown_names():
    import spdnn

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        spdnn.nope  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        spdnn.ir.nope  # noqa: B018
