"""Backend tables that also see the lowerings given with ``spdnn.register_op``.

A backend keeps its built-in implementations in a dict keyed by op name (``LOWERINGS``,
``EMITTERS``) and the ops it refuses in another (``UNSUPPORTED``: op -> reason). Making those
dicts :class:`LoweringTable` and :class:`UnsupportedTable` lets an op registered with its own
``lowerings`` (see :class:`~spdnn.ops.base.OpDef`) be found by the same lookups, without the
core importing any backend.
"""

from __future__ import annotations

from typing import Any

from spdnn.ops.base import _REGISTRY

__all__ = ["LoweringTable", "UnsupportedTable"]


def _declared(op: object, backend: str) -> tuple[bool, Any]:
    """(declared, implementation) of ``op`` for ``backend`` in the op registry."""
    opdef = _REGISTRY.get(op) if isinstance(op, str) else None
    if opdef is None or backend not in opdef.lowerings:
        return False, None
    return True, opdef.lowerings[backend]


class LoweringTable(dict):
    """Built-in implementations, then the ``backend`` lowering declared by the op itself."""

    def __init__(self, backend: str):
        super().__init__()
        self.backend = backend

    def __missing__(self, op: str) -> Any:
        declared, fn = _declared(op, self.backend)
        if fn is None:
            raise KeyError(op)
        return fn

    def __contains__(self, op: object) -> bool:
        return dict.__contains__(self, op) or _declared(op, self.backend)[1] is not None

    def get(self, op: str, default: Any = None) -> Any:
        return self[op] if op in self else default


class UnsupportedTable(dict):
    """Refused ops with their reasons, plus the ops declared without a ``backend`` lowering
    (``spdnn.register_op(..., onnx=None)``: torch only)."""

    def __init__(self, backend: str):
        super().__init__()
        self.backend = backend

    def _reason(self, op: object) -> str | None:
        declared, fn = _declared(op, self.backend)
        if declared and fn is None:
            return (f"op {op!r} is torch only: it was registered with {self.backend}=None "
                    "(spdnn.register_op), so it has no ONNX form")
        return None

    def __missing__(self, op: str) -> str:
        reason = self._reason(op)
        if reason is None:
            raise KeyError(op)
        return reason

    def __contains__(self, op: object) -> bool:
        return dict.__contains__(self, op) or self._reason(op) is not None

    def get(self, op: str, default: Any = None) -> Any:
        return self[op] if op in self else default
