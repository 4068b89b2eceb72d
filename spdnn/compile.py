"""The compile job: specs in, per-model artefacts out, written atomically.

``compile_specs`` does all the work in memory first (load, verify, infer shapes, build and
initialise the torch module, render pictures and reports); only when every input succeeded
are the files written, each to a temporary name in the output directory and then moved into
place, so a failure leaves no partial files and never clobbers earlier good outputs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from spdnn.errors import Problem, SpdnnError, SpecError
from spdnn.ir.graph import Graph
from spdnn.render import to_dot, to_mermaid
from spdnn.summary import Summary, summarize

__all__ = ["CompiledModel", "compile_specs", "write_outputs"]


@dataclass
class CompiledModel:
    """One compiled model and its artefacts (file name -> bytes)."""

    graph: Graph
    summary: Summary
    files: dict[str, bytes] = field(default_factory=dict)


def compile_specs(paths: Iterable[str | Path], seed: int = 0) -> list[CompiledModel]:
    """Compile each spec separately. Raises SpecError listing the problems of every input."""
    from spdnn.backends.torch_exporter import build_torch_module, state_dict_bytes
    from spdnn.backends.yaml_exporter import dump_spec
    from spdnn.frontends.yaml_importer import load_spec

    graphs: list[Graph] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            graphs.append(load_spec(path))
        except SpecError as e:
            problems.extend(e.problems)
    seen: dict[str, str] = {}
    for g in graphs:
        if g.name in seen:
            problems.append(Problem(f"model name {g.name!r} is also used by {seen[g.name]}; "
                                    "outputs would collide", g.meta.get("file", "<spec>")))
        seen[g.name] = g.meta.get("file", "<spec>")
    if problems:
        raise SpecError(problems)
    models = []
    for g in graphs:
        summary = summarize(g)
        module = build_torch_module(g, seed=seed)
        models.append(CompiledModel(g, summary, {
            f"{g.name}.pt": state_dict_bytes(module),
            f"{g.name}.yaml": dump_spec(g).encode(),
            f"{g.name}.dot": to_dot(g).encode(),
            f"{g.name}.mmd": to_mermaid(g).encode(),
        }))
    return models


def reports(models: list[CompiledModel]) -> dict[str, bytes]:
    """report.json and report.md over all compiled models."""
    data = {"models": [m.summary.to_dict() for m in models]}
    md = ["# spdnn compile report", ""]
    for m in models:
        md += [m.summary.to_markdown(), f"Inputs: {m.summary.inputs}  ", f"Outputs: {m.summary.outputs}", ""]
    return {"report.json": (json.dumps(data, indent=2) + "\n").encode(), "report.md": "\n".join(md).encode()}


def write_outputs(models: list[CompiledModel], out_dir: str | Path) -> list[Path]:
    """Write every artefact plus the reports into ``out_dir`` atomically; return the paths."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SpdnnError(f"output path {out} exists and is not a directory")
    files: dict[str, bytes] = {}
    for m in models:
        files.update(m.files)
    files.update(reports(models))
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".spdnn-", dir=out))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        for name in files:
            os.replace(tmp / name, out / name)
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()
    return [out / name for name in files]
