"""Exceptions raised by spdnn.

Every error a user can cause derives from :class:`SpdnnError`; the CLI prints those as a short
message and exits with code 2. Anything else escaping the CLI is a bug in spdnn.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SpdnnError",
    "Problem",
    "SpecError",
    "UnknownOpError",
    "VerifyError",
    "ShapeError",
    "PassError",
    "ExportError",
    "UnsupportedOpError",
]


class SpdnnError(Exception):
    """Root of every error a user of spdnn can cause."""


def first_line(e: BaseException, chars: int = 200) -> str:
    """The first line of an exception's message (its type name when it has none), at most
    ``chars`` characters: how a library's error is quoted inside an spdnn message."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:chars]


@dataclass(frozen=True)
class Problem:
    """One problem in a spec, located in its file.

    Attributes:
        message: what is wrong and what was expected.
        file: path of the spec file ("<string>" for specs loaded from text).
        line: 1-based line, or 0 when unknown.
        column: 1-based column, or 0 when unknown.
        where: location inside the spec, e.g. ``layers[3].kernel_size``.
    """

    message: str
    file: str = "<spec>"
    line: int = 0
    column: int = 0
    where: str = ""

    def __str__(self) -> str:
        pos = self.file
        if self.line:
            pos += f":{self.line}:{self.column}"
        where = f" {self.where}:" if self.where else ""
        return f"{pos}:{where} {self.message}"


class SpecError(SpdnnError):
    """A spec has one or more problems; all of them are listed in the message."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems: list[Problem] = [problems] if isinstance(problems, Problem) else problems
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in spec"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class UnknownOpError(SpdnnError):
    """An op name is not registered."""

    def __init__(self, op: str, suggestions: list[str]):
        self.op = op
        self.suggestions = suggestions
        hint = f" (did you mean {' or '.join(repr(s) for s in suggestions)}?)" if suggestions else ""
        super().__init__(f"unknown op {op!r}{hint}")


class VerifyError(SpdnnError):
    """The IR graph breaks one of its invariants (see ``Graph.verify``)."""


class ShapeError(SpdnnError):
    """Shapes do not fit together. Raised by shape rules with a message naming the layers."""


class PassError(SpdnnError):
    """A compiler pass failed; the message names the pass and those that ran before it."""


class ExportError(SpdnnError):
    """A backend cannot lower a graph (unsupported op, bad weights, ...)."""


class UnsupportedOpError(SpdnnError):
    """An imported model uses ops (or op variants) spdnn cannot represent; lists every one.

    Attributes:
        entries: (op_type, opset, node name, reason) for every unsupported node.
    """

    def __init__(self, entries: list[tuple[str, int, str, str]], source: str = "model"):
        self.entries = entries
        lines = [f"  {op} (opset {opset}) at node {node!r}" + (f": {why}" if why else "")
                 for op, opset, node, why in entries]
        super().__init__(f"{source}: {len(entries)} unsupported node{'s' if len(entries) != 1 else ''}:\n"
                         + "\n".join(lines))
