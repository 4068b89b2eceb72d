"""Rules of a system spec, checked before anything is built; every broken rule is one located
problem, and all of them are reported together (``SpecError``).

1. Tensors: ``data`` names a key of the data file; ``noise`` has a shape; ``labels`` and
   ``partition`` have ``classes >= 2``; derived tensors (``partition``, ``one_hot``, ``concat``)
   name tensors declared above them; ``concat`` joins 1-D float tensors.
2. Flows run in the order written: each names a network of ``networks``, gives every input of
   that network exactly once, from a tensor or an earlier flow's output of exactly the input's
   shape. A data tensor without ``shape:`` takes the shape of the first input it feeds.
3. Losses: known types, every argument given and naming a tensor that exists, with fitting
   shapes (same shape for mse/l1/bce/autoencoder/info_code/var_regression/spatial_frequency;
   class scores (K, ...) and integer labels (...) for nll/cross_entropy; a ``feature`` loss
   names a network whose single input takes both tensors).
4. Optimisers update networks that exist and are not frozen, each network by one optimiser at
   most, to lower a loss that exists; every trainable network has an optimiser.
5. The update order names optimisers (default: each once, in the order written), and every
   optimiser appears in it. ``monitor`` names a loss (default: the last step's loss).
"""

from __future__ import annotations

from collections.abc import Callable

from spdnn.errors import Problem, SpecError
from spdnn.ops.base import suggest

from .spec import LOSS_TYPES, Port, SystemSpec, UpdateStep

__all__ = ["validate_system", "Locate"]

Locate = Callable[[tuple, str], Problem]
_SAME_SHAPE = ("mse", "l1", "bce", "autoencoder", "info_code", "var_regression", "spatial_frequency")
_CLASS_LOSSES = ("nll", "cross_entropy")


def validate_system(spec: SystemSpec, locate: Locate) -> SystemSpec:
    """Check ``spec`` (rules in the module docstring), fill ``spec.shapes`` and the defaults of
    the update order and monitor; raise SpecError listing every problem."""
    problems: list[Problem] = []
    _Checker(spec, locate, problems).run()
    if problems:
        raise SpecError(problems)
    return spec


class _Checker:
    def __init__(self, spec: SystemSpec, locate: Locate, problems: list[Problem]):
        self.spec, self.locate, self.problems = spec, locate, problems
        self.shapes: dict[str, Port | None] = {}
        self.broken: set[str] = set()  # outputs of flows already reported: no follow-on problems

    def bad(self, path: tuple, message: str) -> None:
        self.problems.append(self.locate(path, message))

    def run(self) -> None:
        self.tensors()
        self.flows()
        self.losses()
        self.optimizers()
        self.update_order()
        for name, port in self.shapes.items():
            if port is None:
                self.bad(self.spec.tensors[name].path,
                         f"data tensor {name!r} feeds no network input; give its shape: [...]")
        self.spec.shapes = {k: v for k, v in self.shapes.items() if v is not None}

    # -- tensors ---------------------------------------------------------------------------------
    def tensors(self) -> None:
        for t in self.spec.tensors.values():
            if t.kind == "data":
                self.shapes[t.name] = Port(t.shape, t.dtype) if t.shape is not None else None
            elif t.kind == "noise":
                if not t.shape:
                    self.bad(t.path, f"noise tensor {t.name!r} needs a shape, e.g. shape: [64]")
                self.shapes[t.name] = Port(t.shape or (), "float32")
            elif t.kind in ("labels", "partition", "one_hot"):
                if t.classes < 2:
                    self.bad(t.path, f"tensor {t.name!r}: classes must be at least 2, got {t.classes}")
                if t.kind == "labels":
                    self.shapes[t.name] = Port((), "int64")
                else:
                    self.derived(t)
            else:
                self.derived(t)

    def derived(self, t) -> None:
        sources = []
        for ref in t.of:
            port = self.shapes.get(ref)
            if ref not in self.shapes or port is None:
                known = [k for k, v in self.shapes.items() if v is not None]
                self.bad(t.path, f"tensor {t.name!r} is made from {ref!r}, which is not a tensor declared "
                         f"above it with a known shape{_hint(ref, known)}")
                self.shapes[t.name] = None if t.kind == "concat" else Port((), "int64")
                return
            sources.append((ref, port))
        if t.kind == "partition":
            ref, port = sources[0]
            if len(port.shape) != 1 or port.dtype != "float32":
                self.bad(t.path, f"partition {t.name!r}: {ref!r} must be a 1-D latent code, got shape {port.shape}")
            self.shapes[t.name] = Port((), "int64")
        elif t.kind == "one_hot":
            ref, port = sources[0]
            if port.dtype != "int64" or port.shape:
                self.bad(t.path, f"one_hot {t.name!r}: {ref!r} must hold class ids (labels or partition)")
            self.shapes[t.name] = Port((t.classes,), "float32")
        else:  # concat
            width = 0
            for ref, port in sources:
                if len(port.shape) != 1 or port.dtype != "float32":
                    self.bad(t.path, f"concat {t.name!r}: {ref!r} has shape {port.shape} {port.dtype}; "
                             "concat joins 1-D float tensors")
                else:
                    width += port.shape[0]
            self.shapes[t.name] = Port((width,), "float32")

    # -- flows -----------------------------------------------------------------------------------
    def flows(self) -> None:
        for flow in self.spec.flows.values():
            net = self.spec.networks.get(flow.network)
            if net is None:
                self.bad((*flow.path, "network"), f"unknown network {flow.network!r}"
                         f"{_hint(flow.network, list(self.spec.networks))}")
                self.broken.add(flow.name)
                continue
            wanted = net.inputs
            for key in flow.inputs:
                if key not in wanted:
                    self.bad((*flow.path, "inputs", key), f"network {net.name!r} has no input {key!r}; "
                             f"its inputs are {list(wanted)}")
            for key, port in wanted.items():
                if key not in flow.inputs:
                    self.bad((*flow.path, "inputs"), f"input {key!r} of network {net.name!r} is not given")
                    continue
                self.feed((*flow.path, "inputs", key), flow.inputs[key], port, f"input {key!r} of {net.name!r}")
            outputs = net.outputs
            for out, port in outputs.items():
                self.shapes[f"{flow.name}.{out}"] = port
            if len(outputs) == 1:
                self.shapes[flow.name] = next(iter(outputs.values()))

    def feed(self, path: tuple, ref: str, want: Port, what: str) -> None:
        """Tensor ``ref`` goes into a port of shape ``want``."""
        if ref.split(".")[0] in self.broken:
            return
        if ref not in self.shapes:
            self.bad(path, f"unknown tensor {ref!r}{_hint(ref, list(self.shapes))} (tensors, and flow outputs "
                     "written above this flow)")
            return
        have = self.shapes[ref]
        if have is None:  # a data tensor takes its shape from the first input it feeds
            self.shapes[ref] = Port(want.shape, want.dtype)
            return
        if have.shape != want.shape:
            self.bad(path, f"tensor {ref!r} has shape {_fmt(have.shape)}, but {what} takes {_fmt(want.shape)}")
        elif have.dtype != want.dtype:
            self.bad(path, f"tensor {ref!r} is {have.dtype}, but {what} takes {want.dtype}")

    # -- losses ----------------------------------------------------------------------------------
    def losses(self) -> None:
        for loss in self.spec.losses.values():
            if not loss.terms:
                self.bad(loss.path, f"loss {loss.name!r} has no terms")
            for term in loss.terms:
                self.term(term)

    def term(self, term) -> None:
        if term.type not in LOSS_TYPES:
            self.bad((*term.path, "type"), f"unknown loss type {term.type!r}{_hint(term.type, list(LOSS_TYPES))}")
            return
        ports: dict[str, Port | None] = {}
        for arg in LOSS_TYPES[term.type]:
            ref = term.args.get(arg)
            if isinstance(ref, str) and ref.split(".")[0] in self.broken:
                return
            if ref is None:
                self.bad(term.path, f"{term.type} loss needs {arg}: (a tensor name)")
                return
            if isinstance(ref, (int, float)) and not isinstance(ref, bool):
                if arg != "target" or term.type not in ("mse", "l1", "bce"):
                    self.bad((*term.path, arg), f"{term.type} loss: {arg} must name a tensor, got {ref!r}")
                    return
                ports[arg] = None
                continue
            if not isinstance(ref, str):
                self.bad((*term.path, arg), f"{term.type} loss: {arg} must name a tensor, got {ref!r}")
                return
            if ref not in self.shapes:
                self.bad((*term.path, arg), f"loss on tensor {ref!r}, which does not exist"
                         f"{_hint(str(ref), list(self.shapes))}")
                return
            ports[arg] = self.shapes[ref]
        if term.type in _CLASS_LOSSES:
            self.class_term(term, ports)
        elif term.type == "feature":
            self.feature_term(term, ports)
        elif term.type == "began":
            self.same_shape(term, ports["real"], ports["real_recon"], "real", "real_recon")
            self.same_shape(term, ports["fake"], ports["fake_recon"], "fake", "fake_recon")
        else:
            first, second = LOSS_TYPES[term.type]
            self.same_shape(term, ports[first], ports[second], first, second)
        if term.type == "spatial_frequency":
            port = ports["input"]
            if port is not None and len(port.shape) != 3:
                self.bad(term.path, f"spatial_frequency loss needs images (C, H, W), got {_fmt(port.shape)}")
        for arg in ("input",):
            ref = term.args.get(arg)
            if term.type in ("bce", "cross_entropy") and term.options.get("from", "auto") == "auto" and ref:
                producer = ports[arg].producer if ports.get(arg) else ""
                term.options["from"] = "probabilities" if producer in ("softmax", "sigmoid") else "logits"

    def same_shape(self, term, a: Port | None, b: Port | None, an: str, bn: str) -> None:
        ref_a, ref_b = term.args.get(an), term.args.get(bn)
        if a is None and isinstance(ref_a, str):  # a data tensor: its shape is the other side's
            self.shapes[ref_a] = a = Port(b.shape, "float32") if b is not None else None
        if b is None and isinstance(ref_b, str):
            self.shapes[ref_b] = b = Port(a.shape, "float32") if a is not None else None
        if a is not None and b is not None and a.shape != b.shape:
            self.bad(term.path, f"{term.type} loss: {an} {ref_a!r} has shape {_fmt(a.shape)} but {bn} "
                     f"{ref_b!r} has {_fmt(b.shape)}")

    def class_term(self, term, ports) -> None:
        scores, labels = ports["input"], ports["target"]
        ref = term.args["target"]
        if scores is None or not scores.shape:
            self.bad(term.path, f"{term.type} loss: input must hold class scores (K, ...)")
            return
        want = Port(scores.shape[1:], "int64")
        if labels is None:
            self.shapes[ref] = want
        elif labels.shape != want.shape or labels.dtype != "int64":
            self.bad((*term.path, "target"), f"{term.type} loss: target {ref!r} must hold integer class ids of "
                     f"shape {_fmt(want.shape)} for scores {_fmt(scores.shape)}, got {_fmt(labels.shape)} "
                     f"{labels.dtype}")

    def feature_term(self, term, ports) -> None:
        name = term.options.get("network", "")
        net = self.spec.networks.get(name)
        if net is None:
            self.bad((*term.path, "network"), f"feature loss: unknown network {name!r}"
                     f"{_hint(str(name), list(self.spec.networks))}")
            return
        if len(net.inputs) != 1:
            self.bad((*term.path, "network"), f"feature loss: network {name!r} must have one input")
            return
        port = next(iter(net.inputs.values()))
        for arg in ("input", "target"):
            self.feed((*term.path, arg), term.args[arg], port, f"the input of feature network {name!r}")

    # -- optimisers and update order -------------------------------------------------------------
    def optimizers(self) -> None:
        owner: dict[str, str] = {}
        for opt in self.spec.optimizers.values():
            if opt.loss not in self.spec.losses:
                self.bad((*opt.path, "loss"), f"optimizer {opt.name!r}: unknown loss {opt.loss!r}"
                         f"{_hint(opt.loss, list(self.spec.losses))}")
            if not opt.networks:
                self.bad((*opt.path, "networks"), f"optimizer {opt.name!r} updates no network")
            for i, name in enumerate(opt.networks):
                net = self.spec.networks.get(name)
                where = (*opt.path, "networks", i)
                if net is None:
                    self.bad(where, f"optimizer {opt.name!r}: unknown network {name!r}"
                             f"{_hint(name, list(self.spec.networks))}")
                elif net.frozen:
                    self.bad(where, f"network {name!r} is frozen but optimizer {opt.name!r} updates it; "
                             "remove it from the optimizer or set frozen: false")
                elif name in owner:
                    self.bad(where, f"network {name!r} is already updated by optimizer {owner[name]!r}")
                else:
                    owner[name] = opt.name
            if opt.lr <= 0:
                self.bad((*opt.path, "lr"), f"optimizer {opt.name!r}: lr must be positive, got {opt.lr}")
        for name, net in self.spec.networks.items():
            if not net.frozen and name not in owner:
                self.bad(net.path, f"network {name!r} is trainable but no optimizer updates it; add it to an "
                         "optimizer's networks or set frozen: true")

    def update_order(self) -> None:
        training = self.spec.training
        if not training.update:
            training.update = [UpdateStep(name, 1, training.path) for name in self.spec.optimizers]
        used = set()
        for step in training.update:
            if step.optimizer not in self.spec.optimizers:
                self.bad(step.path, f"update order: unknown optimizer {step.optimizer!r}"
                         f"{_hint(step.optimizer, list(self.spec.optimizers))}")
            if step.times < 1:
                self.bad(step.path, f"update order: times must be at least 1, got {step.times}")
            used.add(step.optimizer)
        for name, opt in self.spec.optimizers.items():
            if name not in used:
                self.bad(opt.path, f"optimizer {name!r} is not in training.update, so it would never step")
        if not training.monitor and training.update and training.update[-1].optimizer in self.spec.optimizers:
            training.monitor = self.spec.optimizers[training.update[-1].optimizer].loss
        if training.monitor and training.monitor not in self.spec.losses:
            self.bad((*training.path, "monitor"), f"monitor: unknown loss {training.monitor!r}"
                     f"{_hint(training.monitor, list(self.spec.losses))}")
        if training.epochs < 1 or training.batch_size < 1:
            self.bad(training.path, "training: epochs and batch_size must be at least 1")


def _hint(name: str, known: list[str]) -> str:
    found = suggest(name, known)
    return f" (did you mean {found[0]!r}?)" if found else ""


def _fmt(shape: tuple[int, ...]) -> str:
    return "(N" + "".join(f", {d}" for d in shape) + ")"
