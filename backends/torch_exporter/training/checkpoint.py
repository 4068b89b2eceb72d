"""Checkpoints: written atomically (a temporary file in the same folder, then a rename, so a
killed run never leaves a truncated file), read with ``torch.load(weights_only=True)`` (no
pickled code runs), and checked to be spdnn's before use."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from spdnn.compile import write_file_atomically
from spdnn.errors import SpdnnError

__all__ = ["CHECKPOINT_FORMAT", "WEIGHTS_FORMAT", "load_checkpoint", "save_atomically"]

CHECKPOINT_FORMAT = "spdnn-train/1"
WEIGHTS_FORMAT = "spdnn-weights/1"


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
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise SpdnnError(f"checkpoint {path}: cannot be read as a torch checkpoint with weights_only=True "
                         f"(damaged, truncated, or not written by spdnn): {first}") from None
    if not isinstance(data, dict) or data.get("format") != expected:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise SpdnnError(f"checkpoint {path}: not an spdnn {expected} file (format {got!r})")
    return data
