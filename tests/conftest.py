"""Shared helpers for the test suite."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SPECS = sorted((ROOT / "specs").glob("*/*.yaml"))

#: Heavy specs (cost below at or over HEAVY_COST) run their costliest per-spec tests only under
#: ``pytest -m slow``; the default run keeps their cheap checks (expected values, citations,
#: schema, compile, forward and onnxruntime parity at batch 1) so the suite stays near ten
#: minutes on two cores. KEEP stays in the default run whatever its cost.
HEAVY_COST = 6.5
KEEP = {"iris/p4", "vacgan_mnist/generator"}


def spec_key(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@functools.cache
def heavy_specs() -> frozenset[str]:
    """Specs whose cost = millions of parameters + per-sample GFLOPs x 2 is at least HEAVY_COST
    (building the module, exporting and running onnxruntime scale with both)."""
    import spdnn

    heavy = set()
    for path in SPECS:
        summary = spdnn.summarize(spdnn.load_spec(path))
        if summary.total_params / 1e6 + summary.total_flops / 5e8 >= HEAVY_COST and spec_key(path) not in KEEP:
            heavy.add(spec_key(path))
    return frozenset(heavy)


def spec_cases(items: list, key=None, ids=None) -> list:
    """pytest params of ``items`` (spec paths, ``family/stem`` keys, or anything ``key`` maps to
    such a key); those of heavy specs are marked slow. ``ids`` maps an item to its test id."""
    out = []
    for item in items:
        name = key(item) if key else spec_key(item) if isinstance(item, Path) else item
        marks = [pytest.mark.slow] if name in heavy_specs() else []
        out.append(pytest.param(*(item if isinstance(item, tuple) else (item,)), marks=marks,
                                id=ids(item) if ids else None))
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks on a shared 2-core machine: one thread avoids oversubscription (30x faster).
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def write(tmp_path):
    """Write a spec text to a file and return its path."""

    def _write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write
