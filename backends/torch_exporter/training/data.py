"""Training data on disk: one ``.npz`` file (``numpy.savez``) of arrays with one row per sample,
or a folder of ``.npy`` images with labels or masks (arrays ``x`` and ``y``; :mod:`.image_folder`).

Rules (checked from each array's header before it is loaded; a broken rule is an SpdnnError
naming the file and the array):
  * every data tensor of the system has an array under its ``data:`` key (a single network:
    its input names, or ``x``, and the targets ``y``);
  * every array has at least one row and the same number of rows, and numeric dtype: floating
    point for inputs and regression targets, integers for class labels (``uint8`` masks
    included), with every label in [0, classes);
  * each row has the shape the network takes (``(N, 1, 28, 28)`` for an input of [1, 28, 28]);
  * an array fits in ``limits.input_bytes``.
The validation split is a fraction of the samples (a seeded permutation) or a second file or
folder.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spdnn.errors import SpdnnError, first_line
from spdnn.npy import read_array
from spdnn.system.spec import SystemSpec

__all__ = ["Dataset", "load_dataset", "split"]


@dataclass
class Dataset:
    """Arrays by tensor name, all with ``len`` rows."""

    arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def take(self, rows: np.ndarray) -> Dataset:
        return Dataset({k: v[rows] for k, v in self.arrays.items()})


def load_dataset(path: str | Path, spec: SystemSpec) -> Dataset:
    """Read and check the arrays ``spec`` needs from an .npz file or an image folder (rules in the
    module doc)."""
    p = Path(path)
    wanted = spec.data_keys()
    if p.is_dir():
        return _checked(path, _folder_arrays(p, spec), spec)
    if not p.is_file():
        raise SpdnnError(f"data {path}: no such file" if not p.exists() else f"data {path}: not a file")
    try:
        archive = zipfile.ZipFile(p)
    except _ZIP_ERRORS:
        raise SpdnnError(f"data {path}: not an .npz file (numpy.savez writes one)") from None
    with archive:
        members = {n.removesuffix(".npy"): n for n in archive.namelist() if n.endswith(".npy")}
        missing = [k for k in wanted if k not in members]
        if missing:
            raise SpdnnError(f"data {path}: missing array(s) {missing} (the file has {sorted(members)}); "
                             f"{_role(spec, missing[0])}")
        arrays = {key: _read_member(archive, members[key], f"data {path}: array {key!r}") for key in wanted}
    return _checked(path, arrays, spec)


def _folder_arrays(folder: Path, spec: SystemSpec) -> dict[str, np.ndarray]:
    """``x`` and ``y`` of an image folder (:mod:`.image_folder`), for the tensors reading them."""
    from .image_folder import read_image_folder

    wanted = spec.data_keys()
    other = sorted(set(wanted) - {"x", "y"})
    if other:
        raise SpdnnError(f"data {folder}: an image folder gives arrays 'x' (images) and 'y' (labels or masks), but "
                         f"this network or system also reads {other}; use an .npz file")
    port = {key: spec.shapes[wanted[key].name] if key in wanted else None for key in ("x", "y")}
    arrays = read_image_folder(folder, port["x"], port["y"])
    return {key: arrays[key] for key in wanted}


def _checked(path: str | Path, by_key: dict[str, np.ndarray], spec: SystemSpec) -> Dataset:
    """The rules of the module docstring on arrays by data key; a Dataset by tensor name."""
    wanted = spec.data_keys()
    arrays = {wanted[key].name: array for key, array in by_key.items()}
    rows = {k: len(a) for k, a in arrays.items()}
    if len(set(rows.values())) > 1:
        raise SpdnnError(f"data {path}: arrays have different numbers of rows {rows}; one row per sample")
    for key, decl in wanted.items():
        _check_array(f"data {path}: array {key!r}", arrays[decl.name], spec, decl.name)
    return Dataset({k: _as_torch_ready(a, spec.shapes[k].dtype) for k, a in arrays.items()})


def split(data: Dataset, fraction: float, seed: int, where: str) -> tuple[Dataset, Dataset | None]:
    """Train and validation parts: ``fraction`` of the rows (rounded), picked by a permutation
    seeded with ``seed``; None when ``fraction`` is 0."""
    if not 0 <= fraction < 1:
        raise SpdnnError(f"--val-fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return data, None
    n = len(data)
    n_val = round(n * fraction)
    if n_val == 0:
        raise SpdnnError(f"{where}: the validation split is empty ({fraction} of {n} samples); give more data, a "
                         "larger --val-fraction, --val FILE.npz, or --val-fraction 0 to train without validation")
    if n_val >= n:
        raise SpdnnError(f"{where}: the training split is empty ({n} samples, {n_val} for validation)")
    order = np.random.default_rng(seed).permutation(n)
    return data.take(np.sort(order[n_val:])), data.take(np.sort(order[:n_val]))


def _role(spec: SystemSpec, key: str) -> str:
    decl = spec.data_keys()[key]
    port = spec.shapes.get(decl.name)
    kind = "class labels (integers)" if port and port.dtype == "int64" else "float32 values"
    shape = "(N" + "".join(f", {d}" for d in port.shape) + ")" if port else "(N, ...)"
    return f"{key!r} holds {kind} of shape {shape}"


#: What zipfile and zlib raise for a damaged, encrypted or exotically compressed member.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError)


def _read_member(archive: zipfile.ZipFile, member: str, what: str) -> np.ndarray:
    try:
        with archive.open(member) as f:
            return read_array(f, archive.getinfo(member).file_size, what)
    except _ZIP_ERRORS as e:
        raise SpdnnError(f"{what}: cannot be read from the .npz file (damaged?): {first_line(e)}") from None


def _check_array(what: str, array: np.ndarray, spec: SystemSpec, name: str) -> None:
    port = spec.shapes[name]
    want = tuple(port.shape)
    if tuple(array.shape[1:]) != want:
        raise SpdnnError(f"{what}: rows have shape {tuple(array.shape[1:])}, expected {want} "
                         f"(array shape (N{''.join(f', {d}' for d in want)}), got {array.shape})")
    if port.dtype == "int64":
        if array.dtype.kind not in "iub":
            raise SpdnnError(f"{what}: class labels must be integers, got dtype {array.dtype}")
        classes = _classes_of(spec, name)
        if classes and array.size:
            low, high = int(array.min()), int(array.max())
            if low < 0 or high >= classes:
                bad = int(np.flatnonzero((array.reshape(len(array), -1) < 0).any(1)
                                         | (array.reshape(len(array), -1) >= classes).any(1))[0])
                raise SpdnnError(f"{what}: labels must be in [0, {classes}); row {bad} has "
                                 f"{low if low < 0 else high}")
    elif array.dtype.kind != "f":
        raise SpdnnError(f"{what}: expected floating-point values (float32), got dtype {array.dtype}; "
                         "convert with array.astype('float32') (scaled as the network expects)")
    elif not np.isfinite(array).all():
        raise SpdnnError(f"{what}: holds NaN or infinite values")


def _classes_of(spec: SystemSpec, name: str) -> int:
    for loss in spec.losses.values():
        for term in loss.terms:
            if term.type in ("nll", "cross_entropy") and term.args.get("target") == name:
                return spec.shapes[term.args["input"]].shape[0]
    return 0


def _as_torch_ready(array: np.ndarray, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.int64 if dtype == "int64" else np.float32)
