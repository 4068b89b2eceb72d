"""torch backend: IR graph -> trainable ``torch.fx.GraphModule`` (generated code)."""

from .lowerings import BOUNDARY_OPS, LOWERINGS, UNSUPPORTED
from .module import (
    InputShapeError,
    SpdnnModule,
    build_torch_module,
    check_input,
    load_weights,
    read_state_dict,
    state_dict_bytes,
)

__all__ = ["BOUNDARY_OPS", "LOWERINGS", "UNSUPPORTED", "InputShapeError", "SpdnnModule", "build_torch_module",
           "check_input", "load_weights", "read_state_dict", "state_dict_bytes"]
