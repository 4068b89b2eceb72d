"""The data of a system spec: several networks, the tensors flowing between them, losses,
optimisers and the update order. Plain dataclasses, no torch (see :mod:`.validate` for the rules).

Every element keeps ``path``, its place in the spec document (``("losses", "g", 1)``), so that
a problem found later is reported at the file, line and column where the element was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spdnn.ir.graph import Graph

__all__ = ["LOSS_TYPES", "NOISE_KINDS", "OPTIMIZER_TYPES", "SCHEDULE_TYPES", "TENSOR_KINDS", "Flow", "Loss",
           "LossTerm", "Network", "Optimizer", "Port", "SystemSpec", "TensorDecl", "Training", "UpdateStep"]

PathKey = tuple[str | int, ...]

#: Kinds of batch tensors: read from the data file, sampled, or derived from other tensors.
TENSOR_KINDS = ("data", "noise", "labels", "partition", "one_hot", "concat")
NOISE_KINDS = ("normal", "uniform")
OPTIMIZER_TYPES = ("sgd", "adam", "rmsprop")
SCHEDULE_TYPES = ("constant", "step", "cosine")

#: Loss term types and the tensor arguments each takes (``target`` may also be a number).
LOSS_TYPES: dict[str, tuple[str, ...]] = {
    "mse": ("input", "target"),
    "l1": ("input", "target"),
    "bce": ("input", "target"),
    "nll": ("input", "target"),
    "cross_entropy": ("input", "target"),
    "autoencoder": ("input", "recon"),
    "began": ("real", "real_recon", "fake", "fake_recon"),
    "info_code": ("input", "target"),
    "var_regression": ("input", "target"),
    "spatial_frequency": ("input", "target"),
    "feature": ("input", "target"),
}


@dataclass(frozen=True)
class Port:
    """One input or output of a network: its per-sample shape, dtype and (outputs) the op
    producing it (``softmax`` tells a cross-entropy loss it receives probabilities)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    producer: str = ""


@dataclass
class Network:
    """A member network: loaded from a spec file, written inline, or imported from ONNX (trained
    weights in ``graph.meta["weights"]``). A frozen network is never updated."""

    name: str
    graph: Graph
    source: str
    frozen: bool = False
    path: PathKey = ()

    @property
    def inputs(self) -> dict[str, Port]:
        return {n.name: Port(self.graph.out_types(n.name)[0].sample_shape, self.graph.out_types(n.name)[0].dtype)
                for n in self.graph.input_nodes()}

    @property
    def outputs(self) -> dict[str, Port]:
        ports = {}
        for n in self.graph.output_nodes():
            value = self.graph.inputs_of(n.name)[0]
            t = self.graph.type_of(value)
            ports[n.name] = Port(t.sample_shape, t.dtype, self.graph.node(value.node).op)
        return ports


@dataclass
class TensorDecl:
    """A tensor of every batch.

    kinds: ``data`` (array ``key`` of the data file), ``noise`` (``dist`` normal or uniform in
    [-1, 1), ``shape``), ``labels`` (uniform random class ids in [0, classes)), ``partition``
    (the class of a latent code: its first dimension's range [-1, 1) cut into ``classes`` equal
    bins, the thesis's VAC+GAN latent partition), ``one_hot`` (of a label tensor), ``concat``
    (1-D tensors joined along their feature axis).
    """

    name: str
    kind: str
    key: str = ""
    dist: str = "normal"
    shape: tuple[int, ...] | None = None
    dtype: str = "float32"
    classes: int = 0
    of: tuple[str, ...] = ()
    path: PathKey = ()


@dataclass
class Flow:
    """Run ``network`` on tensors (network input name -> tensor name). Its outputs are tensors
    ``<flow>.<output>``; a network with one output also gives tensor ``<flow>``."""

    name: str
    network: str
    inputs: dict[str, str]
    path: PathKey = ()


@dataclass
class LossTerm:
    """``weight * type(args)``; ``args`` maps argument names to tensor names (or a number for
    ``target``); ``options`` holds the type's settings (gamma, sigmas, ...).

    ``weight_schedule`` (optional) makes the weight depend on the epoch (Smart Augmentation's
    epoch-dependent f): ``((epoch, weight), ...)`` with increasing epochs counted from 0; between
    two points the weight is interpolated linearly, before the first and after the last it is
    held. ``weight`` is then the weight at epoch 0."""

    type: str
    args: dict[str, str | float]
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)
    path: PathKey = ()
    weight_schedule: tuple[tuple[int, float], ...] = ()

    def weight_at(self, epoch: int) -> float:
        """The term's weight in epoch ``epoch`` (0-based)."""
        points = self.weight_schedule
        if not points:
            return self.weight
        if epoch <= points[0][0]:
            return points[0][1]
        for (e0, w0), (e1, w1) in zip(points, points[1:]):
            if epoch <= e1:
                return w0 + (w1 - w0) * (epoch - e0) / (e1 - e0)
        return points[-1][1]

    def weight_text(self) -> str:
        """``0.5``, or ``w(epoch 0: 1, 10: 0.1)`` for a scheduled weight."""
        if not self.weight_schedule:
            return f"{self.weight:g}"
        return "w(epoch " + ", ".join(f"{e}: {w:g}" for e, w in self.weight_schedule) + ")"


@dataclass
class Loss:
    name: str
    terms: list[LossTerm]
    path: PathKey = ()


@dataclass
class Optimizer:
    """Updates ``networks`` to lower ``loss``. ``schedule``: constant, step (``step_size`` epochs,
    ``gamma``) or cosine (to 0 over the run's epochs)."""

    name: str
    type: str
    networks: list[str]
    loss: str
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    alpha: float = 0.99
    weight_decay: float = 0.0
    schedule: dict[str, Any] = field(default_factory=lambda: {"type": "constant"})
    path: PathKey = ()


@dataclass
class UpdateStep:
    """``times`` optimiser steps of ``optimizer`` in every iteration, in the order listed."""

    optimizer: str
    times: int = 1
    path: PathKey = ()


@dataclass
class Training:
    """Settings of the loop. ``monitor`` is the loss whose value on the validation split picks
    the best checkpoint and drives early stopping (``patience`` epochs without improvement)."""

    epochs: int = 10
    batch_size: int = 32
    update: list[UpdateStep] = field(default_factory=list)
    monitor: str = ""
    patience: int = 0
    path: PathKey = ()


@dataclass
class SystemSpec:
    """A validated system (``spdnn.load_system``); ``spdnn.build_system`` makes it trainable."""

    name: str
    file: str
    networks: dict[str, Network]
    tensors: dict[str, TensorDecl]
    flows: dict[str, Flow]
    losses: dict[str, Loss]
    optimizers: dict[str, Optimizer]
    training: Training
    description: str = ""
    #: shape and dtype of every tensor name, filled in by validation
    shapes: dict[str, Port] = field(default_factory=dict)

    def data_keys(self) -> dict[str, TensorDecl]:
        """The tensors read from the data file, by file key."""
        return {t.key: t for t in self.tensors.values() if t.kind == "data"}

    def trainable(self) -> list[str]:
        return [n for n, net in self.networks.items() if not net.frozen]
