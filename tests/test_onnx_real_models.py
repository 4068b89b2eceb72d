"""Real CNN architectures exported by torch's own ONNX exporter, imported by spdnn.

The onnx package's "real" test models (ResNet-50, SqueezeNet, ...) are downloaded on demand and
cannot be fetched here, and torchvision has no CPU wheel on these machines, so the architectures
are written out below after torchvision's definitions (ResNet-18, SqueezeNet 1.1, a narrow AlexNet)
and exported with ``torch.onnx.export``: the ONNX graphs come from an exporter spdnn did not write.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from spdnn.backends.torch_exporter import load_weights
from torch import nn

import spdnn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.e1 = nn.Conv2d(squeeze, expand, 1)
        self.e3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        s = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.e1(s)), torch.relu(self.e3(s))], 1)


class SqueezeNet11(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool(), Fire(64, 16, 64), Fire(128, 16, 64), pool(),
            Fire(128, 32, 128), Fire(256, 32, 128), pool(), Fire(256, 48, 192), Fire(384, 48, 192),
            Fire(384, 64, 256), Fire(512, 64, 256))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, classes, 1), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class AlexNetNarrow(nn.Module):
    """torchvision's AlexNet with a quarter of the channels and FC widths."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(16, 48, 5, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, 2), nn.Conv2d(48, 96, 3, padding=1), nn.ReLU(), nn.Conv2d(96, 64, 3, padding=1),
            nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(64 * 6 * 6, 1024), nn.ReLU(), nn.Dropout(),
                                        nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def _randomise_bn(module: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return module.eval()


@pytest.mark.parametrize("cls,size", [(ResNet18, 64), (SqueezeNet11, 96), (AlexNetNarrow, 224)],
                         ids=["resnet18", "squeezenet1_1", "alexnet_narrow"])
@pytest.mark.parametrize("opset", [11, 17])
def test_torch_exported_real_architecture_imports_and_matches(cls, size, opset):
    torch.manual_seed(0)
    reference = _randomise_bn(cls())
    x = torch.randn(2, 3, size, size)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(reference, (x,), buf, dynamo=False, opset_version=opset, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}})
    import onnx

    imported = spdnn.import_onnx(onnx.load_from_string(buf.getvalue()))
    module = load_weights(spdnn.build_torch(imported.graph), imported.weights).eval()
    # (torch's exporter folds eval-mode BatchNorm into the convolutions, so counts differ)
    assert {n.op for n in imported.graph} >= {"conv2d", "relu", "max_pool2d"}
    with torch.no_grad():
        for batch in (1, 3):
            xb = torch.randn(batch, 3, size, size)
            np.testing.assert_allclose(module(xb).numpy(), reference(xb).numpy(), rtol=1e-3, atol=1e-4)
