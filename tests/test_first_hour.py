"""A new user's first hour (issue 8): the headline command, output folders, pictures, the
schema for editors, CLI conventions, human-readable sizes, clashing model names."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

import spdnn
from spdnn.cli import main
from spdnn.render import to_dot, to_mermaid
from spdnn.summary import human_count, human_flops

IRIS = sorted((ROOT / "specs" / "iris").glob("*.yaml"))
BASELINE = ROOT / "specs" / "dynamic_filters" / "mnist_baseline.yaml"


def spdnn_cli(*args: str, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spdnn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, **kw)


# 1. the headline command as written ---------------------------------------------------------

def test_headline_command_without_output_flag_writes_out_iris(tmp_path):
    shutil.copytree(ROOT / "specs" / "iris", tmp_path / "specs" / "iris")
    proc = subprocess.run("spdnn compile specs/iris/*.yaml", shell=True, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "wrote 17 files to out/iris"
    assert (tmp_path / "out" / "iris" / "iris.onnx").is_file()


# 2. output folders never mix two runs -------------------------------------------------------

def test_second_compile_replaces_the_folder_as_a_whole(tmp_path):
    out = tmp_path / "out"
    assert main(["compile", *map(str, IRIS), "--name", "iris_fcdnn", "-o", str(out), "-q"]) == 0
    assert main(["compile", *map(str, IRIS), "-o", str(out), "-q"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 17 and not any(n.startswith("iris_fcdnn") for n in names)
    report = (out / "merge_report.md").read_text()
    assert report.startswith("# SPDNN merge: iris\n")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left beside it


def test_folder_with_foreign_files_is_refused_and_untouched(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["compile", str(BASELINE), "-o", str(tmp_path)]) == 2
    assert "holds files spdnn did not write" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_leftovers_of_killed_runs_are_cleaned(tmp_path):
    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale_stage = tmp_path / f".spdnn-stage-model-{dead}-abc123"
    stale_stage.mkdir()
    (stale_stage / "half.onnx").write_bytes(b"partial")
    orphan_old = tmp_path / f".spdnn-old-earlier-{dead}-xyz789"  # killed between the two renames
    orphan_old.mkdir()
    (orphan_old / "report.json").write_text('{"models": []}')
    assert main(["compile", str(BASELINE), "-o", str(tmp_path / "model"), "-q"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "model"]
    assert (tmp_path / "earlier" / "report.json").is_file()  # restored, not lost


# 3. README: the op table, the GPU section, no dead references -------------------------------

def test_pyproject_and_docstrings_point_at_things_that_exist():
    readme = (ROOT / "README.md").read_text()
    if '"GPU"' in (ROOT / "pyproject.toml").read_text():
        assert "\n## GPU\n" in readme
    for path in re.findall(r"specs/[\w/]+\.yaml", spdnn.__doc__ or ""):
        assert (ROOT / path).is_file(), f"spdnn.__doc__ names {path}"
    from spdnn import passes

    assert "--passes" not in (passes.__doc__ or "")


# 4. pictures --------------------------------------------------------------------------------

def _merged_iris():
    return spdnn.merge_networks([spdnn.load_spec(p) for p in IRIS], "iris: merged \"net\" #1").graph


_NODE_LINE = re.compile(r'^  (\w+)(\[/|\(\[|\[)"([^"]*)"(/\]|\]\)|\])$')
_EDGE_LINE = re.compile(r'^  (\w+) -->(\|"[^"|]*"\|)? (\w+)$')


def _check_mermaid(text: str) -> list[str]:
    """Front matter parses as YAML; every other line is a quoted node or an edge."""
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    meta = yaml.safe_load(front)
    lines = body.splitlines()
    assert lines[0] == "flowchart TD"
    ids = []
    for line in lines[1:]:
        node, edge = _NODE_LINE.match(line), _EDGE_LINE.match(line)
        assert node or edge, line
        if node:
            ids.append(node[1])
            assert "#" not in node[3].replace("#quot;", "").replace("#35;", "").replace("#lt;", "").replace("#gt;", "")
    assert "end" not in ids
    return [meta["title"], *ids]


def test_mermaid_front_matter_and_labels_are_escaped(tmp_path):
    graph = _merged_iris()
    title, *_ = _check_mermaid(to_mermaid(graph))
    assert title == graph.name
    g = spdnn.Graph("end")
    g.add_node("end", "input", {"shape": [3, 8, 8]})
    g.add_node("graph", "conv2d", {"out_channels": 2, "kernel_size": 3}, ["end"])
    g.add_node("out", "output", {}, ["graph"])
    spdnn.run_passes(g, "infer-shapes")
    ids = _check_mermaid(to_mermaid(g, "full"))[1:]
    assert ids == ["n_end", "n_graph", "out"]


@pytest.mark.parametrize("text", ['a "b" #1', "x<y> & z", "#quot; literal", "end", "it's: a, b --- c", "%% {x}"])
def test_mermaid_label_and_title_escaping_round_trips(text):
    from spdnn.render import mermaid_text, mermaid_title

    label = mermaid_text(text)
    assert not set('"<>') & set(label)
    assert re.fullmatch(r"([^#]|#(quot|35|lt|gt);)*", label), label  # every '#' starts an entity code
    decoded = re.sub(r"#(quot|35|lt|gt);", lambda m: {"quot": '"', "35": "#", "lt": "<", "gt": ">"}[m[1]], label)
    assert decoded == text
    front = mermaid_title(text)
    assert front[0] == front[-1] == "---" and yaml.safe_load("\n".join(front[1:-1])) == {"title": text}


def test_stage_pictures_render(tmp_path):
    assert main(["compile", *map(str, IRIS), "-o", str(tmp_path), "-q"]) == 0
    for stage in sorted(tmp_path.glob("*.stage*.mmd")):
        title = _check_mermaid_stage(stage.read_text())
        assert title.startswith("iris: stage ")


def _check_mermaid_stage(text: str) -> str:
    front, body = text[4:].split("\n---\n", 1)
    for line in body.splitlines()[1:]:
        assert re.match(r'^  \w+(\(\["[^"]*"\]\)|\["[^"]*"\])$', line) or _EDGE_LINE.match(line), line
    return yaml.safe_load(front)["title"]


def test_compact_picture_folds_norm_and_activation():
    graph = _merged_iris()
    compact, full = to_dot(graph), to_dot(graph, "full")
    boxes = lambda dot: len(re.findall(r"\[label=", dot))  # noqa: E731
    assert boxes(compact) < boxes(full) / 2
    assert "conv2d 3×3, 16 ch\\n+ batch_norm + relu" in compact or "conv2d 3×3, 16 ch\\n+ relu" in compact
    with pytest.raises(ValueError, match="picture style"):
        to_dot(graph, "tiny")


def test_picture_flag_full_draws_every_node(tmp_path):
    assert main(["compile", str(BASELINE), "-o", str(tmp_path), "--picture", "full", "-q"]) == 0
    assert '"conv1" -> "relu1";' in (tmp_path / "mnist_baseline.dot").read_text()


# 5. CLI conventions -------------------------------------------------------------------------

def test_broken_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "spdnn", "inspect", str(BASELINE), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 141)
    assert err == ""


def test_quiet_and_verbose(tmp_path, capsys):
    assert main(["compile", str(BASELINE), "-o", str(tmp_path / "a"), "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["compile", str(BASELINE), "-o", str(tmp_path / "b"), "-v"]) == 0
    out = capsys.readouterr().out
    assert f"  {tmp_path / 'b' / 'mnist_baseline.onnx'}" in out.splitlines()
    assert main(["inspect", str(BASELINE), "-q"]) == 0  # the table is what inspect is for: -q keeps it
    assert capsys.readouterr().out.startswith("model mnist_baseline\n")
    assert main(["run", str(tmp_path / "a" / "mnist_baseline.onnx"), "--random", "-o", str(tmp_path / "y.npz"),
                 "-q"]) == 0
    assert capsys.readouterr().out == "" and (tmp_path / "y.npz").is_file()


def _subcommands() -> list[str]:
    """Every subcommand the parser has (so a new command cannot skip its help)."""
    import argparse

    from spdnn.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_the_help_tests_cover_every_command():
    assert set(_subcommands()) >= {"compile", "inspect", "run", "list", "schema", "train", "eval", "passes"}


@pytest.mark.parametrize("command", _subcommands())
def test_every_command_has_a_description_and_examples(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    examples = text.split("\nexamples:\n", 1)[1].splitlines()
    assert any(line.strip().startswith(f"spdnn {command}") for line in examples), examples
    for path in re.findall(r"(?:specs|examples)/[\w./*-]+", "\n".join(examples)):
        assert list(ROOT.glob(path)), f"spdnn {command} --help names {path}, which does not exist"
    description = text.split("\n\n")[1]
    assert len(description) > 40 and not description.startswith(("positional", "options"))


def test_top_level_help_lists_every_command_with_examples(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in _subcommands():
        assert re.search(rf"^    {command} +\S", text, re.M), command
    assert "\nexamples:\n  spdnn compile specs/iris/*.yaml" in text


def test_internal_errors_exit_1_with_one_line_and_traceback_only_with_v(monkeypatch, capsys):
    import spdnn.cli as cli

    def broken(args, console):
        raise RuntimeError("boom")

    monkeypatch.setitem(cli._COMMANDS, "inspect", broken)
    assert main(["inspect", str(BASELINE)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "internal error" in err and "RuntimeError: boom" in err
    assert "please report it" in err and "Traceback" not in err
    assert main(["inspect", str(BASELINE), "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_ctrl_c_exits_130_without_traceback(monkeypatch, capsys):
    import spdnn.cli as cli

    def interrupted(args, console):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli._COMMANDS, "inspect", interrupted)
    assert main(["inspect", str(BASELINE)]) == 130
    assert "Traceback" not in capsys.readouterr().err


# 6. the JSON Schema helps an editor ---------------------------------------------------------

@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    from spdnn.frontends.yaml_importer.schema import spec_json_schema

    return jsonschema.Draft202012Validator(spec_json_schema())


def test_every_op_and_attribute_has_a_description():
    from spdnn.frontends.yaml_importer.schema import spec_json_schema

    defs = spec_json_schema()["$defs"]
    for op in spdnn.all_ops():
        if op in ("input", "output"):
            continue
        layer = defs[f"layer_{op}"]
        assert layer["properties"]["op"]["description"]
        attrs = spdnn.get_op(op).attrs.model_fields
        for attr in attrs:
            assert layer["properties"][attr].get("description"), (op, attr)


@pytest.mark.parametrize("text,valid", [
    ("defaults: {conv2d: {kernel_size: 3}}", True),
    ("defaults: {conv2d: {kernel_sise: 3}}", False),
    ("defaults: {conv2d: {kernel_size: wide}}", False),
    ("defaults: {convv2d: {kernel_size: 3}}", False),
])
def test_defaults_are_validated_per_op(validator, text, valid):
    spec = yaml.safe_load(f"name: t\n{text}\ninputs: {{x: [1, 8, 8]}}\nlayers: [{{op: relu}}]\n")
    assert validator.is_valid(spec) is valid


@pytest.mark.parametrize("name,valid", [("conv1", True), ("conv${i}", True), ("my layer", False), ("1conv", False)])
def test_layer_and_model_names_follow_the_identifier_rule(validator, name, valid):
    layer = yaml.safe_load(f"name: t\ninputs: {{x: [1, 8, 8]}}\nlayers: [{{op: relu, name: '{name}'}}]\n")
    model = yaml.safe_load(f"name: '{name}'\ninputs: {{x: [1, 8, 8]}}\nlayers: [{{op: relu}}]\n")
    assert validator.is_valid(layer) is valid and validator.is_valid(model) is valid


# 8. human-readable sizes --------------------------------------------------------------------

def test_human_sizes():
    assert human_count(350_369) == "350.4 k" and human_count(6_653_889) == "6.65 M" and human_count(130) == "130"
    assert human_flops(8_608_296_960) == "8.61 GFLOPs" and human_flops(130) == "130 FLOPs"
    assert human_flops(2_500_000_000_000) == "2.50 TFLOPs"


def test_json_reports_keep_exact_numbers(tmp_path):
    assert main(["compile", *map(str, IRIS), "-o", str(tmp_path), "-q"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["models"][0]["total_params"] == 350_369
    assert report["models"][0]["total_flops"] == 8_608_296_960


# 9. torch-exported parents share the name main_graph ---------------------------------------

def _export(path: Path, width: int) -> None:
    import torch

    torch.manual_seed(width)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(width, 1, 3, padding=1), torch.nn.Sigmoid())
    torch.onnx.export(net, torch.zeros(1, 1, 16, 16), str(path), dynamo=False, input_names=["image"],
                      dynamic_axes={"image": {0: "N"}})


def test_clashing_model_names_fall_back_to_file_stems(tmp_path):
    _export(tmp_path / "left.onnx", 4)
    _export(tmp_path / "right.onnx", 6)
    proc = spdnn_cli("compile", str(tmp_path / "left.onnx"), str(tmp_path / "right.onnx"), "-o", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "note: model 'main_graph' of" in proc.stdout and "is renamed 'left'" in proc.stdout
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert any("renamed 'right'" in note for note in report["notes"])
    merge = json.loads((tmp_path / "o" / "merge_report.json").read_text())
    assert sorted(merge["parents"]) == ["left", "right"]


def test_error_messages_suggest_only_methods_that_exist():
    import inspect

    from spdnn.ir import graph as graph_module

    for method in re.findall(r"use (\w+)\(\)|with (\w+)\(\)", inspect.getsource(graph_module)):
        name = next(m for m in method if m)
        assert hasattr(spdnn.Graph, name), name
