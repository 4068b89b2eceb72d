"""System spec files (YAML) -> validated :class:`spdnn.system.SystemSpec`.

A system spec has ``networks:`` instead of ``layers:``::

    spdnn: 1
    name: vacgan_toy
    networks:
      G: generator.yaml                    # a spec file, relative to this file
      D: {spec: discriminator.yaml}
      E: {onnx: encoder.onnx, frozen: true}   # ONNX with trained weights, not updated
      A: {inline: {name: a, inputs: {x: [1, 8, 8]}, layers: [...]}}
    tensors:                               # the tensors of every batch
      x: {data: x}                         # array 'x' of the .npz data file
      z: {noise: uniform, shape: [16]}     # U(-1, 1); or normal
      c: {partition: z, classes: 2}        # class of z (first dimension's range cut in bins)
    flows:                                 # networks run on tensors, in this order
      fake: {network: G, inputs: {z: z}}   # outputs: tensor 'fake' (and 'fake.<output>')
      d_fake: {network: D, inputs: {image: fake}}
    losses:                                # each a list of weighted terms
      d: [{type: bce, input: d_real, target: 1}, {type: bce, input: d_fake, target: 0}]
    optimizers:
      opt_d: {type: adam, lr: 2.0e-4, betas: [0.5, 0.999], networks: [D], loss: d}
    training: {epochs: 5, batch_size: 16, update: [opt_d, {optimizer: opt_g, times: 2}]}

Every problem (structure, unknown names, shapes that do not fit, frozen networks with an
optimiser) is reported with file:line:column before anything is built.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spdnn.errors import Problem, SpecError
from spdnn.ir.naming import is_valid_name
from spdnn.system.spec import (LOSS_TYPES, OPTIMIZER_TYPES, SCHEDULE_TYPES, TENSOR_KINDS, Flow, Loss, LossTerm,
                               Network, Optimizer, SystemSpec, TensorDecl, Training, UpdateStep)
from spdnn.system.validate import validate_system

from .build import build_graph
from .document import validation_problems, version_is_an_int
from .loader import Located, PathKey, load_yaml, read_spec_file

__all__ = ["is_system_document", "load_system", "load_system_text", "LOSS_OPTIONS"]

#: Settings each loss type accepts besides its tensor arguments (and ``type``, ``weight``).
LOSS_OPTIONS: dict[str, dict[str, Any]] = {
    "bce": {"from": "auto"}, "cross_entropy": {"from": "auto"},
    "autoencoder": {"norm": "l1"},
    "began": {"gamma": 0.5, "lambda_k": 0.001, "k_init": 0.0, "norm": "l1"},
    "var_regression": {"form": "code", "eps": 1e-8},
    "spatial_frequency": {"sigmas": [0.8, 1.6, 3.2], "band_weights": [100.0, 10.0, 10.0]},
    "feature": {"network": "", "norm": "l2"},
}
_CHOICES = {"from": ("auto", "logits", "probabilities"), "norm": ("l1", "l2"), "form": ("code", "paper")}


class _Strict(BaseModel):
    """No unknown keys; no booleans for numbers, no numbers for booleans or strings, no NaN or
    infinity (what YAML says is what the schema takes)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _NetworkDoc(_Strict):
    spec: str | None = None
    onnx: str | None = None
    inline: dict[str, Any] | None = None
    frozen: bool = False


class _OptimizerDoc(_Strict):
    type: Literal[OPTIMIZER_TYPES] = "adam"  # type: ignore[valid-type]
    networks: list[str] = Field(min_length=1)
    loss: str
    lr: float = 1e-3
    momentum: float = Field(0.0, ge=0)
    nesterov: bool = False
    betas: list[float] = Field([0.9, 0.999], min_length=2, max_length=2)
    alpha: float = 0.99
    weight_decay: float = Field(0.0, ge=0)
    schedule: dict[str, Any] = {"type": "constant"}


class _StepDoc(_Strict):
    optimizer: str
    times: int = 1


class _TrainingDoc(_Strict):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    update: list[str | _StepDoc] = []
    monitor: str = ""
    patience: int = Field(0, ge=0)


class _SystemDoc(_Strict):
    spdnn: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str = ""
    source: str | dict[str, Any] | None = None
    networks: dict[str, str | _NetworkDoc] = Field(min_length=1)
    tensors: dict[str, dict[str, Any]] = {}
    flows: dict[str, dict[str, Any]] = {}
    losses: dict[str, list[dict[str, Any]]] = Field(min_length=1)
    optimizers: dict[str, _OptimizerDoc] = Field(min_length=1)
    training: _TrainingDoc = _TrainingDoc()

    @field_validator("spdnn", mode="before")
    @classmethod
    def _version_is_an_int(cls, value: Any) -> Any:
        return version_is_an_int(value)


def is_system_document(data: Any) -> bool:
    """A parsed YAML document is a system spec when it has ``networks:``."""
    return isinstance(data, dict) and "networks" in data


def load_system(path: str | Path) -> SystemSpec:
    """Load and validate a system spec file (SpecError listing every located problem)."""
    text, name = read_spec_file(path)
    return load_system_text(text, name, Path(path).parent)


def load_system_text(text: str, file: str = "<string>", base: str | Path = ".") -> SystemSpec:
    """Load a system spec from text; network files are found relative to ``base``."""
    doc = load_yaml(text, file)
    try:
        top = _SystemDoc.model_validate(doc.data)
    except ValidationError as e:
        raise SpecError(validation_problems(e, doc, (), _SystemDoc)) from None
    problems: list[Problem] = []
    if not is_valid_name(top.name):
        problems.append(doc.problem(("name",), f"system name {top.name!r} must be an identifier"))
    networks = _networks(doc, top, Path(base), problems)
    spec = SystemSpec(
        name=top.name, file=file, description=top.description, networks=networks,
        tensors=_tensors(doc, top, problems), flows=_flows(doc, top, problems),
        losses=_losses(doc, top, problems), optimizers=_optimizers(doc, top, problems),
        training=_training(top))
    if len(networks) == len(top.networks):  # cross-checks need every network's ports
        try:
            validate_system(spec, lambda path, message: doc.problem(path, message))
        except SpecError as e:
            problems.extend(e.problems)
    if problems:
        raise SpecError(problems)
    return spec


# -- sections --------------------------------------------------------------------------------------
def _networks(doc: Located, top: _SystemDoc, base: Path, problems: list[Problem]) -> dict[str, Network]:
    out: dict[str, Network] = {}
    for name, entry in top.networks.items():
        path: PathKey = ("networks", name)
        if not is_valid_name(name):
            problems.append(doc.problem(path, f"network name {name!r} must be an identifier", at_key=True))
            continue
        entry = _NetworkDoc(spec=entry) if isinstance(entry, str) else entry
        given = [k for k in ("spec", "onnx", "inline") if getattr(entry, k) is not None]
        if len(given) != 1:
            problems.append(doc.problem(path, f"network {name!r}: give exactly one of spec: (a YAML file), "
                                        "onnx: (a model with weights) or inline: (a spec)"))
            continue
        try:
            graph = _load_network(doc, path, entry, given[0], base)
        except SpecError as e:
            problems.extend(e.problems)
            continue
        except Exception as e:  # noqa: BLE001 - the ONNX importer's own errors are SpdnnErrors too
            from spdnn.errors import SpdnnError

            if not isinstance(e, SpdnnError):
                raise
            problems.append(doc.problem(path, f"network {name!r}: {e}"))
            continue
        out[name] = Network(name, graph, given[0], entry.frozen, path)
    return out


def _load_network(doc: Located, path: PathKey, entry: _NetworkDoc, kind: str, base: Path):
    if kind == "inline":
        return build_graph(_sub_document(doc, (*path, "inline")))
    rel = getattr(entry, kind)
    file = Path(rel) if Path(rel).is_absolute() else base / rel
    at = (*path, kind) if not isinstance(doc.data["networks"][path[1]], str) else path
    try:
        found = file.is_file()
    except OSError as e:  # a name too long for the file system, a loop of links
        raise SpecError(doc.problem(at, f"network file {rel[:80]!r}: {(e.strerror or str(e)).lower()}")) from None
    if not found:
        raise SpecError(doc.problem(at, f"network file {rel!r} not found (looked for {file})"))
    if kind == "onnx":
        from spdnn.compile import load_input

        return load_input(file)
    text, name = read_spec_file(file)
    return build_graph(load_yaml(text, name))


def _sub_document(doc: Located, prefix: PathKey) -> Located:
    """The part of ``doc`` under ``prefix`` as a document of its own (same file, same lines)."""
    n = len(prefix)
    sub = Located(_get(doc.data, prefix), doc.file)
    sub.pos = {k[n:]: v for k, v in doc.pos.items() if k[:n] == prefix}
    sub.key_pos = {k[n:]: v for k, v in doc.key_pos.items() if k[:n] == prefix}
    return sub


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        data = data[part]
    return data


def _tensors(doc: Located, top: _SystemDoc, problems: list[Problem]) -> dict[str, TensorDecl]:
    out: dict[str, TensorDecl] = {}
    for name, entry in top.tensors.items():
        path: PathKey = ("tensors", name)
        kinds = [k for k in TENSOR_KINDS if k in entry]
        if len(kinds) != 1:
            problems.append(doc.problem(path, f"tensor {name!r}: give exactly one of {', '.join(TENSOR_KINDS)}"))
            continue
        kind = kinds[0]
        allowed = {"data": {"shape"}, "noise": {"shape"}, "labels": set(), "partition": {"classes"},
                   "one_hot": {"classes"}, "concat": set()}[kind] | {kind}
        for key in entry:
            if key not in allowed:
                problems.append(doc.problem((*path, key), f"tensor {name!r} ({kind}): unknown key {key!r}; "
                                            f"allowed: {', '.join(sorted(allowed))}", at_key=True))
        value = entry[kind]
        t = TensorDecl(name, kind, path=path)
        shape = entry.get("shape")
        if shape is not None:
            if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                    for d in shape)):
                problems.append(doc.problem((*path, "shape"), "shape must be a list of positive integers "
                                            "(without the batch dimension)"))
            else:
                t.shape = tuple(shape)
        if kind == "data":
            t.key = _string(doc, (*path, kind), value, "the array's key in the data file", problems)
        elif kind == "noise":
            if value not in ("normal", "uniform"):
                problems.append(doc.problem((*path, kind), f"noise must be normal or uniform, got {value!r}"))
            t.dist = str(value)
        elif kind == "labels":
            t.classes = _int(doc, (*path, kind), value, problems)
        elif kind in ("partition", "one_hot"):
            t.of = (_string(doc, (*path, kind), value, "a tensor name", problems),)
            t.classes = _int(doc, (*path, "classes"), entry.get("classes"), problems)
        else:
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                problems.append(doc.problem((*path, kind), "concat takes a list of tensor names"))
            else:
                t.of = tuple(value)
        out[name] = t
    return out


def _flows(doc: Located, top: _SystemDoc, problems: list[Problem]) -> dict[str, Flow]:
    out: dict[str, Flow] = {}
    for name, entry in top.flows.items():
        path: PathKey = ("flows", name)
        if "." in name or not is_valid_name(name):
            problems.append(doc.problem(path, f"flow name {name!r} must be an identifier", at_key=True))
            continue
        if name in top.tensors:
            problems.append(doc.problem(path, f"flow {name!r} has the name of a tensor", at_key=True))
        for key in entry:
            if key not in ("network", "inputs"):
                problems.append(doc.problem((*path, key), f"flow {name!r}: unknown key {key!r}; allowed: network, "
                                            "inputs", at_key=True))
        network = _string(doc, (*path, "network"), entry.get("network"), "a network name", problems)
        inputs = entry.get("inputs", {})
        if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
            problems.append(doc.problem((*path, "inputs"), "inputs maps each network input to a tensor name"))
            inputs = {}
        out[name] = Flow(name, network, dict(inputs), path)
    return out


def _losses(doc: Located, top: _SystemDoc, problems: list[Problem]) -> dict[str, Loss]:
    out: dict[str, Loss] = {}
    for name, terms in top.losses.items():
        parsed = []
        for i, entry in enumerate(terms):
            path: PathKey = ("losses", name, i)
            kind = entry.get("type")
            if not isinstance(kind, str) or kind not in LOSS_TYPES:
                from spdnn.ops.base import suggest

                hint = suggest(kind, list(LOSS_TYPES)) if isinstance(kind, str) else []
                problems.append(doc.problem((*path, "type") if "type" in entry else path,
                                            f"unknown loss type {kind!r}" + (f" (did you mean {hint[0]!r}?)" if hint
                                            else f"; known: {', '.join(LOSS_TYPES)}")))
                continue
            defaults = LOSS_OPTIONS.get(kind, {})
            args, options = {}, dict(defaults)
            weight, schedule = _weight(doc, (*path, "weight"), entry.get("weight", 1.0), problems)
            for key, value in entry.items():
                if key in ("type", "weight"):
                    continue
                if key in LOSS_TYPES[kind]:
                    args[key] = value
                elif key in defaults:
                    options[key] = _option(doc, (*path, key), key, value, defaults[key], problems)
                else:
                    allowed = [*LOSS_TYPES[kind], *defaults, "weight"]
                    problems.append(doc.problem((*path, key), f"{kind} loss: unknown key {key!r}; allowed: "
                                                f"{', '.join(allowed)}", at_key=True))
            parsed.append(LossTerm(kind, args, weight, options, path, schedule))
        out[name] = Loss(name, parsed, ("losses", name))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _weight(doc: Located, path: PathKey, value: Any,
            problems: list[Problem]) -> tuple[float, tuple[tuple[int, float], ...]]:
    """A term's weight: a number, or ``{epochs: [0, 10], values: [1.0, 0.1]}`` (piecewise linear
    in the 0-based epoch, held outside; see LossTerm.weight_schedule)."""
    if _is_number(value):
        return float(value), ()
    if not isinstance(value, dict):
        problems.append(doc.problem(path, f"weight must be a number or {{epochs: [...], values: [...]}}, "
                                    f"got {value!r}"))
        return 1.0, ()
    for key in value:
        if key not in ("epochs", "values"):
            problems.append(doc.problem((*path, key), f"weight schedule: unknown key {key!r}; allowed: epochs, "
                                        "values", at_key=True))
            return 1.0, ()
    epochs, values = value.get("epochs"), value.get("values")
    if not (isinstance(epochs, list) and epochs and all(isinstance(e, int) and not isinstance(e, bool) and e >= 0
                                                        for e in epochs)
            and all(a < b for a, b in zip(epochs, epochs[1:]))):
        problems.append(doc.problem((*path, "epochs") if "epochs" in value else path,
                                    "weight schedule: epochs must be a non-empty list of increasing epoch numbers "
                                    "(counted from 0)"))
        return 1.0, ()
    if not (isinstance(values, list) and len(values) == len(epochs) and all(_is_number(v) for v in values)):
        problems.append(doc.problem((*path, "values") if "values" in value else path,
                                    f"weight schedule: values must be {len(epochs)} numbers, one per epoch in "
                                    "epochs"))
        return 1.0, ()
    schedule = tuple((int(e), float(v)) for e, v in zip(epochs, values))
    return schedule[0][1], schedule


def _option(doc: Located, path: PathKey, key: str, value: Any, default: Any, problems: list[Problem]) -> Any:
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            problems.append(doc.problem(path, f"{key} must be one of {', '.join(_CHOICES[key])}, got {value!r}"))
            return default
        return value
    if isinstance(default, list):
        if not (isinstance(value, list) and value and all(_is_number(v) and v > 0 for v in value)):
            problems.append(doc.problem(path, f"{key} must be a list of positive numbers"))
            return default
        return [float(v) for v in value]
    if isinstance(default, float):
        if not _is_number(value):
            problems.append(doc.problem(path, f"{key} must be a finite number, got {value!r}"))
            return default
        return float(value)
    return value if isinstance(value, str) else str(value)


def _optimizers(doc: Located, top: _SystemDoc, problems: list[Problem]) -> dict[str, Optimizer]:
    out = {}
    for name, o in top.optimizers.items():
        path: PathKey = ("optimizers", name)
        kind = o.schedule.get("type", "constant")
        if not isinstance(kind, str) or kind not in SCHEDULE_TYPES:
            problems.append(doc.problem((*path, "schedule"), f"schedule type must be one of "
                                        f"{', '.join(SCHEDULE_TYPES)}, got {kind!r}"))
        out[name] = Optimizer(name, o.type, list(o.networks), o.loss, o.lr, o.momentum, o.nesterov, tuple(o.betas),
                              o.alpha, o.weight_decay, dict(o.schedule), path)
    return out


def _training(top: _SystemDoc) -> Training:
    t = top.training
    steps = [UpdateStep(s, 1, ("training", "update", i)) if isinstance(s, str)
             else UpdateStep(s.optimizer, s.times, ("training", "update", i)) for i, s in enumerate(t.update)]
    return Training(t.epochs, t.batch_size, steps, t.monitor, t.patience, ("training",))


def _string(doc: Located, path: PathKey, value: Any, what: str, problems: list[Problem]) -> str:
    if not isinstance(value, str) or not value:
        problems.append(doc.problem(path, f"expected {what}, got {value!r}"))
        return ""
    return value


def _int(doc: Located, path: PathKey, value: Any, problems: list[Problem]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(doc.problem(path, f"expected an integer number of classes, got {value!r}"))
        return 0
    return value
