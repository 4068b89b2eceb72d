"""Synthetic data for example 06: 8x8 images of two classes, and 16-D vectors for the GAN.
Starts the example afresh: run folders of an earlier run (clf/, gan/) are removed."""

import shutil
import sys
from pathlib import Path

import numpy as np

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/06_train_system")
out.mkdir(parents=True, exist_ok=True)
for old in ("clf", "gan"):
    shutil.rmtree(out / old, ignore_errors=True)
rng = np.random.default_rng(0)
n = 256
y = rng.integers(0, 2, n)
images = rng.normal(0, 0.3, (n, 1, 8, 8)).astype("float32")
images[y == 0, :, :4] += 1.0  # class 0: bright top half
images[y == 1, :, 4:] += 1.0  # class 1: bright bottom half
np.savez(out / "images.npz", x=images, y=y)
vectors = np.tanh(rng.normal(0, 1, (n, 16)) * 0.5 + np.linspace(-1, 1, 16)).astype("float32")
np.savez(out / "vectors.npz", x=vectors)
print(f"wrote {out / 'images.npz'} and {out / 'vectors.npz'}")
