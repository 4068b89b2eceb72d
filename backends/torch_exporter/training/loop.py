"""The training loop of ``spdnn train``: one network or a system, one process or several.

Rules:
  * Determinism: ``seed`` fixes the initial weights, the validation split, each epoch's
    shuffle (a permutation seeded with (seed, epoch)), the noise generator and torch's global
    generator; deterministic algorithms are requested. Same seed -> same numbers on CPU.
  * An iteration takes one global batch (the last incomplete batch of an epoch is dropped
    unless the split is smaller than a batch) and runs the update order: each listed optimiser
    ``times`` times, each step zeroing gradients, computing its loss, stepping. Noise is drawn
    once per iteration and shared by its steps. Schedules step once per epoch.
  * Files (rank 0 only, each written atomically): ``last.pt`` (full checkpoint, every epoch and
    on Ctrl-C), ``best.pt`` (weights of the best epoch by the monitored loss on the validation
    split, else on the training split), ``metrics.jsonl`` / ``metrics.csv`` (one row per epoch),
    ``loss.png``, and at the end ``<network>.pt`` and ``<network>.onnx`` from ``best.pt``.
  * ``--resume`` restores weights, optimisers, schedules, k_t, generators, the position inside
    the epoch and the partial sums of its metrics, so it ends where an uninterrupted run ends.
  * Ctrl-C (SIGINT) finishes the current step, saves ``last.pt`` and raises KeyboardInterrupt
    (exit 130); a second Ctrl-C stops at once.
  * Under ``torchrun`` (WORLD_SIZE > 1) each rank takes its slice of every global batch and
    gradients are averaged over ranks with an all-reduce before each step (the
    DistributedDataParallel algorithm, done per optimiser because a system's networks take
    part in several losses); gloo on CPU, NCCL on CUDA. Batch norm uses per-rank statistics.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spdnn.compile import write_file_atomically
from spdnn.errors import SpdnnError, first_line
from spdnn.system.spec import SystemSpec

from .checkpoint import (CHECKPOINT_FORMAT, STATE_ERRORS, WEIGHTS_FORMAT, check_progress, load_checkpoint,
                         save_atomically)
from .data import Dataset, load_dataset, split
from .plot import plot_losses
from .runtime import TorchSystem

__all__ = ["TrainOptions", "Trainer", "pick_device"]


@dataclass
class TrainOptions:
    data: str
    out_dir: str
    val: str | None = None
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    amp: bool = False
    progress: bool = True


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when torch sees it, else CPU; ``cuda`` without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpdnnError("--device cuda: torch sees no CUDA device (use --device cpu or auto)")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise SpdnnError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


class _Distributed:
    """Rank and world size under torchrun (1 process otherwise)."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.started = False
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
                self.started = True

    def mean(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return (t / self.world).tolist()

    def any(self, flag: bool) -> bool:
        if self.world == 1:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def close(self) -> None:
        if self.started:
            import torch.distributed as dist

            dist.destroy_process_group()


class Trainer:
    """Train ``spec`` as ``options`` say; ``run()`` returns the summary written to the console."""

    def __init__(self, spec: SystemSpec, options: TrainOptions, say=print):
        self.spec, self.options, self.say = spec, options, say
        self.device = pick_device(options.device)
        self.out = Path(options.out_dir)
        self.training = spec.training
        self.stop_requested = False

    # -- setup -----------------------------------------------------------------------------------
    def _prepare(self) -> None:
        o, t = self.options, self.training
        data = load_dataset(o.data, self.spec)
        if o.val:
            self.train_data, self.val_data = data, load_dataset(o.val, self.spec)
        else:
            self.train_data, self.val_data = split(data, o.val_fraction, o.seed, f"data {o.data}")
        self.dist = _Distributed(self.device)
        if self.dist.world > 1:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            else:
                torch.set_num_threads(1)
            if t.batch_size % self.dist.world:
                raise SpdnnError(f"batch size {t.batch_size} must be divisible by the {self.dist.world} processes")
        if self.dist.rank == 0:
            self._check_out_dir()
        torch.manual_seed(o.seed)
        self.system = TorchSystem(self.spec, seed=o.seed, device=self.device)
        self.optimizers = {n: _make_optimizer(opt, self.system.parameters_of(opt.networks))
                           for n, opt in self.spec.optimizers.items()}
        self.schedulers = {n: _make_scheduler(self.spec.optimizers[n].schedule, opt, t.epochs)
                           for n, opt in self.optimizers.items()}
        self.noise = torch.Generator().manual_seed(o.seed + 1)
        self.epoch, self.step, self.history = 0, 0, []
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.best = {"value": None, "epoch": -1, "bad_epochs": 0}
        if o.resume:
            self._restore(load_checkpoint(self.out / "last.pt"))

    def _check_out_dir(self) -> None:
        if self.options.resume:
            if not (self.out / "last.pt").is_file():
                raise SpdnnError(f"--resume: {self.out} has no last.pt checkpoint to resume from")
            return
        if self.out.exists() and not self.out.is_dir():
            raise SpdnnError(f"run folder {self.out} exists and is not a folder; give a new folder with -o")
        if self.out.exists() and any(self.out.iterdir()):
            raise SpdnnError(f"run folder {self.out} exists and is not empty; give --resume to continue that run "
                             "or a new folder with -o")
        self.out.mkdir(parents=True, exist_ok=True)

    # -- checkpoints -----------------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT, "system": self.spec.name,
            "settings": {"seed": self.options.seed, "batch_size": self.training.batch_size,
                         "world": self.dist.world},
            "epoch": self.epoch, "step": self.step,
            "networks": {n: m.state_dict() for n, m in self.system.networks.items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "balances": {k: b.k for k, b in self.system.balances.items()},
            "rng": {"torch": torch.get_rng_state(), "noise": self.noise.get_state()},
            "sums": dict(self.sums), "counts": dict(self.counts),
            "history": list(self.history), "best": dict(self.best),
        }

    def _restore(self, ckpt: dict) -> None:
        where = self.out / "last.pt"
        check_progress(ckpt, where)
        if ckpt.get("system") != self.spec.name:
            raise SpdnnError(f"--resume: {where} belongs to {ckpt.get('system')!r}, not {self.spec.name!r}")
        settings = ckpt["settings"]
        for key, now in (("seed", self.options.seed), ("batch_size", self.training.batch_size),
                         ("world", self.dist.world)):
            if settings.get(key) != now:
                raise SpdnnError(f"--resume: the run was started with {key} {settings.get(key)}, this command has "
                                 f"{now}; resume with the same settings")
        unknown = sorted(set(ckpt["balances"]) - set(self.system.balances))
        if unknown:
            raise SpdnnError(f"--resume: {where} does not fit this system: balances {unknown} are not in it")
        try:
            for n, m in self.system.networks.items():
                m.load_state_dict(ckpt["networks"][n])
            for n, o in self.optimizers.items():
                o.load_state_dict(ckpt["optimizers"][n])
            for n, s in self.schedulers.items():
                s.load_state_dict(ckpt["schedulers"][n])
            torch.set_rng_state(ckpt["rng"]["torch"])
            self.noise.set_state(ckpt["rng"]["noise"])
        except STATE_ERRORS as e:
            # torch checks shapes and raises one of these for a state of another network or optimiser
            raise SpdnnError(f"--resume: {where} does not fit this system: "
                             f"{first_line(e)}") from None
        for k, value in ckpt["balances"].items():
            self.system.balances[k].k = value
        self.epoch, self.step = ckpt["epoch"], ckpt["step"]
        self.sums, self.counts = dict(ckpt["sums"]), dict(ckpt["counts"])
        self.history, self.best = list(ckpt["history"]), dict(ckpt["best"])

    def _save_last(self) -> None:
        if self.dist.rank == 0:
            save_atomically(self._state(), self.out / "last.pt")

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> dict:
        previous = _install_sigint(self)
        try:
            _deterministic(self.device)
            self._prepare()
            return self._loop()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if getattr(self, "dist", None) is not None:
                self.dist.close()

    def _loop(self) -> dict:
        t = self.training
        n = len(self.train_data)
        size = min(t.batch_size, n)
        steps = n // size
        stopped_early = False
        while self.epoch < t.epochs and not stopped_early:
            self.system.epoch = self.epoch  # scheduled loss weights
            order = np.random.default_rng([self.options.seed, self.epoch]).permutation(n)
            started, samples = time.perf_counter(), 0
            bar = self._bar(steps)
            while self.step < steps:
                if self.dist.any(self.stop_requested):
                    bar.close()
                    self._save_last()
                    self.say(f"interrupted: saved {self.out / 'last.pt'} (epoch {self.epoch + 1}, step {self.step}); "
                             "continue with the same command and --resume")
                    raise KeyboardInterrupt
                rows = order[self.step * size:(self.step + 1) * size]
                self._iteration(rows, size)
                self.step += 1
                samples += size
                bar.update(1)
                bar.set_postfix({k: f"{self.sums[k] / self.counts[k]:.4g}" for k in self.spec.losses if k in self.sums}
                                | {"samples/s": f"{samples / max(1e-9, time.perf_counter() - started):.0f}"})
            bar.close()
            stopped_early = self._end_epoch(samples / max(1e-9, time.perf_counter() - started))
        if self.dist.rank == 0:
            self._export()
        return {"epochs": len(self.history), "best_epoch": self.best["epoch"] + 1, "best": self.best["value"],
                "stopped_early": stopped_early, "history": self.history}

    def _bar(self, steps: int):
        from tqdm import tqdm

        quiet = not self.options.progress or self.dist.rank != 0 or not sys.stderr.isatty()
        return tqdm(total=steps, initial=self.step, disable=quiet, desc=f"epoch {self.epoch + 1}/{self.training.epochs}",
                    unit="batch", leave=False)

    def _iteration(self, rows: np.ndarray, size: int) -> None:
        world, rank = self.dist.world, self.dist.rank
        lo, hi = rank * size // world, (rank + 1) * size // world
        local = rows[lo:hi]
        data = {k: torch.from_numpy(v[local]).to(self.device) for k, v in self.train_data.arrays.items()}
        tensors = self.system.batch(data, self.noise, size, slice(lo, hi))
        for update in self.training.update:
            opt_spec = self.spec.optimizers[update.optimizer]
            optimizer = self.optimizers[update.optimizer]
            params = self.system.parameters_of(opt_spec.networks)
            for _ in range(update.times):
                self.system.networks.zero_grad(set_to_none=True)
                env = self.system.env(tensors, set(opt_spec.networks))
                with torch.autocast(self.device.type, dtype=torch.bfloat16,
                                    enabled=self.options.amp and self.device.type == "cuda"):
                    value = self.system.loss(opt_spec.loss, env)
                value.total.backward()
                self.dist.average_gradients(params)
                optimizer.step()
                names = [opt_spec.loss, *value.parts]
                numbers = self.dist.mean([float(value.total.detach()), *value.parts.values()])
                for name, number in zip(names, numbers, strict=True):
                    self.sums[name] = self.sums.get(name, 0.0) + number
                    self.counts[name] = self.counts.get(name, 0) + 1
                if value.began:  # k_t follows the mean over ranks, so every rank keeps the same k_t
                    reals = self.dist.mean([r for _, r, _ in value.began] + [f for _, _, f in value.began])
                    m = len(value.began)
                    value.began = [(k, reals[i], reals[m + i]) for i, (k, _, _) in enumerate(value.began)]
                    self.system.update_balances(value)

    def _end_epoch(self, samples_per_s: float) -> bool:
        row: dict = {"epoch": self.epoch + 1}
        row |= {f"train/{k}": self.sums[k] / self.counts[k] for k in self.sums}
        if self.val_data is not None:
            row |= {f"val/{k}": v for k, v in self.validate().items()}
        for name, opt in self.optimizers.items():
            row[f"lr/{name}"] = opt.param_groups[0]["lr"]
        row["samples_per_s"] = round(samples_per_s, 1)
        for s in self.schedulers.values():
            s.step()
        monitor = self.training.monitor
        value = row.get(f"val/{monitor}", row.get(f"train/{monitor}"))
        improved = value is not None and math.isfinite(value) and (self.best["value"] is None
                                                                   or value < self.best["value"])
        if improved:
            self.best = {"value": value, "epoch": self.epoch, "bad_epochs": 0}
            if self.dist.rank == 0:
                save_atomically({"format": WEIGHTS_FORMAT, "epoch": self.epoch + 1, "system": self.spec.name,
                                 "networks": {n: m.state_dict() for n, m in self.system.networks.items()}},
                                self.out / "best.pt")
        else:
            self.best["bad_epochs"] += 1
        self.history.append(row)
        self.epoch, self.step, self.sums, self.counts = self.epoch + 1, 0, {}, {}
        self._save_last()
        if self.dist.rank == 0:
            self._write_metrics()
        shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("train/", "val/")) and
                          k.split("/")[1] in self.spec.losses)
        self.say(f"epoch {row['epoch']}/{self.training.epochs}  {shown}  {row['samples_per_s']:.0f} samples/s"
                 + ("  (best)" if improved else ""))
        patience = self.training.patience
        if patience and self.best["bad_epochs"] >= patience:
            self.say(f"early stop: {monitor} has not improved for {patience} epochs (best: epoch "
                     f"{self.best['epoch'] + 1})")
            return True
        return False

    def validate(self) -> dict[str, float]:
        """Every loss on the validation split (eval mode, no gradients, fixed noise)."""
        data = self.val_data
        generator = torch.Generator().manual_seed(self.options.seed + 2)
        size = self.training.batch_size
        totals: dict[str, float] = {}
        self.system.train(False)
        try:
            with torch.no_grad():
                for start in range(0, len(data), size):
                    rows = np.arange(start, min(start + size, len(data)))
                    batch = {k: torch.from_numpy(v[rows]).to(self.device) for k, v in data.arrays.items()}
                    tensors = self.system.batch(batch, generator, len(rows))
                    env = self.system.env(tensors)
                    for name in self.spec.losses:
                        totals[name] = totals.get(name, 0.0) + float(self.system.loss(name, env).total) * len(rows)
        finally:
            self.system.train(True)
        return {k: v / len(data) for k, v in totals.items()}

    # -- files -----------------------------------------------------------------------------------
    def _write_metrics(self) -> None:
        lines = "".join(json.dumps(row) + "\n" for row in self.history)
        write_file_atomically(self.out / "metrics.jsonl", lines.encode())
        columns = list(dict.fromkeys(k for row in self.history for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history)
        write_file_atomically(self.out / "metrics.csv", buffer.getvalue().encode())
        plot_losses(self.history, self.out / "loss.png")

    def _export(self) -> None:
        """``<network>.pt`` (state dict) and ``<network>.onnx`` of every trainable network, with
        the best epoch's weights."""
        from spdnn.backends.onnx_exporter import export_onnx
        from spdnn.backends.torch_exporter import state_dict_bytes

        best = self.out / "best.pt"
        weights = load_checkpoint(best, WEIGHTS_FORMAT)["networks"] if best.is_file() else None
        for name in self.spec.trainable():
            module = self.system.networks[name]
            if weights is not None:
                try:
                    module.load_state_dict(weights[name])
                except STATE_ERRORS as e:
                    raise SpdnnError(f"{best} does not hold the weights of network {name!r} (damaged, or from "
                                     f"another run): {first_line(e)}") from None
            graph = self.spec.networks[name].graph
            stem = graph.name
            write_file_atomically(self.out / f"{stem}.pt", state_dict_bytes(module))
            state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
            write_file_atomically(self.out / f"{stem}.onnx", export_onnx(graph, state).SerializeToString())


def _deterministic(device: torch.device) -> None:
    """CPU kernels of the ops spdnn lowers to are deterministic; on CUDA, ask for deterministic
    algorithms (torch.use_deterministic_algorithms imports the compiler stack, ~8 s, so only there)."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def _make_optimizer(opt, params: list) -> torch.optim.Optimizer:
    if opt.type == "sgd":
        return torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov and opt.momentum > 0,
                               weight_decay=opt.weight_decay)
    if opt.type == "rmsprop":
        return torch.optim.RMSprop(params, lr=opt.lr, alpha=opt.alpha, momentum=opt.momentum,
                                   weight_decay=opt.weight_decay)
    return torch.optim.Adam(params, lr=opt.lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay)


def _make_scheduler(schedule: dict, optimizer: torch.optim.Optimizer, epochs: int):
    kind = schedule.get("type", "constant")
    try:
        if kind == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, int(schedule.get("step_size", 1)),
                                                   float(schedule.get("gamma", 0.1)))
        if kind == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    except (TypeError, ValueError) as e:
        raise SpdnnError(f"schedule {schedule}: {e}") from None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _install_sigint(trainer: Trainer):
    """First Ctrl-C asks the loop to stop after the current step; a second one stops at once."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True

    return signal.signal(signal.SIGINT, handler)
