"""torch backend: IR graph -> trainable ``nn.Module``."""

from .lowerings import BOUNDARY_OPS, LOWERINGS, UNSUPPORTED
from .module import SpdnnModule, build_torch_module, load_weights, state_dict_bytes

__all__ = ["BOUNDARY_OPS", "LOWERINGS", "UNSUPPORTED", "SpdnnModule", "build_torch_module", "load_weights",
           "state_dict_bytes"]
