"""``spdnn compile SYSTEM.yaml``: every network's artefacts, one report and a picture of the system.

Rules:
  * A file is a system spec when its top-level mapping has ``networks:`` (:func:`is_system_file`).
  * The spec is loaded and validated first (``spdnn.load_system``): every mistake is a located
    SpecError before anything is built.
  * Each network is compiled as ``spdnn compile`` compiles one model
    (:func:`spdnn.compile.compile_graph`), with seed ``seed + i`` for the i-th network (the seeds
    ``spdnn.build_system`` uses, so ``G.pt`` holds the weights training starts from); an ONNX
    network keeps its trained weights. Its files are named after its key in the system
    (``G.pt``, ``G.onnx``, ``G.yaml``, ``G.dot``, ``G.mmd``).
  * ``report.json`` / ``report.md`` list networks (parameters, frozen or not), tensors, flows,
    losses, optimisers and the update order; ``<system>.dot`` / ``<system>.mmd`` draw the system.
  * The output folder is replaced as a whole (:func:`spdnn.compile.write_outputs`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from spdnn.compile import CompiledModel, compile_graph, write_outputs
from spdnn.errors import SpecError
from spdnn.ir.graph import Graph

from .picture import system_dot, system_mermaid
from .spec import SystemSpec

__all__ = ["compile_system", "is_system_file", "system_report"]


def is_system_file(path: str | Path) -> bool:
    """True when ``path`` is a YAML file whose top level has ``networks:`` (a system spec). A file
    that cannot be read or parsed is not one (the single-model path reports its problem)."""
    if str(path).lower().endswith(".onnx"):
        return False
    from spdnn.frontends.yaml_importer.loader import load_yaml, read_spec_file
    from spdnn.frontends.yaml_importer.system import is_system_document

    try:
        text, name = read_spec_file(path)
        return is_system_document(load_yaml(text, name).data)
    except (SpecError, OSError):
        return False


def compile_system(path: str | Path, out_dir: str | Path | None = None, seed: int = 0, opset: int | None = None,
                   picture: str = "compact", passes: Callable[[Graph], object] | None = None,
                   say: Callable[[str], None] = lambda _text: None) -> list[Path]:
    """Compile system spec ``path`` into ``out_dir`` (default ``out/<system name>``); return the
    paths written. ``passes`` runs on each network's graph before it is compiled."""
    import spdnn

    spec = spdnn.load_system(path)
    models: dict[str, CompiledModel] = {}
    for i, (key, net) in enumerate(spec.networks.items()):
        if passes:
            passes(net.graph)
        model = compile_graph(net.graph, seed + i, opset, picture)
        model.files = {key + name[len(net.graph.name):]: data for name, data in model.files.items()}
        models[key] = model
    report = system_report(spec, models)
    report[f"{spec.name}.dot"] = system_dot(spec).encode()
    report[f"{spec.name}.mmd"] = system_mermaid(spec).encode()
    out = Path(out_dir) if out_dir else Path("out") / spec.name
    written = write_outputs(list(models.values()), out, report=report)
    for key, m in models.items():
        net = spec.networks[key]
        say(f"{key} ({net.graph.name}): {len(m.summary.layers)} nodes, {m.summary.total_params:,} params"
            + (", frozen" if net.frozen else ""))
    say(f"system {spec.name}: {len(spec.networks)} networks, {len(spec.flows)} flows, {len(spec.losses)} losses; "
        f"wrote {len(written)} files to {out}")
    return written


def system_report(spec: SystemSpec, models: dict[str, CompiledModel]) -> dict[str, bytes]:
    """``report.json`` and ``report.md`` of a compiled system (``models`` by network key)."""
    from spdnn import __version__

    networks = {}
    for key, net in spec.networks.items():
        params = models[key].summary.total_params
        networks[key] = {"model": net.graph.name, "source": net.source, "frozen": net.frozen, "params": params,
                         "trainable_params": 0 if net.frozen else params,
                         "inputs": {n: list(p.shape) for n, p in net.inputs.items()},
                         "outputs": {n: list(p.shape) for n, p in net.outputs.items()},
                         "files": sorted(models[key].files)}
    system = {
        "name": spec.name, "file": spec.file, "networks": networks,
        "tensors": {n: {"kind": t.kind, **_tensor_fields(t), "shape": _shape(spec, n),
                        "dtype": spec.shapes[n].dtype if n in spec.shapes else None}
                    for n, t in spec.tensors.items()},
        "flows": {n: {"network": f.network, "inputs": dict(f.inputs)} for n, f in spec.flows.items()},
        "losses": {n: [{"type": t.type, "args": dict(t.args), "weight": t.weight_text(), "options": dict(t.options)}
                       for t in loss.terms] for n, loss in spec.losses.items()},
        "optimizers": {n: {"type": o.type, "networks": list(o.networks), "loss": o.loss, "lr": o.lr,
                           "schedule": dict(o.schedule)} for n, o in spec.optimizers.items()},
        "training": {"epochs": spec.training.epochs, "batch_size": spec.training.batch_size,
                     "update": [{"optimizer": s.optimizer, "times": s.times} for s in spec.training.update],
                     "monitor": spec.training.monitor, "patience": spec.training.patience},
    }
    data = {"generator": f"spdnn {__version__}", "system": system,
            "models": [m.summary.to_dict() for m in models.values()],
            "notes": [note for m in models.values() for note in m.notes]}
    return {"report.json": (json.dumps(data, indent=2) + "\n").encode(),
            "report.md": _markdown(spec, system, models).encode()}


def _tensor_fields(t) -> dict:
    return {"data": {"key": t.key}, "noise": {"dist": t.dist}, "labels": {"classes": t.classes},
            "partition": {"of": t.of[0] if t.of else None, "classes": t.classes},
            "one_hot": {"of": t.of[0] if t.of else None, "classes": t.classes},
            "concat": {"of": list(t.of)}}[t.kind]


def _shape(spec: SystemSpec, name: str) -> list[int] | None:
    return list(spec.shapes[name].shape) if name in spec.shapes else None


def _markdown(spec: SystemSpec, system: dict, models: dict[str, CompiledModel]) -> str:
    md = [f"# System {spec.name}", "", "## Networks", "", "| network | model | source | params | trainable | frozen |",
          "|---|---|---|---:|---:|---|"]
    for key, n in system["networks"].items():
        md.append(f"| {key} | {n['model']} | {n['source']} | {n['params']:,} | {n['trainable_params']:,} | "
                  f"{'yes' if n['frozen'] else 'no'} |")
    md += ["", "## Tensors", "", "| tensor | kind | shape | dtype |", "|---|---|---|---|"]
    md += [f"| {n} | {t['kind']} | {tuple(t['shape']) if t['shape'] is not None else '?'} | {t['dtype']} |"
           for n, t in system["tensors"].items()]
    md += ["", "## Flows", ""]
    md += [f"* `{n}` = {f['network']}({', '.join(f'{k}={v}' for k, v in f['inputs'].items())})"
           for n, f in system["flows"].items()]
    md += ["", "## Losses", ""]
    for name, terms in system["losses"].items():
        shown = " + ".join(f"{t['weight']}·{t['type']}({', '.join(str(v) for v in t['args'].values())})"
                           for t in terms)
        md.append(f"* `{name}` = {shown}")
    md += ["", "## Optimisers", ""]
    md += [f"* `{n}`: {o['type']} lr {o['lr']} on {', '.join(o['networks'])}, minimises `{o['loss']}`"
           for n, o in system["optimizers"].items()]
    order = ", ".join(f"{s['optimizer']}×{s['times']}" for s in system["training"]["update"])
    md += ["", f"Update order: {order}; monitor: `{system['training']['monitor']}`", ""]
    for key, m in models.items():
        md += [f"## Network {key}", "", m.summary.to_markdown(), ""]
        md += [f"Note: {note}" for note in m.notes] + ([""] if m.notes else [])
    return "\n".join(md)
