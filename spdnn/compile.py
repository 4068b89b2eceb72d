"""The compile job: specs in, per-model artefacts out, written atomically.

``compile_specs`` does all the work in memory first (load, verify, infer shapes, build and
initialise the torch module, render pictures and reports); only when every input succeeded
are the files written.

Output folders (``write_outputs``). The folder belongs to one compile run and is replaced as a
whole: the files are written into a staging folder beside it (``.spdnn-stage-<name>-<pid>-*``),
then the old folder is moved aside (``.spdnn-old-<name>-<pid>-*``), the staging folder takes its
name and the old one is deleted. So a folder never mixes the files of two runs, and a failed or
killed run never leaves a partial folder under the real name. A run removes the staging and old
folders that killed runs left behind (restoring an old folder whose replacement never arrived).
A folder that exists and holds files spdnn did not write (no ``report.json`` of ours) is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from spdnn.errors import Problem, SpdnnError, SpecError
from spdnn.ir.graph import Graph
from spdnn.ir.naming import is_valid_name, sanitize
from spdnn.merge import MergeOptions, MergeResult, merge_networks, stage_dot, stage_mermaid
from spdnn.render import to_dot, to_mermaid
from spdnn.summary import Summary, summarize

__all__ = ["CompiledModel", "compile_graph", "compile_specs", "default_name", "load_all", "load_input", "merge_specs",
           "write_file_atomically", "write_outputs"]


@dataclass
class CompiledModel:
    """One compiled model and its artefacts (file name -> bytes)."""

    graph: Graph
    summary: Summary
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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
    if problems:
        raise SpecError(problems)
    _rename_clashes(graphs, problems)
    if problems:
        raise SpecError(problems)
    return graphs


def _rename_clashes(graphs: list[Graph], problems: list[Problem]) -> None:
    """Models that share a name (two ``torch.onnx.export`` files are both ``main_graph``) take
    their file's stem instead; the rename is noted in ``graph.meta["notes"]``. Names that still
    clash are problems."""
    counts: dict[str, int] = {}
    for g in graphs:
        counts[g.name] = counts.get(g.name, 0) + 1
    for g in graphs:
        if counts[g.name] > 1 and g.meta.get("file"):
            stem = sanitize(Path(g.meta["file"]).stem)
            g.meta.setdefault("notes", []).append(
                f"model {g.name!r} of {g.meta['file']} is renamed {stem!r} (its file's stem): "
                f"{counts[g.name]} inputs are named {g.name!r}")
            g.name = stem
    seen: dict[str, str] = {}
    for g in graphs:
        if g.name in seen:
            problems.append(Problem(f"model name {g.name!r} is also used by {seen[g.name]}; "
                                    "outputs would collide", g.meta.get("file", "<spec>")))
        seen[g.name] = g.meta.get("file", "<spec>")


def default_name(paths: Iterable[str | Path], fallback: str) -> str:
    """The name of the inputs' common folder when it is an identifier (``specs/iris/*.yaml`` ->
    ``iris``), else ``fallback``."""
    folders = {str(Path(p).resolve().parent) for p in paths}
    name = Path(os.path.commonpath(sorted(folders))).name if folders else ""
    return name if is_valid_name(name) else fallback


def compile_graph(graph: Graph, seed: int = 0, opset: int | None = None,
                  picture: str = "compact") -> CompiledModel:
    """Artefacts of one model: state dict, ONNX model (same weights), resolved spec, DOT and
    Mermaid pictures (``picture``: "compact" or "full", see :mod:`spdnn.render`)."""
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
        f"{graph.name}.dot": to_dot(graph, picture).encode(),
        f"{graph.name}.mmd": to_mermaid(graph, picture).encode(),
    }, notes=list(graph.meta.get("notes", [])))


def compile_specs(paths: Iterable[str | Path], seed: int = 0, opset: int | None = None,
                  picture: str = "compact", passes: Callable[[Graph], object] | None = None) -> list[CompiledModel]:
    """Compile each spec separately (``passes`` runs on each loaded graph first, in place).
    Raises SpecError listing the problems of every input."""
    return [compile_graph(g, seed, opset, picture) for g in _with_passes(load_all(paths), passes)]


def _with_passes(graphs: list[Graph], passes: Callable[[Graph], object] | None) -> list[Graph]:
    for g in graphs if passes else ():
        passes(g)
    return graphs


def merge_specs(paths: Iterable[str | Path], name: str, options: MergeOptions | None = None,
                seed: int = 0, opset: int | None = None, picture: str = "compact",
                passes: Callable[[Graph], object] | None = None) -> tuple[CompiledModel, MergeResult]:
    """Merge the specs' networks into one SPDNN network and compile it (``passes`` runs on
    each parent first, in place); the artefacts add the merge report and a picture of every
    stage."""
    if not is_valid_name(name):
        raise SpdnnError(f"merged model name {name!r} must be an identifier (letters, digits, _)")
    parents = _with_passes(load_all(paths), passes)
    result = merge_networks(parents, name, options)
    if options is not None and options.init_from_parents:
        from spdnn.merge.warm_start import warm_start_weights

        result.graph.meta["weights"] = warm_start_weights(result, {g.name: _trained_weights(g) for g in parents})
    model = compile_graph(result.graph, seed, opset, picture)
    model.notes = [note for g in parents for note in g.meta.get("notes", [])]
    model.files["merge_report.json"] = (json.dumps(result.report(), indent=2) + "\n").encode()
    model.files["merge_report.md"] = result.report_markdown().encode()
    for i, (stage, lg) in enumerate(result.stages.items(), start=1):
        title = f"{name}: stage {i}, {_STAGE_TITLES[stage]}"
        model.files[f"{name}.stage{i}_{stage}.dot"] = stage_dot(lg, title).encode()
        model.files[f"{name}.stage{i}_{stage}.mmd"] = stage_mermaid(lg, title).encode()
    return model, result


def _trained_weights(graph: Graph) -> dict:
    """A parent's trained weights: an ONNX parent's initializers, or ``<spec>.pt`` beside a
    YAML spec (the state dict ``spdnn compile`` or ``spdnn train`` writes)."""
    if graph.meta.get("weights"):
        return graph.meta["weights"]
    spec = graph.meta.get("file")
    state = Path(spec).with_suffix(".pt") if spec else None
    if state is None or not state.is_file():
        raise SpdnnError(f"parent {graph.name!r} has no trained weights: give it as an .onnx model, or put its "
                         f"state dict beside the spec as {state or '<spec>.pt'}")
    from spdnn.backends.torch_exporter import read_state_dict

    return read_state_dict(state)


_STAGE_TITLES = {
    "parents": "parents in parallel, labelled from the input",
    "contracted": "after the first contraction",
    "relabelled": "labelled from the output",
    "final": "after the second contraction",
}


def reports(models: list[CompiledModel]) -> dict[str, bytes]:
    """report.json and report.md over all compiled models."""
    from spdnn import __version__

    data = {"generator": f"spdnn {__version__}", "models": [m.summary.to_dict() for m in models],
            "notes": [note for m in models for note in m.notes]}
    md = ["# spdnn compile report", ""]
    for m in models:
        md += [m.summary.to_markdown(), f"Inputs: {m.summary.inputs}  ", f"Outputs: {m.summary.outputs}", ""]
        md += [f"Note: {note}" for note in m.notes] + ([""] if m.notes else [])
    return {"report.json": (json.dumps(data, indent=2) + "\n").encode(), "report.md": "\n".join(md).encode()}


def write_outputs(models: list[CompiledModel], out_dir: str | Path,
                  report: dict[str, bytes] | None = None) -> list[Path]:
    """Replace ``out_dir`` as a whole with every artefact plus the reports (see the module
    docstring); return the paths written. ``report`` (files by name, with a ``report.json``
    holding ``models``) replaces the default reports."""
    files: dict[str, bytes] = {}
    for m in models:
        files.update(m.files)
    files.update(reports(models) if report is None else report)
    out = Path(out_dir)
    _check_output_folder(out)
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(parent)
    stage = Path(tempfile.mkdtemp(prefix=f".spdnn-stage-{out.name}-{os.getpid()}-", dir=parent))
    try:
        for name, data in files.items():
            (stage / name).write_bytes(data)
        _swap_in(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return [out / name for name in files]


def _check_output_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SpdnnError(f"output path {out} exists and is not a folder")
    if len(out.name.encode()) > 200:
        raise SpdnnError(f"output folder name {out.name[:40]!r}... is longer than 200 bytes")
    if out.is_dir() and any(out.iterdir()) and not _written_by_spdnn(out):
        raise SpdnnError(f"output folder {out} holds files spdnn did not write (it has no spdnn report.json); "
                         "compile replaces its output folder as a whole, so give a new or empty folder")


def _written_by_spdnn(folder: Path) -> bool:
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and "models" in report


def _swap_in(stage: Path, out: Path) -> None:
    """Give ``stage`` the name ``out``; an existing ``out`` is moved aside first, then deleted."""
    if not out.exists():
        os.replace(stage, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".spdnn-old-{out.name}-{os.getpid()}-", dir=out.parent))
    os.replace(out, old)  # replaces the empty placeholder made by mkdtemp
    os.replace(stage, out)
    shutil.rmtree(old, ignore_errors=True)


_LEFTOVER = re.compile(r"^\.spdnn-(stage|old|file)-(?P<name>.+)-(?P<pid>\d+)-[^-]+$")


def _remove_stale(parent: Path) -> None:
    """Delete staging/old folders and half-written files of killed runs in ``parent`` (restore an
    old folder whose replacement never took its name)."""
    for entry in parent.iterdir():
        m = _LEFTOVER.match(entry.name)
        if not m or _alive(int(m["pid"])):
            continue
        if m[1] == "file":
            if entry.is_file() and not entry.is_symlink():
                with contextlib.suppress(OSError):
                    entry.unlink()
            continue
        if not entry.is_dir():
            continue
        target = parent / m["name"]
        if m[1] == "old" and not target.exists():
            os.replace(entry, target)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_output_file(path: str | Path, example: str = "") -> Path:
    """``path`` as a file spdnn may replace; SpdnnError for a folder (suggesting ``example`` inside
    it) or a device, FIFO or socket (the rename of an atomic write would replace it: as root,
    /dev/null)."""
    target = Path(path)
    if target.is_dir():
        such_as = f" such as {target / example}" if example else ""
        raise SpdnnError(f"{target} is a folder; give a file name{such_as}")
    if target.exists() and not target.is_file():
        raise SpdnnError(f"{target} is not a regular file (a device, FIFO or socket); spdnn writes files by "
                         "renaming a new file into place, which would replace it; give a file name")
    return target


def write_file_atomically(path: str | Path, data: bytes) -> None:
    """Write one file through a temporary file in the same folder and a rename. Only a regular
    file is ever replaced: a folder, device, FIFO or socket at ``path`` is an SpdnnError."""
    target = check_output_file(path)
    folder = target.parent
    try:
        _remove_stale(folder)
        # the pid lets a later run remove the file when this one is killed; the name is cut so
        # that a long target name still leaves room for the prefix
        fd, tmp = tempfile.mkstemp(prefix=f".spdnn-file-{target.name[:100]}-{os.getpid()}-", dir=folder)
    except OSError as e:
        raise SpdnnError(f"cannot write {target}: {(e.strerror or str(e)).lower()}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
