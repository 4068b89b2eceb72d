"""``spdnn run``: feed arrays (or random inputs) to an ONNX model in onnxruntime.

Inputs are ``.npy`` files; each header is read and checked (dtype, shape, size against
``limits.input_bytes``, file length) before the data is loaded, so a file promising 10^12
elements is refused without allocating. Outputs go to a ``.npz`` written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from spdnn.errors import SpdnnError, first_line
from spdnn.limits import current, human_bytes, limit_message
from spdnn.npy import read_array

__all__ = ["read_npy", "run_model", "random_inputs"]


def read_npy(path: str | Path) -> np.ndarray:
    """Load a numeric .npy array after checking its header; SpdnnError for anything else."""
    p = Path(path)
    if not p.exists():
        raise SpdnnError(f"input {path}: no such file")
    if not p.is_file():
        raise SpdnnError(f"input {path}: not a regular file")
    with p.open("rb") as f:
        return read_array(f, p.stat().st_size, f"input {path}")


def random_inputs(session: Any, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Standard-normal inputs of the model's shapes; symbolic dimensions take ``batch``."""
    if batch > current().max_batch:
        raise SpdnnError(limit_message(f"--batch {batch} is too large", "max_batch"))
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else batch for d in inp.shape]
        count = math.prod(shape)
        if count * 4 > current().input_bytes:
            raise SpdnnError(f"input {inp.name!r} of shape {tuple(shape)} would be {human_bytes(count * 4)}; "
                             + limit_message("too large", "input_bytes"))
        feeds[inp.name] = rng.standard_normal(shape, dtype=np.float32)
    return feeds


def _named_inputs(items: list[str]) -> dict[str, tuple[str, np.ndarray]] | list[tuple[str, np.ndarray]]:
    """Each ``[NAME=]FILE.npy`` item as (file, array), by name or in order."""
    named: dict[str, tuple[str, np.ndarray]] = {}
    positional: list[tuple[str, np.ndarray]] = []
    for item in items:
        name, sep, path = item.rpartition("=")
        if not path:
            raise SpdnnError(f"--input {item!r}: no file name; give [NAME=]FILE.npy")
        if sep and name in named:
            raise SpdnnError(f"--input {item!r}: input {name!r} is given twice")
        if sep:
            named[name] = (path, read_npy(path))
        else:
            positional.append((path, read_npy(path)))
    if named and positional:
        raise SpdnnError("give inputs either all by position or all as NAME=FILE.npy")
    return named or positional


def _check_feeds(session: Any, feeds: dict[str, tuple[str, np.ndarray]] | list[tuple[str, np.ndarray]],
                 model: str) -> dict[str, np.ndarray]:
    """The arrays by input name, checked against the model's inputs (count, names, shapes)."""
    declared = session.get_inputs()
    names = [i.name for i in declared]
    if isinstance(feeds, list):
        if len(feeds) != len(names):
            raise SpdnnError(f"{model} takes {len(names)} input(s) {names}, got {len(feeds)} array(s)")
        feeds = dict(zip(names, feeds, strict=True))
    unknown = sorted(set(feeds) - set(names))
    missing = [n for n in names if n not in feeds]
    if unknown or missing:
        raise SpdnnError(f"{model} takes inputs {names}; " + "; ".join(
            ([f"unknown {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])))
    for inp in declared:
        source, array = feeds[inp.name]
        want = inp.shape
        if array.ndim != len(want) or any(isinstance(w, int) and w > 0 and w != a
                                          for w, a in zip(want, array.shape, strict=False)):
            shown = tuple(w if isinstance(w, int) and w > 0 else "N" for w in want)
            raise SpdnnError(f"input {inp.name!r} ({source}): expected shape {shown}, got {array.shape}")
        if array.shape[0] == 0:
            raise SpdnnError(f"input {inp.name!r} ({source}): batch size 0")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, (_, v) in feeds.items()}


def _output_path(path: str) -> Path:
    from spdnn.compile import check_output_file

    try:
        out = check_output_file(path, example="outputs.npz")
    except SpdnnError as e:
        raise SpdnnError(f"output {e}") from None
    if out.suffix != ".npz":
        raise SpdnnError(f"output {path}: the outputs are saved as .npz; give a name ending in .npz")
    if not out.parent.exists():
        raise SpdnnError(f"output {path}: folder {out.parent} does not exist")
    return out


def run_model(args: Any, console: Any) -> None:
    """The ``spdnn run`` command (see ``spdnn run --help``)."""
    from spdnn.backends.onnx_exporter import make_session, read_model
    from spdnn.compile import write_file_atomically

    model = read_model(args.model)
    if args.random and args.input:
        raise SpdnnError("give either --random or --input files, not both")
    if not args.random and not args.input:
        raise SpdnnError("no inputs: give --input FILE.npy (repeat for several) or --random")
    out = _output_path(args.output) if args.output else None
    try:
        session = make_session(model, ["CPUExecutionProvider"] if args.cpu else None)
    except Exception as e:  # onnxruntime's own exception types
        raise SpdnnError(f"onnxruntime cannot load {args.model}: {first_line(e, 300)}") from None
    if args.random:
        feeds = {k: ("--random", v) for k, v in random_inputs(session, args.batch, args.seed).items()}
    else:
        feeds = _named_inputs(args.input)
    feeds = _check_feeds(session, feeds, args.model)
    try:
        results = session.run(None, feeds)
    except Exception as e:
        raise SpdnnError(f"onnxruntime could not run {args.model}: {first_line(e, 300)}") from None
    outputs = {o.name: r for o, r in zip(session.get_outputs(), results, strict=True)}
    console.say(f"provider: {session.get_providers()[0]}")
    for name, value in outputs.items():
        if value.size == 0 or value.dtype.kind not in "fiub":
            console.say(f"{name}: shape {tuple(value.shape)} {value.dtype}")
            continue
        console.say(f"{name}: shape {tuple(value.shape)} {value.dtype}, min {value.min():.4g}, "
                    f"max {value.max():.4g}, mean {value.mean():.4g}")
    if out is not None:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **outputs)
        write_file_atomically(out, buffer.getvalue())
        console.say(f"wrote {out}")
