"""Shape/lowering/ONNX cases of the papers' building blocks, joined into test_ops.CASES (so the
generic tests check shapes, parameter counts, the torch lowering and onnxruntime parity at
batch 3). Each reference is written independently of the lowering: per-sample loops."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dynamic_reference(m, x, w, **conv):
    """Sample by sample: build k_i = Σ_j w_ij b_j, convolve (the paper's definition)."""
    outs = []
    for n in range(x.shape[0]):
        mix = w[n].reshape(m.out_channels, m.m)
        kernels = torch.einsum("om,mchw->ochw", mix, m.weight)
        outs.append(F.conv2d(x[n:n + 1], kernels, m.bias, **conv))
    return torch.cat(outs)


def sample_reference(m, x, f, **conv):
    return torch.cat([F.conv2d(x[n:n + 1], f[n], None, **conv) for n in range(x.shape[0])])


def haar_reference(m, x):
    """Haar analysis as a stride-2 depthwise conv with the four orthonormal 2x2 filters."""
    lo, hi = torch.tensor([1.0, 1.0]) / 2 ** 0.5, torch.tensor([-1.0, 1.0]) / 2 ** 0.5
    filters = [torch.outer(lo, lo), torch.outer(lo, hi), torch.outer(hi, lo), torch.outer(hi, hi)]
    c = x.shape[1]
    return tuple(F.conv2d(x, f.expand(c, 1, 2, 2), stride=2, groups=c) for f in filters)


def haar_unpool_reference(m, ll, lh, hl, hh):
    """Synthesis as the transposed conv with the same filters, summed over the four bands."""
    lo, hi = torch.tensor([1.0, 1.0]) / 2 ** 0.5, torch.tensor([-1.0, 1.0]) / 2 ** 0.5
    filters = [torch.outer(lo, lo), torch.outer(lo, hi), torch.outer(hi, lo), torch.outer(hi, hi)]
    c = ll.shape[1]
    return sum(F.conv_transpose2d(band, f.expand(c, 1, 2, 2), stride=2, groups=c)
               for band, f in zip((ll, lh, hl, hh), filters))


def log_bank_reference(m, x):
    outs = []
    for s in range(len(m.sigmas)):
        k = getattr(m, f"kernel{s}")
        for c in range(x.shape[1]):
            outs.append(F.conv2d(x[:, c:c + 1], k[c:c + 1], padding=k.shape[-1] // 2))
    return torch.cat(outs, 1)


def minibatch_reference(m, x):
    proj = (x @ m.weight).reshape(x.shape[0], m.num_kernels, m.kernel_dim)
    feats = torch.zeros(x.shape[0], m.num_kernels)
    for i in range(x.shape[0]):
        for j in range(x.shape[0]):
            feats[i] += torch.exp(-(proj[i] - proj[j]).abs().sum(1))
    return torch.cat([x, feats], 1)


CASES = [
    ("dynamic_conv2d", {"out_channels": 4, "kernel_size": 3, "repository_size": 3}, [(2, 7, 7), (12,)],
     lambda m, x, w: dynamic_reference(m, x, w)),
    ("dynamic_conv2d", {"out_channels": 3, "kernel_size": [3, 5], "stride": 2, "padding": "same",
                        "bias": True}, [(2, 8, 9), (3, 3)],
     lambda m, x, w: dynamic_reference(m, F.pad(x, (2, 2, 0, 1)), w, stride=2)),
    ("sample_conv2d", {"padding": 1}, [(2, 6, 6), (4, 2, 3, 3)],
     lambda m, x, f: sample_reference(m, x, f, padding=1)),
    ("sample_conv2d", {"stride": 2, "dilation": 2}, [(3, 9, 8), (2, 3, 2, 3)],
     lambda m, x, f: sample_reference(m, x, f, stride=2, dilation=2)),
    ("haar_pool", {}, [(3, 6, 8)], haar_reference),
    ("haar_unpool", {}, [(2, 3, 4)] * 4, haar_unpool_reference),
    ("log_filter_bank", {"sigmas": [0.8, 1.6]}, [(2, 9, 10)], log_bank_reference),
    ("minibatch_discrimination", {"num_kernels": 5, "kernel_dim": 3}, [(6,)], minibatch_reference),
    ("repeat_code", {"size": [3, 4]}, [(5,)], lambda m, x: x.reshape(*x.shape, 1, 1).repeat(1, 1, 3, 4)),
]

#: ops whose cases live in test_ops_building_blocks.py (no ONNX form, so not in CASES)
TESTED_ELSEWHERE = {"wct"}
