"""The shipped specs, installed as ``spdnn.specs``: one folder per paper (see spdnn.shipped)."""
