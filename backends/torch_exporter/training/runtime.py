"""The torch side of a system spec: its networks, the tensors of a batch, and its losses.

Rules:
  * Networks are built with ``spdnn.build_torch`` (seed + index in the spec); an ONNX network
    gets its trained weights. Frozen networks have ``requires_grad=False`` and stay in eval
    mode, so neither their parameters nor their batch-norm statistics ever change.
  * Noise and random labels are drawn for the *global* batch from one ``torch.Generator`` and
    then sliced (``rows``), so N processes see exactly the numbers one process would.
  * Flows are computed lazily, once per optimiser step. A flow whose network is not being
    updated and whose inputs need no gradient runs under ``no_grad``: the discriminator step of
    a GAN never back-propagates into the generator. Gradients that reach networks of other
    optimisers are discarded (every step starts from zeroed gradients).
  * A BEGAN term updates its k_t after the step of the optimiser minimising its loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from spdnn.system.spec import LossTerm, SystemSpec

from . import losses as L

__all__ = ["Env", "TorchSystem", "LossValue"]


@dataclass
class LossValue:
    """A loss's value (with its graph) and the numbers worth logging (each term, k_t, ...)."""

    total: Tensor
    parts: dict[str, float] = field(default_factory=dict)
    began: list[tuple[str, float, float]] = field(default_factory=list)


class TorchSystem:
    """Networks (``.networks``, a ModuleDict) and losses of a system on one device."""

    def __init__(self, spec: SystemSpec, seed: int = 0, device: str | torch.device = "cpu"):
        import spdnn
        from spdnn.backends.torch_exporter import load_weights

        self.spec = spec
        self.device = torch.device(device)
        self.networks = nn.ModuleDict()
        for i, (name, net) in enumerate(spec.networks.items()):
            module = spdnn.build_torch(net.graph, seed=seed + i)
            if net.graph.meta.get("weights"):
                load_weights(module, net.graph.meta["weights"])
            if net.frozen:
                module.requires_grad_(False)
            self.networks[name] = module
        self.networks.to(self.device)
        self.input_order = {n: [x.name for x in net.graph.input_nodes()] for n, net in spec.networks.items()}
        self.output_order = {n: [x.name for x in net.graph.output_nodes()] for n, net in spec.networks.items()}
        self.epoch = 0  # the training loop sets it; loss weights with a schedule depend on it
        self.balances: dict[str, L.BeganBalance] = {}
        self.sfl: dict[str, L.SpatialFrequencyLoss] = {}
        for loss in spec.losses.values():
            for i, term in enumerate(loss.terms):
                key = f"{loss.name}.{i}"
                if term.type == "began":
                    o = term.options
                    self.balances[key] = L.BeganBalance(o["gamma"], o["lambda_k"], o["k_init"])
                elif term.type == "spatial_frequency":
                    channels = spec.shapes[term.args["input"]].shape[0]
                    self.sfl[key] = L.SpatialFrequencyLoss(term.options["sigmas"], term.options["band_weights"],
                                                           channels).to(self.device)
        self.train(True)

    # -- modes and parameters --------------------------------------------------------------------
    def train(self, mode: bool = True) -> TorchSystem:
        """Train mode for the trainable networks; frozen ones always evaluate."""
        for name, module in self.networks.items():
            module.train(mode and not self.spec.networks[name].frozen)
        return self

    def parameters_of(self, names: list[str]) -> list[nn.Parameter]:
        return [p for n in names for p in self.networks[n].parameters() if p.requires_grad]

    # -- batches ---------------------------------------------------------------------------------
    def batch(self, data: dict[str, Tensor], generator: torch.Generator, global_size: int,
              rows: slice | None = None) -> dict[str, Tensor]:
        """The batch's tensors: data arrays (by tensor name, already this process's rows) plus
        sampled and derived tensors, drawn for ``global_size`` samples and cut to ``rows``."""
        rows = rows or slice(0, global_size)
        out: dict[str, Tensor] = {}
        for t in self.spec.tensors.values():
            if t.kind == "data":
                out[t.name] = data[t.name]
            elif t.kind == "noise":
                shape = (global_size, *t.shape)
                x = (torch.rand(shape, generator=generator) * 2 - 1 if t.dist == "uniform"
                     else torch.randn(shape, generator=generator))
                out[t.name] = x[rows].to(self.device)
            elif t.kind == "labels":
                out[t.name] = torch.randint(0, t.classes, (global_size,), generator=generator)[rows].to(self.device)
            elif t.kind == "partition":
                first = out[t.of[0]][:, 0]
                bins = ((first + 1) / 2 * t.classes).floor().long()
                out[t.name] = bins.clamp(0, t.classes - 1)
            elif t.kind == "one_hot":
                out[t.name] = nn.functional.one_hot(out[t.of[0]].long(), t.classes).float()
            else:
                out[t.name] = torch.cat([out[r] for r in t.of], dim=1)
        return out

    def env(self, tensors: dict[str, Tensor], updating: set[str] = frozenset()) -> Env:
        return Env(self, tensors, set(updating))

    # -- losses ----------------------------------------------------------------------------------
    def loss(self, name: str, env: Env) -> LossValue:
        """The weighted sum of loss ``name``'s terms, with each term's value for logging."""
        total, value = 0.0, LossValue(torch.zeros((), device=self.device))
        for i, term in enumerate(self.spec.losses[name].terms):
            part = self._term(f"{name}.{i}", term, env, value)
            value.parts[f"{name}.{i}.{term.type}"] = float(part.detach())
            total = total + term.weight_at(self.epoch) * part
        value.total = total
        return value

    def compute_losses(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """Every loss of the system on one batch (for use from Python)."""
        env = self.env(tensors, set(self.spec.trainable()))
        return {name: self.loss(name, env).total for name in self.spec.losses}

    def update_balances(self, value: LossValue) -> None:
        for key, real, fake in value.began:
            self.balances[key].update(real, fake)

    def _term(self, key: str, term: LossTerm, env: Env, value: LossValue) -> Tensor:
        a = term.args
        o = term.options
        kind = term.type
        if kind in ("mse", "l1", "bce"):
            target = env[a["target"]] if isinstance(a["target"], str) else float(a["target"])
            if kind == "bce":
                return L.bce(env[a["input"]], target, o["from"])
            return (L.mse if kind == "mse" else L.l1)(env[a["input"]], target)
        if kind == "nll":
            return L.nll(env[a["input"]], env[a["target"]])
        if kind == "cross_entropy":
            return L.cross_entropy(env[a["input"]], env[a["target"]], o["from"])
        if kind == "autoencoder":
            return L.autoencoder_loss(env[a["input"]], env[a["recon"]], o["norm"])
        if kind == "began":
            balance = self.balances[key]
            real = L.autoencoder_loss(env[a["real"]], env[a["real_recon"]], o["norm"])
            fake = L.autoencoder_loss(env[a["fake"]], env[a["fake_recon"]], o["norm"])
            r, f = float(real.detach()), float(fake.detach())
            value.parts[f"{key}.k_t"] = balance.k
            value.parts[f"{key}.convergence"] = balance.convergence(r, f)
            value.began.append((key, r, f))
            return balance.d_loss(real, fake)
        if kind == "info_code":
            return L.info_code_loss(env[a["input"]], env[a["target"]])
        if kind == "var_regression":
            return L.var_regression_loss(env[a["input"]], env[a["target"]], o["form"], o["eps"])
        if kind == "spatial_frequency":
            sfl = self.sfl[key]
            bands = sfl.bands(env[a["input"]], env[a["target"]])
            for sigma_i, b in enumerate(bands):
                value.parts[f"{key}.band{sigma_i}"] = float(b.detach())
            return sum(w * b for w, b in zip(sfl.weights, bands, strict=True))
        if kind == "feature":
            net = self.networks[o["network"]]
            got = net(env[a["input"]])
            with torch.no_grad():
                want = net(env[a["target"]])
            return L.mse(got, want) if o["norm"] == "l2" else L.l1(got, want)
        raise AssertionError(f"unhandled loss type {kind}")  # validation refuses unknown types


class Env:
    """The tensors of one optimiser step: batch tensors plus flow outputs, computed on demand."""

    def __init__(self, system: TorchSystem, tensors: dict[str, Tensor], updating: set[str]):
        self.system = system
        self.values = dict(tensors)
        self.updating = updating

    def __getitem__(self, name: str) -> Tensor:
        if name not in self.values:
            self._run(name.split(".")[0])
        return self.values[name]

    def _run(self, flow_name: str) -> None:
        system = self.system
        flow = system.spec.flows[flow_name]
        inputs = [self[flow.inputs[k]] for k in system.input_order[flow.network]]
        need_grad = flow.network in self.updating or any(x.requires_grad for x in inputs)
        with torch.set_grad_enabled(need_grad and torch.is_grad_enabled()):
            result = system.networks[flow.network](*inputs)
        outs = result if isinstance(result, tuple) else (result,)
        names = system.output_order[flow.network]
        for out, value in zip(names, outs, strict=True):
            self.values[f"{flow_name}.{out}"] = value
        if len(names) == 1:
            self.values[flow_name] = outs[0]
