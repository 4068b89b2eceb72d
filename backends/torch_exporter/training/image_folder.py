"""Training data as a folder of images: arrays ``x`` (images) and ``y`` (class ids or masks).

Images are ``.npy`` files (``numpy.save``), one sample each, of the network input's shape
``(C, H, W)`` (``(H, W)`` is taken as one channel); floating-point values are used as they are,
``uint8`` values are divided by 255. Pictures (PNG, JPEG, BMP, TIFF, WebP, GIF) are read with
Pillow (``pip install "spdnn[images]"``; without it they are refused with that hint): converted
to grey for a 1-channel input, RGB for 3 channels, RGBA for 4, values divided by 255, and never
resized: a picture of another size is an error naming both sizes, found from its header before
it is decoded (so a huge or truncated file costs nothing). A mask picture holds class ids as its
pixel values (grey or palette mode).

Layouts (the first that applies):
  * ``masks/``: images in ``images/``, one mask per image in ``masks/`` under the same file
    name, an integer ``(H, W)`` array of class ids (segmentation);
  * ``labels.csv``: rows ``file,label`` (a header row ``file,label`` is allowed), files relative
    to the folder; labels are integer class ids, or class names numbered in sorted order;
  * subfolders: one per class, numbered in sorted name order (``cat`` 0, ``dog`` 1);
  * ``.npy`` files directly in the folder: images without labels (for systems that read no ``y``).

Files are read in sorted order. Every broken rule is an SpdnnError naming the file (and the CSV
line). Sizes are checked from each file's header, and the whole set against
``limits.input_bytes``, before any image is loaded.
"""

from __future__ import annotations

import csv
import re
import math
from pathlib import Path

import numpy as np

from spdnn.errors import SpdnnError
from spdnn.limits import current, human_bytes, limit_message
from spdnn.system.spec import Port

__all__ = ["read_image_folder"]

_PICTURES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def read_image_folder(folder: Path, image: Port | None, target: Port | None) -> dict[str, np.ndarray]:
    """Arrays ``x`` (and ``y`` when the folder has labels or masks) for input port ``image`` and
    target port ``target`` (None: the system reads no such array)."""
    where = f"data {folder}"
    masks: list[Path] | None = None
    if image is None:
        raise SpdnnError(f"{where}: an image folder gives arrays 'x' (images) and 'y' (labels or masks), but this "
                         "network or system reads no array 'x'; use an .npz file")
    if (folder / "masks").is_dir():
        files = _npy_files(folder / "images", where)
        masks = [folder / "masks" / f.name for f in files]
        for f, m in zip(files, masks):
            if not m.is_file():
                raise SpdnnError(f"{where}: image {f.name} has no mask masks/{f.name}")
        extra = sorted({m.name for m in _npy_files(folder / "masks", where)} - {f.name for f in files})
        if extra:
            raise SpdnnError(f"{where}: mask masks/{extra[0]} has no image images/{extra[0]}")
        labels = None
    elif (folder / "labels.csv").is_file():
        files, labels = _read_csv(folder, where)
    elif subfolders := sorted(p for p in folder.iterdir() if p.is_dir()):
        files, labels = [], []
        for k, sub in enumerate(subfolders):
            found = _npy_files(sub, where)
            files += found
            labels += [k] * len(found)
    else:
        files, labels = _npy_files(folder, where), None
    if target is not None and labels is None and masks is None:
        raise SpdnnError(f"{where}: missing labels: the targets 'y' come from subfolders per class, a labels.csv "
                         "or a masks/ folder (docs/training.md)")
    _check_budget(len(files), image, where)
    out = {"x": np.stack([_read(f, image, where) for f in files])}
    if target is not None:
        if target.dtype != "int64":
            raise SpdnnError(f"{where}: an image folder gives class ids or masks, but the target 'y' is "
                             f"{target.dtype} of shape {_fmt(target.shape)}; use an .npz file for such targets")
        if masks is not None:
            out["y"] = np.stack([_read(m, target, where) for m in masks])
        else:
            out["y"] = np.asarray(labels, dtype=np.int64)
    return out


def _npy_files(folder: Path, where: str) -> list[Path]:
    if not folder.is_dir():
        raise SpdnnError(f"{where}: folder {folder.name}/ is missing")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    found = [p for p in files if p.suffix == ".npy" or p.suffix.lower() in _PICTURES]
    if not found:
        raise SpdnnError(f"{where}: no images (.npy arrays or pictures) in {folder}")
    picture = next((p for p in found if p.suffix.lower() in _PICTURES), None)
    if picture is not None:
        _pillow(picture)  # no Pillow: one clear error before anything is read
    return found


def _pillow(path: Path):
    """The PIL.Image module; a clear error naming ``path`` when Pillow is not installed."""
    try:
        from PIL import Image
    except ImportError:
        raise SpdnnError(f"data {path}: {path.suffix} pictures are read with Pillow, which is not installed: "
                         'pip install "spdnn[images]" (or save each image as an .npy array)') from None
    return Image


#: A class id in labels.csv: ASCII digits (not '²', which str.isdigit accepts).
_INTEGER = re.compile(r"-?[0-9]+")


def _read_csv(folder: Path, where: str) -> tuple[list[Path], list[int]]:
    path = folder / "labels.csv"
    files, names = [], []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.reader(f), start=1):
                if not row or (line == 1 and [c.strip().lower() for c in row] == ["file", "label"]):
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise SpdnnError(f"{path}:{line}: expected two columns file,label, got {row!r}")
                file = folder / row[0].strip()
                if not file.is_file():
                    raise SpdnnError(f"{path}:{line}: image {row[0].strip()!r} not found (looked for {file})")
                label = row[1].strip()
                if _INTEGER.fullmatch(label) and len(label.lstrip("-")) > 18:
                    raise SpdnnError(f"{path}:{line}: label {label[:40]!r} is not a class id (too many digits)")
                files.append(file)
                names.append(label)
    except UnicodeDecodeError:
        raise SpdnnError(f"{path}: not UTF-8 text") from None
    except csv.Error as e:  # a NUL byte, an unclosed quote, a field over the csv module's size limit
        raise SpdnnError(f"{path}: not a readable CSV file ({e})") from None
    if not files:
        raise SpdnnError(f"{path}: no rows (expected file,label rows)")
    if all(_INTEGER.fullmatch(n) for n in names):
        return files, [int(n) for n in names]
    classes = {name: k for k, name in enumerate(sorted(set(names)))}
    return files, [classes[n] for n in names]


def _check_budget(count: int, image: Port, where: str) -> None:
    nbytes = count * math.prod(image.shape) * 4
    if nbytes > current().input_bytes:
        raise SpdnnError(f"{where}: {count} images of shape {_fmt(image.shape)} are {human_bytes(nbytes)}; "
                         + limit_message("too large", "input_bytes"))


_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _read_picture(path: Path, port: Port) -> np.ndarray:
    """A picture as an array of ``port.shape``: its size is checked from the header first."""
    image_module = _pillow(path)
    shape = tuple(port.shape)
    mask = port.dtype == "int64"
    if mask and len(shape) != 2:
        raise SpdnnError(f"data {path}: a mask picture gives an (H, W) array; the target is {shape}")
    if not mask and (len(shape) != 3 or shape[0] not in _MODES):
        raise SpdnnError(f"data {path}: pictures fit inputs of 1, 3 or 4 channels (C, H, W); the input is {shape}")
    try:
        with image_module.open(path) as picture:
            size = (picture.height, picture.width)
            if size != shape[-2:]:
                raise SpdnnError(f"data {path}: picture of {size[0]}x{size[1]} pixels (height x width), expected "
                                 f"{shape[-2]}x{shape[-1]}; spdnn does not resize")
            if mask:
                if picture.mode not in ("L", "P", "I", "I;16"):
                    raise SpdnnError(f"data {path}: a mask picture holds class ids in grey or palette mode, "
                                     f"got mode {picture.mode}")
                return np.asarray(picture, dtype=np.int64)
            values = np.asarray(picture.convert(_MODES[shape[0]]), dtype=np.float32) / 255
    except SpdnnError:
        raise
    except (OSError, ValueError, SyntaxError, image_module.DecompressionBombError) as e:
        raise SpdnnError(f"data {path}: not a readable picture ({str(e)[:120]})") from None
    return values.reshape(shape[1], shape[2], -1).transpose(2, 0, 1).copy() if values.ndim == 3 else values[None]


def _read(path: Path, port: Port, where: str) -> np.ndarray:
    """One sample of shape ``port.shape``; its header is checked before the data is read."""
    if path.suffix.lower() in _PICTURES:
        return _read_picture(path, port)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception:  # numpy parses the header as Python text: any error there means a damaged file
        raise SpdnnError(f"data {path}: not a numpy .npy array") from None
    shape = tuple(port.shape)
    if array.shape != shape and not (len(shape) == 3 and shape[0] == 1 and array.shape == shape[1:]):
        raise SpdnnError(f"data {path}: shape {array.shape}, expected {shape}"
                         + (" (or (H, W) for one channel)" if len(shape) == 3 and shape[0] == 1 else ""))
    if array.dtype.kind not in "fiub":
        raise SpdnnError(f"data {path}: dtype {array.dtype} is not numeric")
    if port.dtype == "int64":
        if array.dtype.kind not in "iub":
            raise SpdnnError(f"data {path}: a mask holds integer class ids, got dtype {array.dtype}")
        return np.asarray(array, dtype=np.int64).reshape(shape)
    if array.dtype.kind == "f":
        values = np.asarray(array, dtype=np.float32)
    elif array.dtype == np.uint8:
        values = np.asarray(array, dtype=np.float32) / 255
    else:
        raise SpdnnError(f"data {path}: images are floating point or uint8 (divided by 255), got {array.dtype}")
    return values.reshape(shape)


def _fmt(shape: tuple[int, ...]) -> str:
    return "(N" + "".join(f", {d}" for d in shape) + ")"
