"""Training runtime of the torch backend: losses, the torch side of a system, data, the loop
(``spdnn train``), checkpoints and evaluation (``spdnn eval``)."""

from .runtime import Env, LossValue, TorchSystem

__all__ = ["Env", "LossValue", "TorchSystem"]
