"""A single network trained on (inputs, targets) as a one-network system.

Data keys: the network's input names (a single-input network also reads ``x``) and ``y`` for
the targets. The loss, unless chosen: ``cross_entropy`` when the output comes from a softmax
(``y`` holds class ids: (N,) for scores (N, K), (N, H, W) for (N, K, H, W)), ``bce`` after a
sigmoid (``y`` floats in [0, 1] of the output's shape), else ``mse``.
"""

from __future__ import annotations

from spdnn.errors import Problem
from spdnn.ir.graph import Graph

from .spec import Flow, Loss, LossTerm, Network, Optimizer, SystemSpec, TensorDecl, Training
from .validate import validate_system

__all__ = ["SUPERVISED_LOSSES", "supervised_system"]

SUPERVISED_LOSSES = ("auto", "cross_entropy", "nll", "bce", "mse", "l1")


def supervised_system(graph: Graph, loss: str = "auto", optimizer: str = "adam", lr: float = 1e-3,
                      momentum: float = 0.0, nesterov: bool = False, epochs: int = 10, batch_size: int = 32,
                      patience: int = 0, input_key: str | None = None) -> SystemSpec:
    """Wrap ``graph`` into a system with one flow, one loss and one optimiser."""
    net = Network("model", graph, "spec")
    inputs = list(net.inputs)
    outputs = net.outputs
    if len(outputs) != 1:
        raise_problem(f"supervised training needs a network with one output; {graph.name!r} has "
                      f"{list(outputs)} (write a system spec for several outputs)", graph)
    keys = {name: (input_key or "x") if len(inputs) == 1 else name for name in inputs}
    tensors = {name: TensorDecl(name, "data", key=key) for name, key in keys.items()}
    tensors["y"] = TensorDecl("y", "data", key="y")
    producer = next(iter(outputs.values())).producer
    if loss == "auto":
        loss = {"softmax": "cross_entropy", "sigmoid": "bce"}.get(producer, "mse")
    term = LossTerm(loss, {"input": "out", "target": "y"}, 1.0, {"from": "auto"} if loss in ("bce", "cross_entropy")
                    else {}, ("--loss",))
    spec = SystemSpec(
        name=graph.name, file=str(graph.meta.get("file", "<spec>")), networks={"model": net}, tensors=tensors,
        flows={"out": Flow("out", "model", {n: n for n in inputs}, ("flows",))},
        losses={"loss": Loss("loss", [term], ("--loss",))},
        optimizers={"opt": Optimizer("opt", optimizer, ["model"], "loss", lr, momentum, nesterov, path=("--lr",))},
        training=Training(epochs, batch_size, [], "loss", patience, ("--epochs",)))
    return validate_system(spec, lambda path, message: Problem(message, spec.file, 0, 0, str(path[0])))


def raise_problem(message: str, graph: Graph) -> None:
    from spdnn.errors import SpecError

    raise SpecError(Problem(message, str(graph.meta.get("file", "<spec>"))))
