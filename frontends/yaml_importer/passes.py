"""A spec's ``passes:`` list: passes run on the graph once it is built.

Rules:
  1. Each entry is a pass name (``- insert-dropout``) or a mapping with ``name`` and the
     pass's options (``- {name: insert-dropout, p: 0.2}``); option values may be ``$vars``
     expressions.
  2. Names and options are validated before the graph is built, with the other problems of
     the spec; each problem is located at the entry or at the option (file:line:column), with
     the message ``--pass`` and ``spdnn.run_passes`` give for the same mistake.
  3. A spec path among the options (an auxiliary head's, an autoencoder's) is relative to
     the folder of the spec file, wherever spdnn runs from.
  4. The passes run in order once the graph is built and its shapes inferred; a pass that
     fails on the graph is reported at its entry.
"""

from __future__ import annotations

import os
from typing import Any

from spdnn.errors import Problem, SpdnnError, SpecError
from spdnn.ir.graph import Graph
from spdnn.passes import Pass, PassOptionsError, get_pass

from .expressions import ExpressionError, substitute
from .loader import Located

__all__ = ["run_spec_passes", "spec_passes"]

PathKey = tuple[str | int, ...]


def spec_passes(doc: Located, entries: list[Any], env: dict[str, Any],
                problems: list[Problem]) -> list[tuple[PathKey, Pass]]:
    """The validated passes of a ``passes:`` list, each with its path; problems are appended."""
    out = []
    base_dir = os.path.dirname(os.path.abspath(doc.file)) if doc.file and os.path.isfile(doc.file) else None
    for i, entry in enumerate(entries):
        path: PathKey = ("passes", i)
        if isinstance(entry, str):
            name, options = entry, {}
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            name, options = entry["name"], {k: v for k, v in entry.items() if k != "name"}
        else:
            problems.append(doc.problem(path, "a pass is a name or a mapping with name: and its options, "
                                        "e.g. {name: insert-dropout, p: 0.2}"))
            continue
        try:
            options = {k: substitute(v, env) for k, v in options.items()}
            out.append((path, get_pass(name, options, base_dir)))
        except ExpressionError as e:
            problems.append(doc.problem(path, str(e)))
        except PassOptionsError as e:
            for key, message in e.problems:
                if key is None or key not in options:
                    problems.append(doc.problem(path + (("name",) if isinstance(entry, dict) else ()), message))
                else:
                    problems.append(doc.problem((*path, key), e.describe(key, message), at_key=message.startswith("unknown")))
    return out


def run_spec_passes(doc: Located, graph: Graph, passes: list[tuple[PathKey, Pass]]) -> None:
    """Run the passes in order (rule 4)."""
    for path, p in passes:
        try:
            p.run(graph)
        except SpdnnError as e:
            raise SpecError(doc.problem(path, f"pass {p.name!r} failed: {e}")) from None
