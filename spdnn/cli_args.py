"""Argument types and help formatting shared by the ``spdnn`` subcommands.

Each type raises ``argparse.ArgumentTypeError`` with what was expected, so a bad value is a
one-line usage error (exit 2) naming the flag.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["FORMAT", "budget", "count", "examples", "fraction", "non_negative_float",
           "non_negative_int", "positive_float", "positive_int", "seed"]

#: Keep the line breaks of descriptions and example epilogs.
FORMAT = argparse.RawDescriptionHelpFormatter


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _int_between(text: str, low: int, high: int | None, expected: str) -> int:
    """``text`` as an integer from ``low`` to ``high`` (None: no upper bound)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_between(text, 1, None, "a positive integer")


def non_negative_int(text: str) -> int:
    return _int_between(text, 0, None, "an integer >= 0")


#: Seeds go to numpy, torch and Python generators: the range all of them take.
SEED_MAX = 2**63 - 1


def seed(text: str) -> int:
    """A random seed: an integer from 0 to 2**63 - 1."""
    return _int_between(text, 0, SEED_MAX, "a seed from 0 to 2**63 - 1")


def count(text: str) -> int:
    """A positive count: 2000000000, 2_000_000_000, 2e9."""
    clean = text.replace("_", "").replace(",", "")
    try:
        value = int(clean) if clean.isdigit() else int(float(clean))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected a positive count such as 2e9, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive count, got {text!r}")
    return value


def budget(text: str) -> int | str:
    if text == "largest":
        return text
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a parameter count or 'largest', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("the budget must be positive")
    return value


def _finite(text: str, accept, expected: str) -> float:
    """A finite float for which ``accept(value)`` holds, else a usage error saying ``expected``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value) or not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def fraction(text: str) -> float:
    return _finite(text, lambda v: 0 <= v < 1, "a number in [0, 1)")


def positive_float(text: str) -> float:
    return _finite(text, lambda v: v > 0, "a positive number")


def non_negative_float(text: str) -> float:
    return _finite(text, lambda v: v >= 0, "a finite number >= 0")
