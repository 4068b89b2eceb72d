"""Torch modules of the papers' building blocks (spdnn/ops/dynamic.py, wavelet.py,
filter_bank.py, gan.py state their rules)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spdnn.ops.conv import resolve_conv_padding
from spdnn.ops.dynamic import dynamic_formulation
from spdnn.ops.filter_bank import log_kernel

__all__ = ["DynamicConv2d", "SampleConv2d", "HaarPool", "HaarUnpool", "LogFilterBank",
           "MinibatchDiscrimination", "RepeatCode", "Wct", "haar_analysis", "haar_synthesis"]


def _pad_input(x: torch.Tensor, pads: tuple[int, int, int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """(input, the convolution's own padding): symmetric pads go to the convolution (no padded
    copy of x, forward or backward); asymmetric ones ('same' with an even kernel) pad x first."""
    top, bottom, left, right = pads
    if top == bottom and left == right:
        return x, (top, left)
    return F.pad(x, (left, right, top, bottom)), (0, 0)


def per_sample_conv(x: torch.Tensor, filters: torch.Tensor, stride, pads, dilation) -> torch.Tensor:
    """Sample n convolved with filters[n] (N, out, C, kh, kw): ONE grouped conv over the batch
    folded into channels (groups = N; shapes by index, never unpacked, so torch.fx can trace it)."""
    n, out = filters.shape[0], filters.shape[1]
    x, padding = _pad_input(x, pads)
    y = F.conv2d(x.reshape(1, -1, x.shape[2], x.shape[3]), filters.flatten(0, 1),
                 None, stride, padding, dilation, groups=n)
    return y.reshape(n, out, y.shape[2], y.shape[3])


class DynamicConv2d(nn.Module):
    """Per-sample filters Σ_j w_ij b_j from a filter repository, in one of two exact
    formulations (spdnn.ops.dynamic.dynamic_formulation picks one per layer at build time):

    * ``linearity``: one static conv of x with the M base filters, then a per-sample
      (out x M) mixing of the M maps (a batched matmul);
    * ``grouped``: the per-sample filters K = W B (a small batched matmul), then one grouped
      conv over the batch folded into channels.
    """

    FORMULATIONS = ("linearity", "grouped")

    def __init__(self, in_channels: int, out_channels: int, repository_size: int,
                 kernel_size: tuple[int, int], stride, pads: tuple[int, int, int, int], dilation, bias: bool,
                 formulation: str = "linearity"):
        super().__init__()
        if formulation not in self.FORMULATIONS:
            raise ValueError(f"formulation must be one of {self.FORMULATIONS}, got {formulation!r}")
        self.out_channels, self.m, self.formulation = out_channels, repository_size, formulation
        self.stride, self.pads, self.dilation = tuple(stride), tuple(pads), tuple(dilation)
        #: the filter repository: M base filters of shape (C, kh, kw), orthogonally initialised
        self.weight = nn.Parameter(torch.empty(repository_size, in_channels, *kernel_size))
        nn.init.orthogonal_(self.weight)
        self.filter_shape = (in_channels, *kernel_size)  # ints, so torch.fx traces the grouped form
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        # shapes by index, never unpacked, so torch.fx can trace it
        mix = coefficients.reshape(x.shape[0], self.out_channels, self.m)
        y = self._grouped(x, mix) if self.formulation == "grouped" else self._linearity(x, mix)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def _linearity(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        x, padding = _pad_input(x, self.pads)
        maps = F.conv2d(x, self.weight, None, self.stride, padding, self.dilation)
        y = torch.bmm(mix, maps.flatten(2))
        return y.reshape(maps.shape[0], self.out_channels, maps.shape[2], maps.shape[3])

    def _grouped(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        filters = torch.matmul(mix, self.weight.flatten(1))  # (N, out, C*kh*kw)
        filters = filters.unflatten(2, self.filter_shape)  # (N, out, C, kh, kw)
        return per_sample_conv(x, filters, self.stride, self.pads, self.dilation)

    def extra_repr(self) -> str:
        return (f"repository={tuple(self.weight.shape)}, out_channels={self.out_channels}, "
                f"formulation={self.formulation}")


class SampleConv2d(nn.Module):
    """Convolution of sample n with filters[n] (N, out, C, kh, kw): one grouped conv over the
    batch folded into channels (groups = N)."""

    def __init__(self, stride, padding, dilation):
        super().__init__()
        self.stride, self.dilation = tuple(stride), tuple(dilation)
        self.padding = padding  # (top, bottom, left, right), fixed by the static shapes

    def forward(self, x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        return per_sample_conv(x, filters, self.stride, self.padding, self.dilation)


def haar_analysis(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(ll, lh, hl, hh) of each 2x2 block (spdnn/ops/wavelet.py)."""
    a, b = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]
    c, d = x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
    return ((a + b + c + d) * 0.5, (-a + b - c + d) * 0.5, (-a - b + c + d) * 0.5, (a - b - c + d) * 0.5)


def haar_synthesis(ll, lh, hl, hh) -> torch.Tensor:
    """The inverse of :func:`haar_analysis`."""
    a = (ll - lh - hl + hh) * 0.5
    b = (ll + lh - hl - hh) * 0.5
    c = (ll - lh + hl - hh) * 0.5
    d = (ll + lh + hl + hh) * 0.5
    blocks = torch.stack([a, b, c, d], dim=2).flatten(1, 2)  # channel c*4 + (2i + j)
    return F.pixel_shuffle(blocks, 2)


class HaarPool(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return haar_analysis(x)


class HaarUnpool(nn.Module):
    def forward(self, ll, lh, hl, hh) -> torch.Tensor:
        return haar_synthesis(ll, lh, hl, hh)


class LogFilterBank(nn.Module):
    """Depthwise LoG filtering with fixed kernels (buffers ``kernel<s>``, not parameters)."""

    def __init__(self, channels: int, sigmas: tuple[float, ...]):
        super().__init__()
        self.channels, self.sigmas = channels, tuple(sigmas)
        for s, sigma in enumerate(self.sigmas):
            k = torch.tensor(log_kernel(sigma), dtype=torch.float32)
            self.register_buffer(f"kernel{s}", k.expand(channels, 1, *k.shape).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for s in range(len(self.sigmas)):
            k = getattr(self, f"kernel{s}").to(x.dtype)
            outs.append(F.conv2d(x, k, None, 1, k.shape[-1] // 2, 1, self.channels))
        return torch.cat(outs, 1) if len(outs) > 1 else outs[0]

    def extra_repr(self) -> str:
        return f"sigmas={self.sigmas}"


class MinibatchDiscrimination(nn.Module):
    def __init__(self, in_features: int, num_kernels: int, kernel_dim: int):
        super().__init__()
        self.num_kernels, self.kernel_dim = num_kernels, kernel_dim
        self.weight = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.weight).reshape(x.shape[0], self.num_kernels, self.kernel_dim)
        l1 = (m.unsqueeze(1) - m.unsqueeze(0)).abs().sum(3)  # (N, N, B)
        return torch.cat([x, torch.exp(-l1).sum(1)], 1)


class RepeatCode(nn.Module):
    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.size = tuple(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, None, None].expand(-1, -1, *self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def _eig_power(cov: torch.Tensor, power: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov)
    return vectors @ torch.diag_embed(values.clamp_min(1e-12) ** power) @ vectors.transpose(-1, -2)


class Wct(nn.Module):
    """Whitening and colouring (spdnn/ops/gan.py)."""

    def __init__(self, alpha: float, eps: float):
        super().__init__()
        self.alpha, self.eps = alpha, eps

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        c = content.shape[1]
        fc, fs = content.flatten(2), style.flatten(2)
        mc, ms = fc.mean(2, keepdim=True), fs.mean(2, keepdim=True)
        fc0, fs0 = fc - mc, fs - ms
        eye = torch.eye(c, dtype=content.dtype, device=content.device) * self.eps
        cov_c = fc0 @ fc0.transpose(1, 2) / (fc.shape[2] - 1) + eye  # the shape rule needs H*W >= 2
        cov_s = fs0 @ fs0.transpose(1, 2) / (fs.shape[2] - 1) + eye
        transformed = _eig_power(cov_s, 0.5) @ (_eig_power(cov_c, -0.5) @ fc0) + ms
        out = self.alpha * transformed + (1 - self.alpha) * fc
        return out.reshape(content.shape)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, eps={self.eps}"


# ---------------------------------------------------------------- lowerings (node, ins, outs) -> module
def _dynamic_conv2d(node, ins, outs) -> nn.Module:
    a = node.attrs
    c = int(ins[0].shape[1])
    pads = resolve_conv_padding(a, int(ins[0].shape[2]), int(ins[0].shape[3]))
    pixels = int(outs[0].shape[2]) * int(outs[0].shape[3])
    return DynamicConv2d(c, a.out_channels, a.m, a.kernel_size, a.stride, pads, a.dilation, a.bias,
                         dynamic_formulation(a, c, pixels))


def _sample_conv2d(node, ins, outs) -> nn.Module:
    a = node.attrs
    h, w = int(ins[0].shape[2]), int(ins[0].shape[3])
    kh, kw = int(ins[1].shape[3]), int(ins[1].shape[4])
    return SampleConv2d(a.stride, resolve_conv_padding(a, h, w, (kh, kw)), a.dilation)


LOWERINGS = {
    "dynamic_conv2d": _dynamic_conv2d,
    "sample_conv2d": _sample_conv2d,
    "haar_pool": lambda node, ins, outs: HaarPool(),
    "haar_unpool": lambda node, ins, outs: HaarUnpool(),
    "log_filter_bank": lambda node, ins, outs: LogFilterBank(int(ins[0].shape[1]), node.attrs.sigmas),
    "minibatch_discrimination": lambda node, ins, outs: MinibatchDiscrimination(
        int(ins[0].shape[1]), node.attrs.num_kernels, node.attrs.kernel_dim),
    "repeat_code": lambda node, ins, outs: RepeatCode(node.attrs.size),
    "wct": lambda node, ins, outs: Wct(node.attrs.alpha, node.attrs.eps),
}
