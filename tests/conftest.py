"""Shared helpers for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SPECS = sorted((ROOT / "specs").glob("*/*.yaml"))


@pytest.fixture
def write(tmp_path):
    """Write a spec text to a file and return its path."""

    def _write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write
