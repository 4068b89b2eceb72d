"""The op registry. Importing this package registers every built-in op."""

from spdnn.ops import conv, dense, elementwise, pooling, structure  # noqa: F401  (registers ops)
from spdnn.ops.base import VARIADIC, OpAttrs, OpDef, all_ops, get_op, register_op, suggest

__all__ = ["VARIADIC", "OpAttrs", "OpDef", "all_ops", "get_op", "register_op", "suggest"]
