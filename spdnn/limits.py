"""Every size limit of spdnn, in one place (documented in ``docs/limits.md``).

Limits are checked *before* the work they protect: a file's size before it is read, a repeat
count before it is expanded, a tensor's element count before anything is allocated. A message
that reports a limit names it, its value and, where one exists, the flag that raises it
(``limit_message``).

The values are process-wide defaults; the CLI flags (``--max-params`` ...) and the Python API
override them for one call with :func:`overridden`, which restores the previous values after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

__all__ = ["Limits", "LIMITS", "current", "overridden", "limit_message", "human_bytes"]


@dataclass(frozen=True)
class Limits:
    """The limits in force. Field docs are the text of ``docs/limits.md``."""

    # -- spec files (YAML) ------------------------------------------------------------------
    spec_bytes: int = 2 * 1024 * 1024
    """Size of one spec file or spec text, in bytes."""
    spec_depth: int = 50
    """Nesting depth of mappings and sequences in a spec."""
    spec_values: int = 200_000
    """Scalar and collection values in one spec file."""
    layers: int = 100_000
    """Layers of one network after ``repeat:`` expansion."""
    repeat_count: int = 10_000
    """The count of one ``repeat:`` block."""
    name_chars: int = 128
    """Characters of a model, layer, input or output name (names become file and module names)."""
    spec_nesting: int = 8
    """Specs loaded by a spec's passes (an auxiliary head's spec, an autoencoder's), nested."""

    # -- expressions ($..., ${...}) ----------------------------------------------------------
    expr_chars: int = 1_000
    """Characters of one expression."""
    expr_depth: int = 50
    """Nesting depth of one expression's syntax tree."""
    expr_nodes: int = 500
    """Syntax-tree nodes of one expression."""
    int_digits: int = 30
    """Decimal digits of any integer an expression computes or a spec states."""
    seq_items: int = 100_000
    """Items of a list or characters of a string an expression computes."""

    # -- tensors -------------------------------------------------------------------------------
    max_params: int = 2_000_000_000
    """Parameters of one layer, and of the whole network (flag ``--max-params``)."""
    max_elements: int = 2_000_000_000
    """Elements of one sample of any tensor a network computes (flag ``--max-elements``)."""
    max_dim: int = 1_000_000
    """Any one dimension of a tensor (channels, height, width, features)."""

    # -- ONNX models -----------------------------------------------------------------------
    onnx_bytes: int = 2 * 1024**3
    """Size of an ONNX model file including its external data, in bytes."""
    onnx_nodes: int = 100_000
    """Nodes of an ONNX graph."""

    # -- data given to `spdnn run` -----------------------------------------------------------
    input_bytes: int = 4 * 1024**3
    """Size of one input array for ``spdnn run`` (checked from the .npy header), in bytes."""
    max_batch: int = 100_000
    """Batch size of ``spdnn run --random --batch``."""


LIMITS = Limits()
_current: list[Limits] = [LIMITS]


def current() -> Limits:
    """The limits in force now."""
    return _current[-1]


@contextlib.contextmanager
def overridden(**changes: int) -> Iterator[Limits]:
    """Run a block with some limits changed: ``with overridden(max_params=10**10): ...``."""
    names = {f.name for f in fields(Limits)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise TypeError(f"unknown limit(s): {', '.join(unknown)}")
    _current.append(replace(current(), **changes))
    try:
        yield _current[-1]
    finally:
        _current.pop()


#: The CLI flag that raises a limit, where one exists.
FLAGS = {"max_params": "--max-params", "max_elements": "--max-elements"}


def limit_message(what: str, name: str) -> str:
    """``"<what>; limit 2e9 (max_params), raise with --max-params"``."""
    value = getattr(current(), name)
    flag = FLAGS.get(name)
    tail = f", raise with {flag}" if flag else ""
    return f"{what}; limit {value:,} ({name}{tail})"


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; 1.6e13 -> '14.6 TiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
