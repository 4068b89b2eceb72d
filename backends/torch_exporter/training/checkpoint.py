"""Checkpoints: written atomically (a temporary file in the same folder, then a rename, so a
killed run never leaves a truncated file), read with ``torch.load(weights_only=True)`` (no
pickled code runs), and checked to be spdnn's before use."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import torch

from spdnn.compile import write_file_atomically
from spdnn.errors import SpdnnError, first_line

__all__ = ["CHECKPOINT_FORMAT", "STATE_ERRORS", "WEIGHTS_FORMAT", "check_progress", "load_checkpoint", "save_atomically"]

CHECKPOINT_FORMAT = "spdnn-train/1"
WEIGHTS_FORMAT = "spdnn-weights/1"
#: What torch raises when a state dict does not fit its network, optimiser or generator.
STATE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, RuntimeError, ValueError)


def save_atomically(obj: Any, path: str | Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_file_atomically(path, buffer.getvalue())


def load_checkpoint(path: str | Path, expected: str = CHECKPOINT_FORMAT) -> dict[str, Any]:
    """Load a checkpoint written by ``spdnn train``; SpdnnError for anything else."""
    p = Path(path)
    if not p.is_file():
        raise SpdnnError(f"checkpoint {path}: no such file")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for damaged or foreign files
        raise SpdnnError(f"checkpoint {path}: cannot be read as a torch checkpoint with weights_only=True "
                         f"(damaged, truncated, or not written by spdnn): {first_line(e)}") from None
    if not isinstance(data, dict) or data.get("format") != expected:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise SpdnnError(f"checkpoint {path}: not an spdnn {expected} file (format {got!r})")
    return data


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _names_to(v: Any, ok) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and ok(x) for k, x in v.items())


#: The fields of a ``last.pt`` checkpoint besides the state dicts, each with its rule.
_PROGRESS = {
    "system": ("a name", lambda v: isinstance(v, str)),
    "settings": ("a mapping of integers", lambda v: _names_to(v, _is_int)),
    "epoch": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "step": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "networks": ("a mapping of state dicts", lambda v: _names_to(v, lambda x: isinstance(x, dict))),
    "optimizers": ("a mapping of optimiser states", lambda v: _names_to(v, lambda x: isinstance(x, dict))),
    "schedulers": ("a mapping of schedule states", lambda v: _names_to(v, lambda x: isinstance(x, dict))),
    "balances": ("a mapping of numbers", lambda v: _names_to(v, _is_number)),
    "rng": ("the two random generator states", lambda v: isinstance(v, dict) and all(
        isinstance(v.get(k), torch.Tensor) and v[k].dtype == torch.uint8 for k in ("torch", "noise"))),
    "sums": ("a mapping of numbers", lambda v: _names_to(v, lambda x: isinstance(x, float))),
    "counts": ("a mapping of positive integers", lambda v: _names_to(v, lambda x: _is_int(x) and x > 0)),
    "history": ("a list of metric rows", lambda v: isinstance(v, list) and all(
        _names_to(row, lambda x: _is_int(x) or isinstance(x, float) or x is None) for row in v)),
    "best": ("the best epoch's record", lambda v: isinstance(v, dict) and set(v) == {"value", "epoch", "bad_epochs"}
             and (v["value"] is None or isinstance(v["value"], float)) and _is_int(v["epoch"]) and v["epoch"] >= -1
             and _is_int(v["bad_epochs"]) and v["bad_epochs"] >= 0),
}


def check_progress(ckpt: dict[str, Any], where: str | Path) -> None:
    """Every field of a loaded ``last.pt`` has the type ``spdnn train`` writes (rules in
    ``_PROGRESS``), and the sums and counts name the same losses; SpdnnError naming the field
    otherwise. The state dicts inside are checked by torch when they are loaded."""
    for field, (expected, ok) in _PROGRESS.items():
        if field not in ckpt:
            raise SpdnnError(f"checkpoint {where}: field {field!r} is missing; not a checkpoint spdnn train wrote")
        if not ok(ckpt[field]):
            raise SpdnnError(f"checkpoint {where}: field {field!r} must be {expected} (damaged, or not written by "
                             "spdnn train)")
    if set(ckpt["sums"]) != set(ckpt["counts"]):
        raise SpdnnError(f"checkpoint {where}: fields 'sums' and 'counts' name different losses (damaged)")
