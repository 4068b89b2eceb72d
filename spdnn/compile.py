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
from spdnn.ir.naming import is_valid_name
from spdnn.merge import MergeOptions, MergeResult, merge_networks, stage_dot, stage_mermaid
from spdnn.render import to_dot, to_mermaid
from spdnn.summary import Summary, summarize

__all__ = ["CompiledModel", "compile_graph", "compile_specs", "load_all", "load_input", "merge_specs", "write_outputs"]


@dataclass
class CompiledModel:
    """One compiled model and its artefacts (file name -> bytes)."""

    graph: Graph
    summary: Summary
    files: dict[str, bytes] = field(default_factory=dict)


def load_input(path: str | Path) -> Graph:
    """Load a YAML spec, or import an ONNX model (``.onnx``; its weights go in
    ``graph.meta["weights"]``)."""
    if str(path).lower().endswith(".onnx"):
        from spdnn.frontends.onnx_importer import import_onnx

        imported = import_onnx(path)
        imported.graph.meta["weights"] = imported.weights
        return imported.graph
    from spdnn.frontends.yaml_importer import load_spec

    return load_spec(path)


def load_all(paths: Iterable[str | Path]) -> list[Graph]:
    """Load every input, collecting the spec problems of all of them into one SpecError."""
    graphs: list[Graph] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            graphs.append(load_input(path))
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
    return graphs


def compile_graph(graph: Graph, seed: int = 0, opset: int | None = None) -> CompiledModel:
    """Artefacts of one model: state dict, ONNX model (same weights), resolved spec, DOT and
    Mermaid pictures."""
    from spdnn.backends.onnx_exporter import DEFAULT_OPSET, export_onnx_bytes
    from spdnn.backends.torch_exporter import build_torch_module, load_weights, state_dict_bytes
    from spdnn.backends.yaml_exporter import dump_spec

    module = build_torch_module(graph, seed=seed)
    if graph.meta.get("weights"):  # an imported model keeps its trained weights
        load_weights(module, graph.meta["weights"])
    onnx_bytes = export_onnx_bytes(graph, module.state_dict(), opset or DEFAULT_OPSET)  # serialised once
    return CompiledModel(graph, summarize(graph), {
        f"{graph.name}.pt": state_dict_bytes(module),
        f"{graph.name}.onnx": onnx_bytes,
        f"{graph.name}.yaml": dump_spec(graph).encode(),
        f"{graph.name}.dot": to_dot(graph).encode(),
        f"{graph.name}.mmd": to_mermaid(graph).encode(),
    })


def compile_specs(paths: Iterable[str | Path], seed: int = 0, opset: int | None = None) -> list[CompiledModel]:
    """Compile each spec separately. Raises SpecError listing the problems of every input."""
    return [compile_graph(g, seed, opset) for g in load_all(paths)]


def merge_specs(paths: Iterable[str | Path], name: str, options: MergeOptions | None = None,
                seed: int = 0, opset: int | None = None) -> tuple[CompiledModel, MergeResult]:
    """Merge the specs' networks into one SPDNN network and compile it; the artefacts add the
    merge report and a picture of every stage."""
    if not is_valid_name(name):
        raise SpdnnError(f"merged model name {name!r} must be an identifier (letters, digits, _)")
    result = merge_networks(load_all(paths), name, options)
    model = compile_graph(result.graph, seed, opset)
    model.files["merge_report.json"] = (json.dumps(result.report(), indent=2) + "\n").encode()
    model.files["merge_report.md"] = result.report_markdown().encode()
    for i, (stage, lg) in enumerate(result.stages.items(), start=1):
        title = f"{name}: stage {i}, {_STAGE_TITLES[stage]}"
        model.files[f"{name}.stage{i}_{stage}.dot"] = stage_dot(lg, title).encode()
        model.files[f"{name}.stage{i}_{stage}.mmd"] = stage_mermaid(lg, title).encode()
    return model, result


_STAGE_TITLES = {
    "parents": "parents in parallel, labelled from the input",
    "contracted": "after the first contraction",
    "relabelled": "labelled from the output",
    "final": "after the second contraction",
}


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
