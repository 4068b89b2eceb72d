"""YAML spec frontend: spec files -> verified, shape-inferred IR graphs.

See :mod:`.document` for the format and :mod:`.schema` for its JSON Schema.
"""

from __future__ import annotations

from pathlib import Path

from spdnn.ir.graph import Graph
from spdnn.passes.graft import loading_spec

from .build import build_graph
from .loader import load_yaml, read_spec_file

__all__ = ["load_spec", "load_spec_text"]


def load_spec(path: str | Path) -> Graph:
    """Load a YAML spec file into a graph.

    Raises:
        SpecError: listing every problem with file, line, column and location.
    """
    text, name = read_spec_file(path)
    with loading_spec(path):
        return load_spec_text(text, name)


def load_spec_text(text: str, file: str = "<string>") -> Graph:
    """Load a YAML spec from text (``file`` is used in error messages)."""
    return build_graph(load_yaml(text, file))
