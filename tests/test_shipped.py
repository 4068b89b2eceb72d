"""Shipped models: specs/ installs as spdnn.specs, `spdnn list` lists it, and shipped names work
where spec paths do (spdnn.shipped rules 1-2)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from spdnn.cli import main
from spdnn.shipped import catalogue, resolve_input, resolve_inputs, specs_dir

ROOT = Path(__file__).parent.parent
SPECS = ROOT / "specs"


def test_the_shipped_specs_are_the_checkouts():
    assert specs_dir().resolve() == SPECS.resolve()


def test_every_python_package_and_every_spec_file_is_installed():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = {name: ROOT / path for name, path in tool["package-dir"].items()}

    def folder(package: str) -> Path:
        top = max((n for n in dirs if package == n or package.startswith(n + ".")), key=len)
        return dirs[top].joinpath(*package[len(top):].split(".")[1:])

    listed = {folder(p).resolve() for p in tool["packages"]}
    on_disk = {init.parent.resolve() for top in dirs.values() for init in top.rglob("__init__.py")}
    assert listed == on_disk, f"packages missing from pyproject.toml: {sorted(map(str, on_disk - listed))}"
    data = {f for pattern in tool["package-data"]["spdnn.specs"] for f in SPECS.glob(pattern)}
    wanted = {f for ext in ("yaml", "yml", "md") for f in SPECS.rglob(f"*.{ext}")}
    assert wanted <= data, f"spec files left out of the wheel: {sorted(map(str, wanted - data))}"


def test_shipped_names_resolve_and_paths_win(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_inputs(["iris"]) == [str(p) for p in sorted((SPECS / "iris").glob("*.yaml"))]
    classifier = str(SPECS / "vacgan_mnist" / "classifier.yaml")
    assert resolve_inputs(["vacgan_mnist/classifier"]) == [classifier]
    assert resolve_input("vacgan_mnist/classifier.yaml") == classifier
    system = SPECS / "dynamic_filters" / "systems" / "mnist_dynamic.yaml"
    assert resolve_input("dynamic_filters/systems/mnist_dynamic") == str(system)
    for name in ("nope", "iris/p9", "../specs/iris/p1", "iris/../iris/p1", ".", "/iris"):
        assert resolve_inputs([name]) == [name]
    (tmp_path / "iris").write_text("a local file named like a shipped folder")
    assert resolve_inputs(["iris"]) == ["iris"]


def test_commands_take_shipped_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["inspect", "vacgan_mnist/classifier"]) == 0
    assert "total params: 217,394" in capsys.readouterr().out
    assert main(["inspect", "iris"]) == 2
    assert "'iris' is a folder of 4 shipped specs; name one: iris/p1, iris/p2, iris/p3, iris/p4" in \
        capsys.readouterr().err
    assert main(["compile", "vacgan_mnist/classifier"]) == 0
    assert (tmp_path / "out" / "vacgan_mnist_classifier" / "vacgan_mnist_classifier.onnx").is_file()
    assert main(["inspect", "no_such_model"]) == 2
    assert "no_such_model" in capsys.readouterr().err


def test_list_names_every_shipped_spec_with_its_parameters(capsys):
    assert main(["list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    networks = {f"{p.parent.name}/{p.stem}" for p in SPECS.glob("*/*.yaml")}
    systems = {f"{p.parent.parent.name}/systems/{p.stem}" for p in SPECS.glob("*/systems/*.yaml")}
    assert set(listed) == networks | systems
    assert listed["vacgan_mnist/generator"] == {
        "name": "vacgan_mnist/generator", "paper": "SPDNN thesis (seed 003)", "ids": ["TH-H1"], "kind": "network",
        "params": 6_653_889, "status": "checked"}
    assert listed["iris/p1"]["params"] == 59_105
    assert all(m["status"] in ("checked", "compiles") for m in listed.values()), \
        [m for m in listed.values() if m["status"] not in ("checked", "compiles")]
    assert all(m["paper"].endswith(")") for m in listed.values() if not m["name"].startswith("building_blocks"))


def test_list_table_is_readable(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["model", "kind", "params", "status", "IDs"]
    assert any(line.startswith("vacgan_mnist/classifier ") and " 217.4 k " in line for line in lines)
    assert lines[-1].endswith("spdnn compile iris, spdnn inspect vacgan_mnist/classifier")
    assert len(catalogue()) == len(lines) - 2


def test_a_nul_byte_in_a_name_is_a_clear_error(capsys):
    import spdnn

    assert resolve_inputs(["iris\0"]) == ["iris\0"]
    assert main(["inspect", "iris\0"]) == 2
    assert "an argument contains a NUL byte" in capsys.readouterr().err
    with pytest.raises(spdnn.SpecError, match="a file name cannot contain a NUL byte"):
        spdnn.load_spec("x\0.yaml")
