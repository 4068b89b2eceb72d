"""The compiler's summary of every shipped spec equals the values worked out by hand from the papers.

Each spec folder has an ``expected.yml`` (the arithmetic is in its comments; ``.yml`` so that the
folder's ``*.yaml`` glob, as in ``spdnn compile specs/iris/*.yaml``, still names only specs)::

    models:
      <spec file stem>:
        name: <model name>
        params: <trainable parameters>
        outputs: {<output>: [shape without batch]}
        layers:                      # optional per-layer checks, any of shape / params / flops
          conv1: {shape: [5, 24, 24], params: 130, flops: 144000}
        variants:                    # optional: documented variants in a subfolder
          - {file: table_order/generator.yaml, name: ..., params: 6661249}
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import ROOT, SPECS

import spdnn

FOLDERS = sorted({p.parent for p in SPECS})
MODEL_KEYS = {"name", "params", "outputs", "layers", "variants"}
LAYER_KEYS = {"shape", "params", "flops"}


def expected(folder: Path) -> dict:
    path = folder / "expected.yml"
    assert path.is_file(), f"{folder.name} has no expected.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["models"]


def cases() -> list[tuple[Path, dict]]:
    return [(folder / f"{stem}.yaml", want) for folder in FOLDERS for stem, want in expected(folder).items()]


def shape(text: str) -> list[int]:
    """'(N, 5, 24, 24)' -> [5, 24, 24]."""
    dims = [d.strip() for d in text.strip("()").split(",") if d.strip()]
    assert dims[0] == "N", text
    return [int(d) for d in dims[1:]]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_spec_of_a_folder_has_expected_values(folder):
    want = expected(folder)
    assert sorted(want) == sorted(p.stem for p in folder.glob("*.yaml"))
    for stem, model in want.items():
        assert set(model) <= MODEL_KEYS, f"{stem}: unknown keys {set(model) - MODEL_KEYS}"
        assert {"name", "params", "outputs"} <= set(model), f"{stem}: name, params and outputs are required"
        for layer, values in model.get("layers", {}).items():
            assert values and set(values) <= LAYER_KEYS, f"{stem}.{layer}: expected some of {LAYER_KEYS}"


@pytest.mark.parametrize("path,want", cases(), ids=lambda c: f"{c.parent.name}/{c.stem}" if isinstance(c, Path) else "")
def test_summary_matches_the_hand_derived_values(path, want):
    summary = spdnn.summarize(spdnn.load_spec(path))
    assert summary.model == want["name"]
    assert summary.total_params == want["params"]
    assert {k: shape(v) for k, v in summary.outputs.items()} == want["outputs"]
    rows = {r.name: r for r in summary.layers}
    for name, values in want.get("layers", {}).items():
        assert name in rows, f"{path.name}: no layer {name!r} (layers: {', '.join(rows)})"
        got = {"shape": shape(rows[name].output_shapes[0]), "params": rows[name].params, "flops": rows[name].flops}
        assert {k: got[k] for k in values} == values, name


VARIANTS = [(path.parent / v["file"], v) for path, want in cases() for v in want.get("variants", [])]


@pytest.mark.parametrize("path,variant", VARIANTS, ids=[v["file"] for _, v in VARIANTS])
def test_documented_variants_match_their_hand_derived_counts(path, variant):
    graph = spdnn.load_spec(path)
    assert graph.name == variant["name"]
    assert spdnn.count_params(graph) == variant["params"]


def ops(path: Path) -> list[str]:
    return [n.op for n in spdnn.load_spec(path) if n.op not in ("input", "output")]


def test_vacgan_bn_convention_orders_layers_as_documented():
    """The shipped specs follow the authors' code (BN before the activation, BN after D's Dense 1024);
    table_order/ follows the tables' rows (activation, then BN; no BN after Dense 1024)."""
    folder = ROOT / "specs" / "vacgan_mnist"
    assert ops(folder / "discriminator.yaml") == [
        "conv2d", "batch_norm", "leaky_relu", "conv2d", "batch_norm", "leaky_relu", "flatten",
        "linear", "batch_norm", "leaky_relu", "linear", "sigmoid"]
    assert ops(folder / "table_order" / "discriminator.yaml") == [
        "conv2d", "leaky_relu", "batch_norm", "conv2d", "leaky_relu", "batch_norm", "flatten",
        "linear", "leaky_relu", "linear", "sigmoid"]
    assert ops(folder / "generator.yaml") == [
        "linear", "batch_norm", "relu", "linear", "batch_norm", "relu", "reshape",
        "conv_transpose2d", "batch_norm", "relu", "conv_transpose2d", "sigmoid"]
    assert ops(folder / "table_order" / "generator.yaml") == [
        "linear", "relu", "batch_norm", "linear", "relu", "batch_norm", "reshape",
        "conv_transpose2d", "relu", "batch_norm", "conv_transpose2d", "sigmoid"]
    shipped = spdnn.load_spec(folder / "generator.yaml")
    assert shipped.node("bn1").attrs.eps == 1e-4                      # Lasagne's BatchNormLayer default
    assert shipped.node("hidden1").attrs.bias is False                # removed by Lasagne's batch_norm()
