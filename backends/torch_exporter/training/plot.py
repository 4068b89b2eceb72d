"""The loss-curve picture ``loss.png``: matplotlib when it is installed (``pip install
matplotlib``), else a plain picture drawn here (curves on a white background, no text; the
numbers are in metrics.csv)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from spdnn.compile import write_file_atomically

__all__ = ["plot_losses"]

_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def plot_losses(history: list[dict], path: str | Path) -> str:
    """Draw every ``train/*`` and ``val/*`` loss against the epoch; returns "matplotlib" or
    "plain" (the renderer used)."""
    series = {k: [h.get(k) for h in history] for k in history[-1] if k.startswith(("train/", "val/"))
              and k.count(".") == 0} if history else {}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        write_file_atomically(path, _plain_png(series))
        return "plain"
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    epochs = [h["epoch"] for h in history]
    for name, values in series.items():
        ax.plot(epochs, values, label=name, linestyle="--" if name.startswith("val/") else "-")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_file_atomically(path, buffer.getvalue())
    return "matplotlib"


def _plain_png(series: dict[str, list], width: int = 480, height: int = 320) -> bytes:
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    image[[10, height - 11], 10:width - 10] = 0
    image[10:height - 10, [10, width - 11]] = 0
    values = [v for s in series.values() for v in s if v is not None and np.isfinite(v)]
    if values:
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        for i, (_, s) in enumerate(series.items()):
            points = [(j, v) for j, v in enumerate(s) if v is not None and np.isfinite(v)]
            xs = [20 + (width - 40) * j / max(1, len(s) - 1) for j, _ in points]
            ys = [height - 20 - (height - 40) * (v - low) / span for _, v in points]
            for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:]), strict=False):
                for t in np.linspace(0, 1, int(max(abs(x1 - x0), abs(y1 - y0))) + 2):
                    image[int(y0 + t * (y1 - y0)), int(x0 + t * (x1 - x0))] = _COLOURS[i % len(_COLOURS)]
    raw = b"".join(b"\x00" + row.tobytes() for row in image)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
