"""Loading ONNX files safely.

Rules:
  1. Files over ``MAX_BYTES`` are refused before parsing.
  2. External-data locations must be relative paths without ``..`` that stay inside the model's
     folder after resolving symlinks; anything else is refused before a byte is read.
  3. The file must parse as a ModelProto; errors name the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx.external_data_helper import load_external_data_for_model, uses_external_data

from spdnn.errors import Problem, SpecError

__all__ = ["MAX_BYTES", "load_onnx_file", "check_external_data"]

MAX_BYTES = 2 * 1024**3


def _fail(path: str, message: str) -> SpecError:
    return SpecError(Problem(message, path))


def load_onnx_file(path: str | Path, max_bytes: int = MAX_BYTES) -> onnx.ModelProto:
    """Read an ONNX model (and its checked external data)."""
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise _fail(name, "no such file")
    if p.is_dir():
        raise _fail(name, "is a directory, expected an .onnx file")
    size = p.stat().st_size
    if size > max_bytes:
        raise _fail(name, f"file is {size} bytes; ONNX models are limited to {max_bytes}")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:
        raise _fail(name, f"not a valid ONNX model ({str(e).splitlines()[0][:200]})") from None
    check_external_data(model, p.parent, name)
    if any(uses_external_data(t) for t in model.graph.initializer):
        load_external_data_for_model(model, str(p.parent))
    return model


def check_external_data(model: onnx.ModelProto, folder: Path, name: str) -> None:
    """Refuse external-data locations that are absolute, contain '..' or leave ``folder``."""
    root = folder.resolve()
    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        if not location or os.path.isabs(location) or Path(location).is_absolute() or ".." in Path(location).parts:
            raise _fail(name, f"tensor {tensor.name!r}: external data location {location!r} must be a relative "
                              "path inside the model's folder")
        target = (folder / location).resolve()
        if root not in target.parents:
            raise _fail(name, f"tensor {tensor.name!r}: external data {location!r} leaves the model's folder "
                              "(through a symlink)")
        if not target.is_file():
            raise _fail(name, f"tensor {tensor.name!r}: external data file {location!r} does not exist")
