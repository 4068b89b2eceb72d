"""Loading ONNX files safely.

Rules:
  1. Files over the ``onnx_bytes`` limit (spdnn.limits) are refused before parsing; so are models
     whose external data brings the total over it.
  2. External-data locations must be relative paths without ``..`` or NUL characters that stay
     inside the model's folder after resolving symlinks; the stated offset and length must lie
     inside the file and match the tensor's dimensions. Anything else is refused before a byte
     of external data is read.
  3. The file must parse as a ModelProto; errors name the file.
  4. :func:`load_checked_model` also applies every check of ``validate.py`` (sizes, tensor data,
     the ONNX checker): what the importer and ``spdnn run`` read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import onnx
from onnx.external_data_helper import load_external_data_for_model, uses_external_data

from spdnn import limits
from spdnn.errors import first_line

from .validate import OnnxModelError, check_sizes, tensor_bytes, validate_model

__all__ = ["MAX_BYTES", "load_onnx_file", "load_checked_model", "check_external_data"]

#: the default of the ``onnx_bytes`` limit (kept for callers of the old constant)
MAX_BYTES = limits.LIMITS.onnx_bytes


def load_onnx_file(path: str | Path, max_bytes: int | None = None) -> onnx.ModelProto:
    """Read an ONNX model (and its checked external data); sizes and tensors are checked
    (``check_sizes``) before external data is read."""
    p = Path(path)
    name = str(path)
    limit = limits.current().onnx_bytes if max_bytes is None else max_bytes
    if not p.exists():
        raise OnnxModelError(name, "no such file")
    if p.is_dir():
        raise OnnxModelError(name, "is a directory, expected an .onnx file")
    size = p.stat().st_size
    if size > limit:
        raise OnnxModelError(name, f"file is {size} bytes; ONNX models are limited to {limit} (onnx_bytes)")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:
        raise OnnxModelError(name, f"not a valid ONNX model ({first_line(e)})") from None
    check_sizes(model, name)
    external = check_external_data(model, p.parent, name)
    if size + external > limit:
        raise OnnxModelError(name, f"model and external data are {size + external} bytes; ONNX models are "
                                   f"limited to {limit} (onnx_bytes)")
    if external or any(uses_external_data(t) for t in model.graph.initializer):
        load_external_data_for_model(model, str(p.parent))
    return model


def load_checked_model(path: str | Path) -> onnx.ModelProto:
    """:func:`load_onnx_file` plus every check of ``validate.validate_model``."""
    model = load_onnx_file(path)
    validate_model(model, str(path))
    return model


def check_external_data(model: onnx.ModelProto, folder: Path, name: str) -> int:
    """Refuse external-data references that leave ``folder`` or do not fit their file (rule 2);
    returns the bytes they will read."""
    root = folder.resolve()
    total = 0
    for tensor in model.graph.initializer:
        if not uses_external_data(tensor):
            continue
        where = f"initializer {tensor.name!r}"
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        if (not location or "\0" in location or os.path.isabs(location) or Path(location).is_absolute()
                or ".." in Path(location).parts):
            raise OnnxModelError(name, f"external data location {location!r} must be a relative path inside "
                                       "the model's folder", where)
        target = (folder / location).resolve()
        if root not in target.parents:
            raise OnnxModelError(name, f"external data {location!r} leaves the model's folder (through a "
                                       "symlink)", where)
        if not target.is_file():
            raise OnnxModelError(name, f"external data file {location!r} does not exist", where)
        need = tensor_bytes(tensor, math.prod(tensor.dims))
        if need is None:
            raise OnnxModelError(name, "string tensors cannot be stored as external data", where)
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", need))
        except ValueError:
            raise OnnxModelError(name, f"external data offset {info.get('offset')!r} and length "
                                       f"{info.get('length')!r} must be integers", where) from None
        if length != need:
            raise OnnxModelError(name, f"external data length {length} does not match dims {list(tensor.dims)} "
                                       f"({need} bytes)", where)
        file_size = target.stat().st_size
        if offset < 0 or offset + length > file_size:
            raise OnnxModelError(name, f"external data at offset {offset}, {length} bytes, runs past the end of "
                                       f"{location!r} ({file_size} bytes)", where)
        total += length
    return total
