"""Pass infrastructure: the ``Pass`` contract and the ``PassManager``.

A pass is a frozen dataclass with a kebab-case ``name``; its fields are its options (typed and
validated as :mod:`spdnn.passes.options` says, also when the pass is constructed directly).
``run(graph)`` calls ``requires`` (preconditions), ``call`` (the work, in place) and ``ensures``
(postconditions) and returns a :class:`PassResult` saying whether anything changed. Valid IR in,
valid IR out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from spdnn.errors import PassError, SpdnnError
from spdnn.ir.graph import Graph
from spdnn.passes.options import validate_options

__all__ = ["Pass", "PassResult", "PassManager"]


@dataclass(frozen=True)
class PassResult:
    """What a pass returns: the graph (changed in place) and whether it was modified."""

    graph: Graph
    modified: bool


@dataclass(frozen=True)
class Pass:
    """Base class of every compiler pass."""

    name: ClassVar[str] = "pass"

    def __post_init__(self) -> None:
        """Validate the options (the fields) exactly as a spec's ``passes:`` or ``--pass`` are."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        if values:
            for key, value in validate_options(type(self), self.name, values).items():
                object.__setattr__(self, key, value)

    def requires(self, graph: Graph) -> None:
        """Check preconditions; raise an SpdnnError if they do not hold."""

    def call(self, graph: Graph) -> PassResult:
        """Do the work in place."""
        raise NotImplementedError

    def ensures(self, graph: Graph) -> None:
        """Check postconditions (default: the graph verifies)."""
        graph.verify()

    def run(self, graph: Graph) -> PassResult:
        self.requires(graph)
        result = self.call(graph)
        self.ensures(result.graph)
        return result

    __call__ = run


class PassManager:
    """Runs passes in order.

    Errors that are the user's (``SpdnnError``) propagate unchanged, so spec locations survive;
    any other exception is wrapped in a PassError naming the pass and the passes before it.
    """

    def __init__(self, passes: list[Pass], verify_each: bool = True):
        self.passes = list(passes)
        self.verify_each = verify_each

    def run(self, graph: Graph) -> PassResult:
        modified = False
        done: list[str] = []
        for p in self.passes:
            try:
                result = p.run(graph)
            except SpdnnError:
                raise
            except Exception as e:
                raise PassError(f"pass {p.name!r} failed after {done}: {e}") from e
            graph, modified = result.graph, modified or result.modified
            if self.verify_each:
                graph.verify()
            done.append(p.name)
        return PassResult(graph, modified)
