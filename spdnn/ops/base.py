"""Op definitions: attributes, ports, shape rule, parameter and FLOP counts.

An op is defined once, here in the core, by an :class:`OpDef`. Backends map op names to their
own implementations. ``register_op`` refuses a second definition of the same name, and
``get_op`` suggests close names for a typo.

Conventions of the rules every op supplies:

* ``infer(attrs, in_types) -> list[TensorType]`` returns one type per output port and raises
  :class:`~spdnn.errors.ShapeError` (message without layer names; the caller adds them).
* ``params(attrs, in_types) -> int`` counts trainable parameters.
* ``flops(attrs, in_types, out_types) -> int`` counts floating point operations for one sample:
  a multiply-accumulate is 2 FLOPs; elementwise ops cost one per output element; data movement
  (reshape, concat, pad, pooling indices) is free.
"""

from __future__ import annotations

import difflib
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    NonNegativeInt,
    ValidationInfo,
    field_validator,
    PositiveInt,
    WithJsonSchema,
)

from spdnn.errors import ShapeError, UnknownOpError
from spdnn.ir.types import TensorType

__all__ = [
    "OpAttrs",
    "OpDef",
    "Pair",
    "NonNegPair",
    "register_op",
    "get_op",
    "all_ops",
    "VARIADIC",
    "suggest",
    "require_rank",
    "no_flops",
    "same_shape",
    "NoOpAttrs",
]

#: Marker for ``OpDef.inputs``: the op takes one or more inputs (concat, add).
VARIADIC = "*"


def _to_pair(value: Any) -> Any:
    if isinstance(value, bool):
        return value  # let pydantic reject it
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _pair_schema(minimum: int) -> WithJsonSchema:
    item = {"type": "integer", "minimum": minimum}
    return WithJsonSchema(
        {"anyOf": [item, {"type": "array", "items": item, "minItems": 2, "maxItems": 2}]}
    )


Pair = Annotated[tuple[PositiveInt, PositiveInt], BeforeValidator(_to_pair), _pair_schema(1)]
"""An (h, w) pair of positive ints; a single int n means (n, n)."""

NonNegPair = Annotated[
    tuple[NonNegativeInt, NonNegativeInt], BeforeValidator(_to_pair), _pair_schema(0)
]
"""An (h, w) pair of non-negative ints; a single int n means (n, n)."""


class OpAttrs(BaseModel):
    """Base of every op's attribute model: frozen, unknown keys rejected, strict-ish types.

    Each attribute carries a docstring (the line under it): it becomes the attribute's
    description in ``spdnn schema`` (editor hover) and the docs."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, use_attribute_docstrings=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        """No booleans where a number is expected (``out_channels: true``) and no NaN or
        infinity anywhere (also not spelled as text: ``"nan"``)."""
        kinds = _FIELD_KINDS.get((cls, info.field_name))
        if kinds is None:
            kinds = _FIELD_KINDS[(cls, info.field_name)] = _scalar_kinds(cls.model_fields[info.field_name].annotation)
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, bool) and bool not in kinds:
                raise ValueError("expected a number, not a boolean")
            number = _as_number(item) if isinstance(item, str) and str not in kinds else item
            if isinstance(number, float) and not math.isfinite(number):
                raise ValueError("expected a finite number, not NaN or infinity")
        return value


#: (attrs model, field) -> the scalar types its annotation accepts (computed once per field)
_FIELD_KINDS: dict[tuple[type, str], set[type]] = {}


def _as_number(text: str) -> float | None:
    """The number a string spells (YAML 1.1 reads ``1e-5`` as a string), else None."""
    try:
        return float(text)
    except ValueError:
        return None


def _scalar_kinds(annotation: Any) -> set[type]:
    """The scalar types an attribute annotation accepts: ``bool``, ``str`` (also for
    ``Literal["same"]``), numbers; nested tuples, unions and Annotated are looked into."""
    if annotation in (bool, str, int, float):
        return {annotation}
    if typing.get_origin(annotation) is typing.Literal:
        return {type(a) for a in typing.get_args(annotation)}
    found: set[type] = set()
    for arg in typing.get_args(annotation):
        found |= _scalar_kinds(arg)
    return found


InferFn = Callable[[Any, list[TensorType]], list[TensorType]]
ParamsFn = Callable[[Any, list[TensorType]], int]
FlopsFn = Callable[[Any, list[TensorType], list[TensorType]], int]


def _no_params(attrs: Any, in_types: list[TensorType]) -> int:
    return 0


def no_flops(attrs: Any, in_types: list[TensorType], out: list[TensorType]) -> int:
    """FLOP rule of pure data movement (reshape, concat, pad, ...)."""
    return 0


def _elementwise_flops(attrs: Any, in_types: list[TensorType], out: list[TensorType]) -> int:
    return out[0].sample_numel if out else 0


@dataclass(frozen=True)
class OpDef:
    """Definition of one op.

    Attributes:
        name: stable snake_case name used in specs and the IR.
        attrs: pydantic model of the op's attributes.
        inputs: names of the input ports, or ``(VARIADIC,)`` for one-or-more inputs.
        outputs: names of the output ports; ``num_outputs`` may narrow it per attribute set.
        infer: shape rule.
        params: trainable-parameter count.
        flops: FLOP count per sample.
        doc: one line shown by ``spdnn schema`` and in error hints.
        optional_inputs: how many trailing entries of ``inputs`` may be left unconnected.
        active_outputs: attrs -> number of output ports actually produced (default: all).
        lowerings: backend implementations given with the definition (ops registered through
            the public ``spdnn.register_op``): ``"torch"`` -> ``(node, in_types, out_types) ->
            nn.Module``, ``"onnx"`` -> an emitter ``(Emit) -> None`` or None for a declared
            torch-only op. Built-in ops leave it empty; the backends' tables hold theirs.
    """

    name: str
    attrs: type[OpAttrs]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    infer: InferFn
    params: ParamsFn = _no_params
    flops: FlopsFn = _elementwise_flops
    doc: str = ""
    optional_inputs: int = 0
    active_outputs: Callable[[Any], int] | None = field(default=None)
    lowerings: Mapping[str, Callable[..., Any] | None] = field(default_factory=dict)

    @property
    def is_variadic(self) -> bool:
        return self.inputs == (VARIADIC,)

    def num_outputs(self, attrs: Any) -> int:
        """Number of output ports produced for this attribute set."""
        return self.active_outputs(attrs) if self.active_outputs else len(self.outputs)

    def input_arity(self) -> tuple[int, int | None]:
        """(minimum, maximum) number of inputs; maximum None means unbounded."""
        if self.is_variadic:
            return 1, None
        return len(self.inputs) - self.optional_inputs, len(self.inputs)

    def port_index(self, port: str | int, attrs: Any = None) -> int:
        """Resolve an output port given by name or index; raise KeyError if it does not exist."""
        n = self.num_outputs(attrs) if attrs is not None else len(self.outputs)
        if isinstance(port, int):
            if 0 <= port < n:
                return port
            raise KeyError(port)
        names = self.outputs[:n]
        if port in names:
            return names.index(port)
        raise KeyError(port)


_REGISTRY: dict[str, OpDef] = {}


class NoOpAttrs(OpAttrs):
    """An op without attributes."""


def same_shape(attrs: Any, in_types: list[TensorType]) -> list[TensorType]:
    """Shape rule of an elementwise op: one output of its first input's type."""
    return [in_types[0]]


_MISSING: Any = object()


def register_op(opdef: OpDef | str, /, *, torch: Callable[..., Any] | None = None,
                onnx: Callable[..., Any] | None = _MISSING, **fields: Any) -> OpDef:
    """Register an op; a second definition of the same name is an error.

    Either an :class:`OpDef` (built-in ops), or, as ``spdnn.register_op``, a name and the
    definition's fields as keywords, with its lowerings::

        spdnn.register_op("swish", inputs=("x",), outputs=("y",), infer=same_shape,
                          flops=..., doc="x * sigmoid(x)",
                          torch=lambda node, in_types, out_types: Swish(),
                          onnx=emit_swish)        # or onnx=None: torch only

    ``attrs`` defaults to no attributes, ``params`` to none, ``flops`` to one per output
    element. ``torch`` is required; ``onnx`` must be given, None declaring the op torch only
    (exporting it to ONNX is then an ExportError naming the op).
    """
    if isinstance(opdef, str):
        if not callable(torch):
            raise ValueError(f"register_op({opdef!r}): give torch=, a function (node, in_types, "
                             "out_types) -> torch.nn.Module")
        if onnx is _MISSING or (onnx is not None and not callable(onnx)):
            raise ValueError(f"register_op({opdef!r}): give onnx=, an emitter function, or onnx=None "
                             "to declare the op torch only")
        fields.setdefault("attrs", NoOpAttrs)
        opdef = OpDef(opdef, lowerings={"torch": torch, "onnx": onnx}, **fields)
    elif torch is not None or onnx is not _MISSING or fields:
        raise ValueError("register_op(OpDef) takes no other arguments; put them in the OpDef")
    if not isinstance(opdef.name, str) or not opdef.name.isidentifier():
        raise ValueError(f"op name {opdef.name!r} must be a snake_case identifier")
    if opdef.name in _REGISTRY:
        raise ValueError(f"op {opdef.name!r} is already registered")
    _REGISTRY[opdef.name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    """Look up an op by name.

    Raises:
        UnknownOpError: with up to three close matches as suggestions.
    """
    if name not in _REGISTRY:
        _load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownOpError(name, suggest(name, _REGISTRY)) from None


def all_ops() -> dict[str, OpDef]:
    """All registered ops, by name (a copy), installed plugins' included."""
    _load_plugins()
    return dict(_REGISTRY)


def _load_plugins() -> None:
    from spdnn.plugins import load_plugins

    load_plugins()


def suggest(word: str, choices: Sequence[str] | dict[str, Any], n: int = 3) -> list[str]:
    """Close matches of ``word`` among ``choices``, best first."""
    return difflib.get_close_matches(str(word), list(choices), n=n, cutoff=0.6)


def require_rank(in_type: TensorType, rank: int | tuple[int, ...], what: str) -> None:
    """Raise ShapeError unless ``in_type`` has the given rank(s)."""
    ranks = (rank,) if isinstance(rank, int) else rank
    if in_type.rank not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        raise ShapeError(f"{what} expects a {want} input, got {in_type.rank}-D {in_type}")
