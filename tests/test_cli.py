"""The spdnn command line: outputs, exit codes, atomic writes, messages for bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, SPECS

import spdnn
from spdnn.cli import main

BASELINE = ROOT / "specs" / "dynamic_filters" / "mnist_baseline.yaml"


def run(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spdnn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_compile_writes_every_output(tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(BASELINE), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "mnist_baseline.dot", "mnist_baseline.mmd", "mnist_baseline.onnx", "mnist_baseline.pt", "mnist_baseline.yaml",
        "report.json", "report.md"]
    state = torch.load(out / "mnist_baseline.pt", weights_only=True)
    module = spdnn.build_torch(spdnn.load_spec(out / "mnist_baseline.yaml"))
    module.load_state_dict(state)
    report = json.loads((out / "report.json").read_text())
    model = report["models"][0]
    assert model["total_params"] == 1570
    assert [r["name"] for r in model["layers"]][:3] == ["image", "conv1", "relu1"]
    assert model["layers"][1]["output_shapes"] == ["(N, 5, 24, 24)"]
    assert "| conv1 | conv2d | image | (N, 5, 24, 24) | 130 |" in (out / "report.md").read_text()
    dot = (out / "mnist_baseline.dot").read_text()
    assert dot.startswith('digraph "mnist_baseline"') and '"conv1" -> "pool1";' in dot
    mmd = (out / "mnist_baseline.mmd").read_text()
    assert mmd.startswith('---\ntitle: "mnist_baseline"\n---\nflowchart TD')
    assert 'conv1["conv1<br/>conv2d 5×5, 5 ch<br/>+ relu<br/>(N, 5, 24, 24)<br/>130 params"]' in mmd
    assert "conv1 --> pool1" in mmd  # relu1 is drawn inside conv1's box


@pytest.mark.slow  # the README test runs the same command in the default run; this one counts the files
def test_compile_all_shipped_specs_in_one_call(tmp_path):
    proc = run("compile", "--separate", *map(str, SPECS), "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {5 * len(SPECS) + 2} files" in proc.stdout
    assert len(json.loads((tmp_path / "report.json").read_text())["models"]) == len(SPECS)


def test_failed_compile_leaves_earlier_outputs_untouched(tmp_path, write):
    out = tmp_path / "out"
    assert main(["compile", str(BASELINE), "-o", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = write("name: mnist_baseline\ninputs: {x: [3]}\nlayers: [{op: nope}]\n")
    assert main(["compile", str(BASELINE), str(bad), "-o", str(out), "--seed", "5"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_failed_compile_creates_nothing(tmp_path, write):
    bad = write("name: t\ninputs: {x: [3]}\nlayers: [{op: linear}]\n")
    assert main(["compile", str(bad), "-o", str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new").exists()


def test_duplicate_model_names_are_refused(tmp_path):
    proc = run("compile", str(BASELINE), str(BASELINE), "-o", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "model name 'mnist_baseline' is also used" in proc.stderr


@pytest.mark.parametrize("content,message", [
    ("name: [unclosed\n", "invalid YAML"),
    ("", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200)), "binary file"),
    ("- just\n- a list\n", "the document is a list"),
])
def test_malformed_input_exits_2_with_a_short_message(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    proc = run("compile", str(path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) < 25
    assert str(path) in proc.stderr


def test_missing_file_and_directory_exit_2(tmp_path):
    for target, message in [(tmp_path / "missing.yaml", "no such file"), (tmp_path, "is a directory")]:
        proc = run("compile", str(target), "-o", str(tmp_path / "out"))
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_output_path_that_is_a_file_exits_2(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["compile", str(BASELINE), "-o", str(target)]) == 2
    assert target.read_text() == "x"


def test_bad_arguments_exit_2():
    assert run("compile").returncode == 2
    assert run("frobnicate").returncode == 2


def test_inspect_prints_the_layer_table_and_json():
    proc = run("inspect", str(BASELINE))
    assert proc.returncode == 0
    assert re.search(r"conv1\s+conv2d\s+\(N, 5, 24, 24\)\s+130\s+144.0 k", proc.stdout)
    assert "total params: 1,570 (1.6 k)" in proc.stdout
    data = json.loads(run("inspect", str(BASELINE), "--json").stdout)
    assert data["total_params"] == 1570 and data["outputs"] == {"logits": "(N, 10)"}


def test_inspect_bad_spec_lists_all_problems(write):
    bad = write("name: t\ninputs: {x: [3]}\nlayers:\n  - {op: linaer}\n  - {op: relu, inputs: y}\n")
    proc = run("inspect", str(bad))
    assert proc.returncode == 2
    assert "2 problems in spec" in proc.stderr
    assert "spec.yaml:4:10: layers[0].op: unknown op 'linaer' (did you mean 'linear'?)" in proc.stderr


def test_schema_is_valid_json_schema_and_accepts_every_shipped_spec(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    assert main(["schema", "-o", str(tmp_path / "s.json")]) == 0
    schema = json.loads((tmp_path / "s.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for spec in SPECS:
        errors = list(validator.iter_errors(yaml.safe_load(spec.read_text())))
        assert not errors, (spec, errors[0].message)
    bad = yaml.safe_load("name: t\ninputs: {x: [3]}\nlayers: [{op: conv2d, kernel_sise: 3, out_channels: 1}]\n")
    assert not validator.is_valid(bad)


def test_core_import_does_not_load_torch_or_onnx():
    code = ("import sys, spdnn; g = spdnn.load_spec(%r); spdnn.summarize(g); "
            "import spdnn.cli; "
            "bad = [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules]; "
            "assert not bad, bad" % str(BASELINE))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stderr


IRIS = sorted((ROOT / "specs" / "iris").glob("*.yaml"))


def test_compile_several_parents_merges_them(tmp_path):
    proc = run("compile", *map(str, IRIS), "-o", str(tmp_path), "--name", "iris_fcdnn", "--budget", "largest")
    assert proc.returncode == 0, proc.stderr
    assert "merged 4 parents into iris_fcdnn: 40 layers became 13" in proc.stdout
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([
        "iris_fcdnn.pt", "iris_fcdnn.onnx", "iris_fcdnn.yaml", "iris_fcdnn.dot", "iris_fcdnn.mmd", "report.json", "report.md",
        "merge_report.json", "merge_report.md",
        *(f"iris_fcdnn.stage{i}_{s}.{ext}" for i, s in enumerate(["parents", "contracted", "relabelled", "final"], 1)
          for ext in ("dot", "mmd")),
    ])
    merge = json.loads((tmp_path / "merge_report.json").read_text())
    assert merge["options"]["budget"] == "largest"
    largest = max(p["params"] for p in merge["parents"].values())
    assert abs(merge["merged"]["params"] - largest) <= 0.02 * largest
    stage1 = (tmp_path / "iris_fcdnn.stage1_parents.dot").read_text()
    assert '"iris_p4__conv8" [label="(13C,8)\\niris_p4__conv8\\niris_p4.conv8"];' in stage1
    final = (tmp_path / "iris_fcdnn.stage4_final.mmd").read_text()
    assert 'c7_o3(["(7C,3)<br/>c7_o3<br/>' in final and "c9_d4 --> c7_o3" in final
    # the merged model's resolved spec compiles again, its weights load
    state = torch.load(tmp_path / "iris_fcdnn.pt", weights_only=True)
    spdnn.build_torch(spdnn.load_spec(tmp_path / "iris_fcdnn.yaml")).load_state_dict(state)


def test_separate_flag_compiles_parents_one_by_one(tmp_path):
    assert main(["compile", "--separate", *map(str, IRIS[:2]), "-o", str(tmp_path)]) == 0
    assert (tmp_path / "iris_p1.pt").exists() and (tmp_path / "iris_p2.pt").exists()
    assert not (tmp_path / "merge_report.json").exists()


@pytest.mark.parametrize("args,message", [
    (["--budget", "lots"], "expected a parameter count or 'largest'"),
    (["--budget", "0"], "the budget must be positive"),
    (["--align", "crop"], "invalid choice: 'crop'"),
    (["--head-kernel", "0"], "expected a positive integer, got 0"),
    (["--name", "my model"], "merged model name 'my model' must be an identifier"),
])
def test_bad_merge_options_exit_2(tmp_path, args, message):
    proc = run("compile", *map(str, IRIS[:2]), "-o", str(tmp_path / "o"), *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_unmergeable_parents_exit_2(tmp_path):
    proc = run("compile", str(IRIS[0]), str(BASELINE), "-o", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "parents must share one input" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
