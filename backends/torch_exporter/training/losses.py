"""Loss functions of the papers, each a small function of tensors (the formulas are in the
docstrings and checked on hand-computed values in tests/test_losses.py).

Every function returns the mean over the batch unless its docstring says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BeganBalance", "SpatialFrequencyLoss", "autoencoder_loss", "bce", "cross_entropy", "info_code_loss",
           "l1", "log_kernel", "mse", "nll", "var_regression_loss"]

_EPS = 1e-7


def mse(input: Tensor, target: Tensor | float) -> Tensor:
    """mean((input - target)^2) over every element."""
    return F.mse_loss(input, torch.as_tensor(target, dtype=input.dtype, device=input.device).expand_as(input))


def l1(input: Tensor, target: Tensor | float) -> Tensor:
    """mean(|input - target|) over every element."""
    return F.l1_loss(input, torch.as_tensor(target, dtype=input.dtype, device=input.device).expand_as(input))


def bce(input: Tensor, target: Tensor | float, source: str = "probabilities") -> Tensor:
    """-mean(t log p + (1 - t) log(1 - p)); ``source="logits"`` takes p = sigmoid(input).
    Probabilities are clamped to [1e-7, 1 - 1e-7] so a saturated sigmoid gives a finite loss."""
    t = torch.as_tensor(target, dtype=input.dtype, device=input.device).expand_as(input)
    if source == "logits":
        return F.binary_cross_entropy_with_logits(input, t)
    return F.binary_cross_entropy(input.clamp(_EPS, 1 - _EPS), t)


def nll(log_probs: Tensor, labels: Tensor) -> Tensor:
    """-mean(log p[label]) for log-probabilities (N, K, ...) and class ids (N, ...)."""
    return F.nll_loss(log_probs, labels.long())


def cross_entropy(scores: Tensor, labels: Tensor, source: str = "logits") -> Tensor:
    """-mean(log softmax(scores)[label]); with ``source="probabilities"`` (a network ending in
    softmax) -mean(log p[label]), p clamped at 1e-7 (seed 000's L_cls = -log p_t)."""
    if source == "probabilities":
        return nll(scores.clamp_min(_EPS).log(), labels)
    return F.cross_entropy(scores, labels.long())


def autoencoder_loss(v: Tensor, recon: Tensor, norm: str = "l1") -> Tensor:
    """BEGAN's L(v) = mean |v - D(v)|^p with p = 1 (``l1``, the authors' code) or 2 (``l2``,
    the thesis's equation)."""
    diff = (v - recon).abs()
    return (diff if norm == "l1" else diff.square()).mean()


@dataclass
class BeganBalance:
    """BEGAN's equilibrium control (thesis Ch. 3, App. F):

    * L_D = L(x) - k_t L(G(z)),
    * k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),
    * convergence M = L(x) + |gamma L(x) - L(G(z))|.
    """

    gamma: float = 0.5
    lambda_k: float = 0.001
    k: float = 0.0

    def d_loss(self, loss_real: Tensor, loss_fake: Tensor) -> Tensor:
        return loss_real - self.k * loss_fake

    def update(self, loss_real: float, loss_fake: float) -> None:
        self.k = min(1.0, max(0.0, self.k + self.lambda_k * (self.gamma * loss_real - loss_fake)))

    def convergence(self, loss_real: float, loss_fake: float) -> float:
        return loss_real + abs(self.gamma * loss_real - loss_fake)


def info_code_loss(predicted: Tensor, code: Tensor) -> Tensor:
    """InfoGAN's code loss with a Gaussian code (seed 002): mean over the batch of
    ||z - Q(...)||_2^2 (summed over the code's dimensions)."""
    return (code - predicted).square().flatten(1).sum(1).mean()


def var_regression_loss(predicted: Tensor, target: Tensor, form: str = "code", eps: float = 1e-8) -> Tensor:
    """VAR+GAN's regression loss on generated samples. ``paper`` (thesis Eq. 3.3):
    mean(-log(1 - (y - R))), with 1 - (y - R) clamped at ``eps`` where the formula is undefined;
    ``code`` (the authors' implementation): mean(log(|y - R| + 1 + eps))."""
    diff = target - predicted
    if form == "paper":
        return -(1 - diff).clamp_min(eps).log().mean()
    return (diff.abs() + 1 + eps).log().mean()


def log_kernel(sigma: float) -> Tensor:
    """Seed 004's normalised Laplacian of Gaussian, sigma^2 nabla^2 g(x, y) =
    -(2 - (x^2 + y^2) / sigma^2) g(x, y), g = exp(-(x^2 + y^2) / (2 sigma^2)) / (2 pi sigma^2),
    on a ceil(8 sigma) square grid made odd (0.8 -> 7, 1.6 -> 13, 3.2 -> 27), centred."""
    size = math.ceil(8 * sigma)
    size += 1 - size % 2
    r = torch.arange(size, dtype=torch.float64) - size // 2
    rr = r[:, None].square() + r[None, :].square()
    g = torch.exp(-rr / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    return (-(2 - rr / sigma**2) * g).float()


class SpatialFrequencyLoss(nn.Module):
    """Seed 004's E_SFL = (1/N) sum_i sum_c w(c) * 1/2 * mean_{x,y} (LoG_c(recon) - LoG_c(orig))^2.

    Band c filters with LoG(sigma_c) and sums over the image channels (Eq. 3 with every
    w(c, c') = LoG(sigma_c)); zero padding keeps H x W. The kernels are fixed buffers.
    ``bands(recon, orig)`` gives each band's unweighted term (the paper's per-band SFL).
    """

    def __init__(self, sigmas: list[float], band_weights: list[float], channels: int):
        super().__init__()
        if len(sigmas) != len(band_weights):
            raise ValueError("one band weight per sigma")
        self.weights = list(band_weights)
        self.channels = channels
        for i, s in enumerate(sigmas):
            self.register_buffer(f"kernel{i}", log_kernel(s)[None, None].repeat(1, channels, 1, 1), persistent=False)

    def bands(self, recon: Tensor, orig: Tensor) -> list[Tensor]:
        out = []
        for i in range(len(self.weights)):
            k = getattr(self, f"kernel{i}").to(recon.dtype)
            pad = k.shape[-1] // 2
            diff = F.conv2d(recon, k, padding=pad) - F.conv2d(orig, k, padding=pad)
            out.append(0.5 * diff.square().mean())
        return out

    def forward(self, recon: Tensor, orig: Tensor) -> Tensor:
        return sum(w * b for w, b in zip(self.weights, self.bands(recon, orig), strict=True))
