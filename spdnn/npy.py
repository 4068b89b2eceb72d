"""Reading ``.npy`` arrays that users give (``spdnn run`` inputs, ``spdnn train`` data).

The header is read and checked first (numeric dtype, a non-empty array with a batch dimension,
its size against ``limits.input_bytes``, and that the file holds the bytes the header promises),
so a header promising 10^12 elements is refused without allocating.
"""

from __future__ import annotations

import math
from typing import BinaryIO

import numpy as np

from spdnn.errors import SpdnnError
from spdnn.limits import current, human_bytes, limit_message

__all__ = ["read_array"]


def read_array(f: BinaryIO, available: int, what: str) -> np.ndarray:
    """The array stored in ``f`` (positioned at its start, ``available`` bytes long); ``what``
    names it in error messages."""
    try:
        version = np.lib.format.read_magic(f)
        header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = header(f, max_header_size=10_000)
    except Exception:  # numpy parses the header as Python text: any error there means a damaged file
        raise SpdnnError(f"{what}: not a .npy array file (numpy.save writes one)") from None
    if any(d < 0 for d in shape):
        raise SpdnnError(f"{what}: the header gives a negative dimension (shape {shape}); the file is damaged")
    if dtype.hasobject or dtype.kind not in "fiub":
        raise SpdnnError(f"{what}: dtype {dtype} is not numeric; save a float32 array")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > current().input_bytes:
        raise SpdnnError(f"{what}: shape {shape} is {human_bytes(nbytes)}; " + limit_message("too large", "input_bytes"))
    if not shape or count == 0:
        raise SpdnnError(f"{what}: the array is empty or a scalar (shape {shape}); give one row per sample")
    left = available - f.tell()
    if left < nbytes:
        raise SpdnnError(f"{what}: the header promises {nbytes:,} bytes of data, the file holds {left:,}")
    array = np.frombuffer(f.read(nbytes), dtype=dtype, count=count).copy()
    return array.reshape(shape, order="F" if fortran else "C")
