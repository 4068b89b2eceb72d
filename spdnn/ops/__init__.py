"""The op registry. Importing this package registers every built-in op."""

from spdnn.ops import conv, crop, dense, dynamic, elementwise, filter_bank, gan, pooling, structure, wavelet  # noqa: F401
from spdnn.ops.base import VARIADIC, OpAttrs, OpDef, all_ops, get_op, register_op, suggest

__all__ = ["VARIADIC", "OpAttrs", "OpDef", "all_ops", "get_op", "markdown_table", "register_op", "suggest"]


def markdown_table() -> str:
    """The table of every registered op with its attributes (README's op list is this text;
    regenerate it with ``python -c "import spdnn.ops; print(spdnn.ops.markdown_table())"``)."""
    rows = ["| op | what it does | attributes |", "|---|---|---|"]
    for name, op in sorted(all_ops().items()):
        attrs = ", ".join(f"`{a}`" for a in op.attrs.model_fields)
        rows.append(f"| `{name}` | {op.doc} | {attrs} |")
    return "\n".join(rows) + "\n"
