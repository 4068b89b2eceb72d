"""Deterministic, sanitised node names (``conv``, ``conv_1``, ``conv_2``, ...)."""

from __future__ import annotations

import keyword
import re
from collections.abc import Container

__all__ = ["is_valid_name", "sanitize", "unique_name"]

_VALID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_valid_name(name: str) -> bool:
    """A node name is a Python identifier that is not a keyword (it names a torch submodule)."""
    return bool(_VALID.match(name)) and not keyword.iskeyword(name)


def sanitize(name: str) -> str:
    """Turn any string into a valid node name: other characters become ``_``."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name) or "node"
    if out[0].isdigit():
        out = "n_" + out
    if keyword.iskeyword(out):
        out += "_"
    return out


def unique_name(base: str, taken: Container[str]) -> str:
    """``base`` sanitised, with the smallest ``_N`` suffix (N >= 1) that is not taken."""
    base = sanitize(base)
    if base not in taken:
        return base
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"
