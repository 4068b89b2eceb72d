"""``spdnn eval``: a trained network's metrics on an .npz file (inputs as for training, targets
``y``).

Tasks (``auto`` picks by the output and the targets):
  * classification: output (K,), integer labels (N,): accuracy and per-class accuracy;
  * segmentation: output (K, H, W) (or (1, H, W) probabilities) and integer masks (N, H, W):
    pixel accuracy and per-class accuracy; for two classes (positive = 1) the thesis's App. D
    Table 1 metrics: accuracy, sensitivity, specificity, precision, NPV, F1, MCC, informedness,
    markedness (a metric whose denominator is 0 is reported as null);
  * regression: float targets of the output's shape: MSE, PSNR (data range ``data_range``) and,
    for images (C, H, W), SSIM (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from spdnn.errors import SpdnnError, first_line
from spdnn.ir.graph import Graph

from .checkpoint import STATE_ERRORS, WEIGHTS_FORMAT, load_checkpoint

__all__ = ["TASKS", "binary_metrics", "evaluate", "load_model", "psnr", "ssim"]

TASKS = ("auto", "classification", "segmentation", "regression")


def load_model(model: str, weights: str | None) -> tuple[Graph, torch.nn.Module]:
    """An ONNX model (with its weights), or a spec plus ``weights`` (a state dict ``.pt``
    written by compile or train, or a train checkpoint ``best.pt`` / ``last.pt``)."""
    import spdnn
    from spdnn.backends.torch_exporter import load_weights
    from spdnn.compile import load_input

    graph = load_input(model)
    module = spdnn.build_torch(graph, seed=0)
    if graph.meta.get("weights"):
        load_weights(module, graph.meta["weights"])
        if weights:
            raise SpdnnError(f"{model} carries its own weights; --weights is for YAML specs")
    elif weights:
        try:
            module.load_state_dict(_state_dict(weights, module))
        except STATE_ERRORS as e:
            raise SpdnnError(f"weights {weights} do not fit the network: {first_line(e)}") from None
    else:
        raise SpdnnError(f"{model} is a spec without weights; give --weights FILE.pt (from spdnn train or compile)")
    module.eval()
    return graph, module


def _state_dict(path: str, module: torch.nn.Module) -> dict:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SpdnnError(f"weights {path}: no such file") from None
    except Exception as e:
        raise SpdnnError(f"weights {path}: cannot be read with weights_only=True: {first_line(e)}") from None
    if isinstance(data, dict) and data.get("format") is not None:
        data = load_checkpoint(path, WEIGHTS_FORMAT if data.get("format") == WEIGHTS_FORMAT else data["format"])
        nets = data.get("networks")
        if not isinstance(nets, dict) or len(nets) != 1:
            held = sorted(map(str, nets)) if isinstance(nets, dict) else type(nets).__name__
            raise SpdnnError(f"weights {path}: holds networks {held}; eval one network's <name>.pt instead")
        data = next(iter(nets.values()))
    keys = set(module.state_dict())
    if not isinstance(data, dict) or set(data) != keys:
        got = sorted(map(str, data))[:5] if isinstance(data, dict) else type(data).__name__
        raise SpdnnError(f"weights {path} do not fit the network: expected keys like {sorted(keys)[:5]}, got {got}")
    return data


def evaluate(model: str, data: str, weights: str | None = None, task: str = "auto", batch_size: int = 64,
             data_range: float = 1.0) -> dict:
    """Metrics of ``model`` on ``data`` (see the module docstring); a JSON-ready dict."""
    from spdnn.system.supervised import supervised_system

    from .data import load_dataset

    graph, module = load_model(model, weights)
    spec = supervised_system(graph, loss=_loss_for(graph, task))
    arrays = load_dataset(data, spec).arrays
    inputs = [arrays[name] for name in spec.flows["out"].inputs.values()]
    outputs = []
    with torch.no_grad():
        for start in range(0, len(arrays["y"]), batch_size):
            outputs.append(module(*[torch.from_numpy(a[start:start + batch_size]) for a in inputs]))
    out = torch.cat(outputs)
    y = torch.from_numpy(arrays["y"])
    task = _task(task, out, y)
    result: dict = {"task": task, "samples": len(y)}
    if task in ("classification", "segmentation"):
        pred = (out[:, 0] > (0.5 if _probabilities(out) else 0.0)).long() if out.shape[1] == 1 else out.argmax(1)
        result["accuracy"] = float((pred == y).double().mean())
        classes = max(2, out.shape[1])
        result["per_class_accuracy"] = {str(c): (float((pred[y == c] == c).double().mean()) if (y == c).any() else None)
                                        for c in range(classes)}
        if task == "segmentation" and classes == 2:
            result |= binary_metrics(pred, y)
    else:
        result["mse"] = float(F.mse_loss(out, y))
        result["psnr"] = psnr(out, y, data_range)
        if out.dim() == 4:
            result["ssim"] = ssim(out, y, data_range)
    return result


def _loss_for(graph: Graph, task: str) -> str:
    if task == "regression":
        return "mse"
    if task in ("classification", "segmentation"):
        out = graph.type_of(graph.inputs_of(graph.output_nodes()[0].name)[0])
        return "cross_entropy" if out.shape[1] > 1 else "bce"
    return "auto"


def _task(task: str, out: torch.Tensor, y: torch.Tensor) -> str:
    if task != "auto":
        return task
    if y.dtype == torch.int64:
        return "segmentation" if out.dim() == 4 else "classification"
    return "regression"


def _probabilities(out: torch.Tensor) -> bool:
    return bool(out.min() >= 0 and out.max() <= 1)


def binary_metrics(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, float | None]:
    """App. D Table 1 metrics from the confusion counts (positive class 1)."""
    p, t = pred.bool(), truth.bool()
    tp, tn = float((p & t).sum()), float((~p & ~t).sum())
    fp, fn = float((p & ~t).sum()), float((~p & t).sum())

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    sens, spec = ratio(tp, tp + fn), ratio(tn, tn + fp)
    prec, npv = ratio(tp, tp + fp), ratio(tn, tn + fn)
    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {
        "accuracy": (tp + tn) / (tp + tn + fp + fn), "sensitivity": sens, "specificity": spec,
        "precision": prec, "npv": npv, "f1": f1, "mcc": ratio(tp * tn - fp * fn, denom),
        "informedness": None if sens is None or spec is None else sens + spec - 1,
        "markedness": None if prec is None or npv is None else prec + npv - 1,
        "confusion": {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)},
    }


def psnr(out: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> float:
    """10 log10(R^2 / MSE) over the whole set; inf when equal."""
    mse = float(F.mse_loss(out.double(), target.double()))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def ssim(out: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM (Wang et al. 2004) over images (N, C, H, W): Gaussian window 11 (at most the
    image size, made odd), sigma 1.5, valid positions only, channels separately."""
    size = min(11, out.shape[-1], out.shape[-2])
    size -= 1 - size % 2
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-r.square() / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None].repeat(out.shape[1], 1, 1, 1)
    x, y = out.double(), target.double()
    c = out.shape[1]

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, window, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx.square(), blur(y * y) - my.square(), blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx.square() + my.square() + c1) * (vx + vy + c2))
    return float(s.mean())
