"""Systems of networks: several networks, the tensors flowing between them, losses, optimisers
and the update order (data and validation only; the torch runtime is
``spdnn.backends.torch_exporter.training``)."""

from .spec import (LOSS_TYPES, Flow, Loss, LossTerm, Network, Optimizer, Port, SystemSpec, TensorDecl, Training,
                   UpdateStep)
from .validate import validate_system

__all__ = ["LOSS_TYPES", "Flow", "Loss", "LossTerm", "Network", "Optimizer", "Port", "SystemSpec", "TensorDecl",
           "Training", "UpdateStep", "validate_system"]
