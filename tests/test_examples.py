"""Every example runs as its README says."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_readme_commands_run(example):
    commands = re.findall(r"```bash\n(.*?)```", (example / "README.md").read_text(), re.S)
    assert commands, "the example README has no bash block"
    for block in commands:
        for line in filter(None, (s.strip() for s in block.splitlines())):
            assert line.startswith("python "), line
            proc = subprocess.run([sys.executable, *line.split()[1:]], cwd=ROOT, capture_output=True,
                                  text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr
