"""docs/onnx-support.md is the text generated from the importer's handler table."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT
from spdnn.frontends.onnx_importer import ATTRIBUTES, HANDLERS
from spdnn.frontends.onnx_importer.support_table import support_markdown


def test_committed_support_doc_is_the_generated_text():
    committed = (ROOT / "docs" / "onnx-support.md").read_text()
    assert committed == support_markdown(), (
        "docs/onnx-support.md is stale: python -m spdnn.frontends.onnx_importer.support_table > docs/onnx-support.md")


def test_support_doc_lists_every_handler_with_its_attributes():
    text = support_markdown()
    for op in HANDLERS:
        row = next(line for line in text.splitlines() if line.startswith(f"| {op} |"))
        assert all(f"`{name}`" in row for name in ATTRIBUTES[op])
    assert "| Conv | 6-" in text and "`kernel_shape` ints[2]" in text
    assert "| Upsample | 6-9 |" in text  # deprecated from opset 10 on


def test_support_table_module_runs_as_a_script():
    proc = subprocess.run([sys.executable, "-m", "spdnn.frontends.onnx_importer.support_table"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout == support_markdown()


def test_support_doc_lists_spdnn_functions_with_their_attributes():
    from spdnn.frontends.onnx_importer.functions import FUNCTION_OPS

    from spdnn.ops import get_op

    text = support_markdown()
    assert "## spdnn's functions (domain `ai.spdnn`, version 1)" in text
    for op in FUNCTION_OPS:
        row = next(line for line in text.splitlines() if line.startswith(f"| {op} |"))
        assert all(f"`{name}`" in row for name in get_op(op).attrs.model_fields)
