"""docs/limits.md documents every limit of spdnn.limits.Limits with its default."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from spdnn.limits import LIMITS, FLAGS, Limits

DOC = (Path(__file__).parent.parent / "docs" / "limits.md").read_text(encoding="utf-8")


def rows() -> dict[str, str]:
    return {m[1]: m[0] for m in re.finditer(r"^\| `(\w+)` \|.*$", DOC, re.M)}


def test_every_limit_is_documented_with_its_default_and_flag():
    table = rows()
    names = [f.name for f in fields(Limits)]
    assert sorted(table) == sorted(names), "docs/limits.md and spdnn.limits.Limits list different limits"
    for name in names:
        row = table[name]
        assert f"| {getattr(LIMITS, name):,}" in row, f"{name}: default {getattr(LIMITS, name):,} not in {row!r}"
        if name in FLAGS:
            assert f"`{FLAGS[name]}`" in row
