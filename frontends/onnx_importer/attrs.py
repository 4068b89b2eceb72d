"""The attributes each handler understands, checked before the handler runs.

Rules:
  1. Every attribute of a node must be declared by its op's handler; an undeclared one is an
     error naming the attribute (never silently ignored).
  2. A declared attribute has an ONNX type (``int``, ``ints``, ``float``, ``string`` ...), for
     lists optionally a length, for strings and ints optionally the values the importer supports.
  3. Required attributes must be present.
Handlers receive the values as Python objects, strings decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import onnx
from onnx import AttributeProto, helper

__all__ = ["Attr", "AttributeProblem", "read_attributes"]

_TYPES = {"int": AttributeProto.INT, "ints": AttributeProto.INTS, "float": AttributeProto.FLOAT,
          "floats": AttributeProto.FLOATS, "string": AttributeProto.STRING, "tensor": AttributeProto.TENSOR}


@dataclass(frozen=True)
class Attr:
    """One attribute a handler understands."""

    type: str
    length: int | None = None
    values: tuple | None = None
    required: bool = False

    def describe(self) -> str:
        text = self.type + (f"[{self.length}]" if self.length else "")
        if self.values is not None:
            text += ": " + ", ".join(str(v) for v in self.values)
        return text + (" (required)" if self.required else "")


class AttributeProblem(Exception):
    """An attribute the importer cannot use; the message names it."""


def read_attributes(node: onnx.NodeProto, spec: dict[str, Attr]) -> dict[str, Any]:
    """The node's attributes as Python values, after checking them against ``spec``."""
    values: dict[str, Any] = {}
    for a in node.attribute:
        want = spec.get(a.name)
        if want is None:
            known = ", ".join(sorted(spec)) or "none"
            raise AttributeProblem(f"attribute {a.name!r} is not supported (supported: {known})")
        if a.type != _TYPES[want.type]:
            raise AttributeProblem(f"attribute {a.name!r} is {AttributeProto.AttributeType.Name(a.type)}, "
                                   f"expected {want.type}")
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if want.length is not None and len(value) != want.length:
            raise AttributeProblem(f"attribute {a.name!r} has {len(value)} values, expected {want.length}")
        if want.values is not None and value not in want.values:
            raise AttributeProblem(f"attribute {a.name!r} = {value!r} is not supported (supported: "
                                   f"{', '.join(map(str, want.values))})")
        values[a.name] = list(value) if isinstance(value, list) else value
    missing = [n for n, w in spec.items() if w.required and n not in values]
    if missing:
        raise AttributeProblem(f"attribute {missing[0]!r} is required")
    return values
