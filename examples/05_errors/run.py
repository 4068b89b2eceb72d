"""Catch spec errors from Python: every problem has a file, line, column and message.

Run from the repository root:  python examples/05_errors/run.py
"""

from pathlib import Path

import spdnn

spec = Path(__file__).resolve().parent / "bad.yaml"
try:
    spdnn.load_spec(spec)
except spdnn.SpecError as error:
    for problem in error.problems:
        print(f"line {problem.line}, column {problem.column}: {problem.message}")
    assert len(error.problems) == 2
else:
    raise AssertionError("bad.yaml should not load")
