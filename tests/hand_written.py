"""Hand-written torch modules of the shipped specs, written from the papers' tables (not by spdnn).

Attribute names equal the specs' layer names, so ``load_state_dict(spdnn_module.state_dict())``
gives both the same weights. Used by the parity tests (tests/test_specs.py) and by
bench/torch_vs_hand.py. Every ``forward`` is straight-line code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_same(cin: int, cout: int, k: int, bias: bool = False) -> nn.Conv2d:
    """A stride-1 'same' convolution with an odd kernel."""
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)


class Baseline(nn.Module):
    """dynamic_filters/mnist_baseline: seed 000 Table 4."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 5, 5), nn.Conv2d(5, 5, 5)
        self.fc = nn.Linear(80, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


class Generator(nn.Module):
    """vacgan_mnist/generator (thesis App. H Table 1) in the authors' Lasagne order: batch_norm(layer)
    drops the layer bias and normalises (eps 1e-4) before the nonlinearity."""

    def __init__(self):
        super().__init__()
        self.hidden1, self.bn1 = nn.Linear(10, 1024, bias=False), nn.BatchNorm1d(1024, eps=1e-4)
        self.hidden2, self.bn2 = nn.Linear(1024, 6272, bias=False), nn.BatchNorm1d(6272, eps=1e-4)
        self.hidden3 = nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64, eps=1e-4)
        self.out = nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1)

    def forward(self, z):
        x = torch.relu(self.bn2(self.hidden2(torch.relu(self.bn1(self.hidden1(z))))))
        x = torch.relu(self.bn3(self.hidden3(x.reshape(-1, 128, 7, 7))))
        return torch.sigmoid(self.out(x))


class Discriminator(nn.Module):
    """vacgan_mnist/discriminator (thesis App. H Table 2), Lasagne order: batch_norm(layer) around
    both convs and the Dense 1024 layer."""

    def __init__(self):
        super().__init__()
        self.hidden1 = nn.Conv2d(1, 64, 5, 2, 2, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-4)
        self.hidden2 = nn.Conv2d(64, 128, 5, 2, 2, bias=False)
        self.bn2 = nn.BatchNorm2d(128, eps=1e-4)
        self.hidden3, self.bn3 = nn.Linear(6272, 1024, bias=False), nn.BatchNorm1d(1024, eps=1e-4)
        self.out = nn.Linear(1024, 1)

    def forward(self, x):
        lrelu = nn.functional.leaky_relu
        x = lrelu(self.bn2(self.hidden2(lrelu(self.bn1(self.hidden1(x)), 0.2))), 0.2)
        return torch.sigmoid(self.out(lrelu(self.bn3(self.hidden3(x.flatten(1))), 0.2)))


class Classifier(nn.Module):
    """vacgan_mnist/classifier: thesis App. H Table 3."""

    def __init__(self):
        super().__init__()
        self.hidden1, self.hidden2 = nn.Conv2d(1, 16, 3), nn.Conv2d(16, 8, 3)
        self.hidden3, self.out = nn.Linear(200, 1024), nn.Linear(1024, 10)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.hidden1(x)), 2)
        x = F.max_pool2d(torch.relu(self.hidden2(x)), 2)
        return torch.softmax(self.out(torch.relu(self.hidden3(x.flatten(1)))), 1)


class Net3Growing(nn.Module):
    """iris_appa/net3_growing: App. A parent with kernels 3, 5, 7, 9 and an 11x11 output conv."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = conv_same(1, 16, 3), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = conv_same(16, 16, 5), nn.BatchNorm2d(16)
        self.conv3, self.bn3 = conv_same(16, 16, 7), nn.BatchNorm2d(16)
        self.conv4, self.bn4 = conv_same(16, 16, 9), nn.BatchNorm2d(16)
        self.conv5 = conv_same(16, 1, 11, bias=True)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        x = torch.relu(self.bn4(self.conv4(x)))
        return torch.sigmoid(self.conv5(x))


class IrisP1(nn.Module):
    """iris/p1: App. D parent, kernels 3, 5, 7, 9, 7, 5 (no bias, BN, ReLU), 3x3 output conv."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = conv_same(1, 16, 3), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = conv_same(16, 16, 5), nn.BatchNorm2d(16)
        self.conv3, self.bn3 = conv_same(16, 16, 7), nn.BatchNorm2d(16)
        self.conv4, self.bn4 = conv_same(16, 16, 9), nn.BatchNorm2d(16)
        self.conv5, self.bn5 = conv_same(16, 16, 7), nn.BatchNorm2d(16)
        self.conv6, self.bn6 = conv_same(16, 16, 5), nn.BatchNorm2d(16)
        self.conv7 = conv_same(16, 1, 3, bias=True)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        x = torch.relu(self.bn4(self.conv4(x)))
        x = torch.relu(self.bn5(self.conv5(x)))
        x = torch.relu(self.bn6(self.conv6(x)))
        return torch.sigmoid(self.conv7(x))


class DepthNet1(nn.Module):
    """depth/net1: App. B, six 3x3 'same' convs of width 8 (BN + ReLU after the first five)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = conv_same(2, 8, 3, bias=True), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = conv_same(8, 8, 3, bias=True), nn.BatchNorm2d(8)
        self.conv3, self.bn3 = conv_same(8, 8, 3, bias=True), nn.BatchNorm2d(8)
        self.conv4, self.bn4 = conv_same(8, 8, 3, bias=True), nn.BatchNorm2d(8)
        self.conv5, self.bn5 = conv_same(8, 8, 3, bias=True), nn.BatchNorm2d(8)
        self.conv6 = conv_same(8, 1, 3, bias=True)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        x = torch.relu(self.bn4(self.conv4(x)))
        x = torch.relu(self.bn5(self.conv5(x)))
        return torch.sigmoid(self.conv6(x))


class DepthNet6(nn.Module):
    """depth/net6: App. B, conv left side with one 2x2 max pool, FC right side with dropout."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = conv_same(2, 8, 3, bias=True), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = conv_same(8, 8, 3, bias=True), nn.BatchNorm2d(8)
        self.conv3, self.bn3 = conv_same(8, 8, 3, bias=True), nn.BatchNorm2d(8)
        self.conv4, self.bn4 = conv_same(8, 4, 3, bias=True), nn.BatchNorm2d(4)  # 4 channels: 21,120 features
        self.fc5, self.drop5 = nn.Linear(4 * 40 * 132, 30), nn.Dropout(0.5)
        self.fc6 = nn.Linear(30, 80 * 264)

    def forward(self, x):
        x = F.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        x = torch.relu(self.bn4(self.conv4(x)))
        x = self.drop5(torch.relu(self.fc5(x.flatten(1))))
        return torch.sigmoid(self.fc6(x)).reshape(-1, 1, 80, 264)


class MergedIris(nn.Module):
    """The SPDNN merge of iris/p1..p4 (``spdnn.merge_networks``): shared down path c3..c13, p4's
    15x15 and 13x13 convs, then up convs fed by concatenations with the down path (skip links)."""

    def __init__(self):
        super().__init__()
        self.c3_d1, self.c3_d1_batch_norm = conv_same(1, 16, 3), nn.BatchNorm2d(16)
        self.c5_d2, self.c5_d2_batch_norm = conv_same(16, 16, 5), nn.BatchNorm2d(16)
        self.c7_d3, self.c7_d3_batch_norm = conv_same(16, 16, 7), nn.BatchNorm2d(16)
        self.c9_d4, self.c9_d4_batch_norm = conv_same(16, 16, 9), nn.BatchNorm2d(16)
        self.c11_d5, self.c11_d5_batch_norm = conv_same(16, 16, 11), nn.BatchNorm2d(16)
        self.c13_d6, self.c13_d6_batch_norm = conv_same(16, 16, 13), nn.BatchNorm2d(16)
        self.iris_p4__conv7, self.iris_p4__conv7_batch_norm = conv_same(16, 16, 15), nn.BatchNorm2d(16)
        self.iris_p4__conv8, self.iris_p4__conv8_batch_norm = conv_same(16, 16, 13), nn.BatchNorm2d(16)
        self.c11_o5, self.c11_o5_batch_norm = conv_same(32, 16, 11), nn.BatchNorm2d(16)
        self.c9_o4, self.c9_o4_batch_norm = conv_same(32, 16, 9), nn.BatchNorm2d(16)
        self.c7_o3, self.c7_o3_batch_norm = conv_same(32, 16, 7), nn.BatchNorm2d(16)
        self.c5_o2, self.c5_o2_batch_norm = conv_same(16, 16, 5), nn.BatchNorm2d(16)
        self.c3_o1 = conv_same(16, 1, 3, bias=True)

    def forward(self, x):
        d1 = torch.relu(self.c3_d1_batch_norm(self.c3_d1(x)))
        d2 = torch.relu(self.c5_d2_batch_norm(self.c5_d2(d1)))
        d3 = torch.relu(self.c7_d3_batch_norm(self.c7_d3(d2)))
        d4 = torch.relu(self.c9_d4_batch_norm(self.c9_d4(d3)))
        d5 = torch.relu(self.c11_d5_batch_norm(self.c11_d5(d4)))
        d6 = torch.relu(self.c13_d6_batch_norm(self.c13_d6(d5)))
        p7 = torch.relu(self.iris_p4__conv7_batch_norm(self.iris_p4__conv7(d6)))
        p8 = torch.relu(self.iris_p4__conv8_batch_norm(self.iris_p4__conv8(p7)))
        o5 = torch.relu(self.c11_o5_batch_norm(self.c11_o5(torch.cat([d6, p8], 1))))
        o4 = torch.relu(self.c9_o4_batch_norm(self.c9_o4(torch.cat([d5, o5], 1))))
        o3 = torch.relu(self.c7_o3_batch_norm(self.c7_o3(torch.cat([d4, o4], 1))))
        o2 = torch.relu(self.c5_o2_batch_norm(self.c5_o2(o3)))
        return torch.sigmoid(self.c3_o1(o2))
