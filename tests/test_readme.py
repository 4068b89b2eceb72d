"""Every command the READMEs show runs as written and prints what they show.

The commands of README.md and of each example's README run in order, in a fresh temporary
copy of the repository (so files written by one command are there for the next), with
``spdnn`` and ``python`` of this interpreter first on PATH. Conventions: tests/readme_blocks.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from readme_blocks import anchor_of, commands_of, links_of, matches, output_paths_of

READMES = [ROOT / "README.md", *sorted((ROOT / "examples").glob("*/README.md"))]
#: The README's install and test commands: CI runs exactly these (.ci/run), not this test.
CI_COMMANDS = ('pip install -e ".[dev]"', "pytest")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A copy of the repository's user-facing files (no .git, no outputs)."""
    dst = tmp_path_factory.mktemp("repo")
    for item in ("specs", "examples", "bench", "tests", "README.md", "pyproject.toml"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dst / item, ignore=shutil.ignore_patterns("__pycache__", "out"))
        elif src.exists():
            shutil.copy(src, dst / item)
    return dst


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "COLUMNS": "100"}


def test_readme_install_and_test_commands_are_what_ci_runs():
    commands = [c.text for c in commands_of(ROOT / "README.md")]
    assert commands[:2] == list(CI_COMMANDS)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install" in ci and '-e ".[dev]"' in ci and "python -m pytest" in ci


@pytest.mark.parametrize("readme", READMES, ids=[str(p.relative_to(ROOT)) for p in READMES])
def test_readme_commands_run_as_written(readme, sandbox):
    commands = [c for c in commands_of(readme) if c.text not in CI_COMMANDS]
    assert commands, f"{readme} shows no command"
    for command in commands:
        if command.skip:
            continue
        argv = [sys.executable, "-c", command.text] if command.python else ["bash", "-c", command.text]
        proc = subprocess.run(argv, cwd=sandbox, env=_env(), capture_output=True,
                              text=True, timeout=600)
        expected_rc = 2 if command.shown and any(line.startswith("spdnn ") and ": error:" in line
                                                 for line in command.shown) else 0
        assert proc.returncode == expected_rc, f"{command}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"
        if command.shown is not None:
            printed = (proc.stdout + proc.stderr).splitlines()
            problem = matches(command.shown, printed, command.numbers_vary)
            assert problem is None, f"{command}: {problem}\nprinted:\n" + "\n".join(printed[:60])
    missing = [path for path in output_paths_of(readme) if not any(sandbox.glob(path))]
    assert not missing, f"{readme.name} names output files that its commands did not write: {missing}"


def test_readme_op_table_is_the_registry():
    from spdnn.ops import markdown_table

    assert markdown_table() in (ROOT / "README.md").read_text(), (
        "README's op table is stale: regenerate it with "
        "python -c \"import spdnn.ops; print(spdnn.ops.markdown_table())\"")


@pytest.mark.parametrize("readme", READMES[1:], ids=[str(p.relative_to(ROOT)) for p in READMES[1:]])
def test_every_example_readme_runs_its_scripts(readme):
    """An example README shows how to run it (its commands run in test_readme_commands_run_as_written)."""
    commands = [c.text for c in commands_of(readme)]
    assert any(c.startswith(("python ", "spdnn ")) for c in commands), readme
    assert (readme.parent / "README.md").is_file() and any(readme.parent.glob("*.py"))


DOCS = [*READMES, *sorted((ROOT / "specs").glob("*/README.md")), *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_point_at_files_and_sections_that_exist(doc):
    text = doc.read_text(encoding="utf-8")
    anchors = {anchor_of(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    for target in links_of(doc):
        path, _, anchor = target.partition("#")
        if path:
            assert (doc.parent / path).exists(), f"{doc.name} links to {path}, which does not exist"
        elif anchor:
            assert anchor in anchors, f"{doc.name} links to #{anchor}, a section it does not have"


def test_pyproject_names_only_readme_sections_that_exist():
    import re

    sections = {line.lstrip("#").strip() for line in (ROOT / "README.md").read_text().splitlines()
                if line.startswith("#")}
    named = re.findall(r'README\S* "([^"]+)" section', (ROOT / "pyproject.toml").read_text())
    assert named and set(named) <= sections, named
