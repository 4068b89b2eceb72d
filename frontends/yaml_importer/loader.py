"""Safe YAML loading that remembers where every value was written.

Rules:
  1. Only regular files are read (no directories, FIFOs, devices or /proc, /sys, /dev files);
     a file over ``limits.spec_bytes`` is refused before reading, and at most that many bytes
     plus one are ever read. Text must be UTF-8.
  2. The text is parsed once, as a stream of events (libyaml's C parser when installed, else
     PyYAML's pure-Python one), and the data is built from the events without recursion:
     nesting deeper than ``spec_depth`` and more than ``spec_values`` values are refused as
     soon as they are seen.
  3. Anchors and aliases are refused (no "billion laughs"), as are duplicate keys, non-string
     keys and more than one document.
  4. Only plain data: the safe loader's scalars, lists and mappings; integers of at most
     ``int_digits`` digits.
  5. The document must be a mapping.
Every refusal is a SpecError with file, line and column.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spdnn.errors import Problem, SpecError, first_line
from spdnn.limits import current, human_bytes, limit_message

__all__ = ["Located", "load_yaml", "read_spec_file", "format_path", "PARSER"]

PathKey = tuple[str | int, ...]
_PLAIN_TAGS = (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_Loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
#: Which YAML parser specs are read with ("libyaml" or "pure-python").
PARSER = "libyaml" if _Loader is not yaml.SafeLoader else "pure-python"
_SPECIAL_DIRS = ("/proc/", "/sys/", "/dev/")


@dataclass
class Located:
    """Parsed YAML data plus the position of every value and mapping key.

    ``pos[path]`` is the (line, column) of the value at ``path``; ``key_pos[path]`` that of
    the key introducing it. Lines and columns are 1-based.
    """

    data: Any
    file: str
    pos: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_pos: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def problem(self, path: PathKey, message: str, at_key: bool = False, where: str | None = None) -> Problem:
        """A Problem located at ``path`` (its key when ``at_key``), walking up to the nearest
        recorded ancestor when ``path`` itself was not written in the file."""
        table = self.key_pos if at_key else self.pos
        p = tuple(path)
        while p and p not in table and p not in self.pos:
            p = p[:-1]
        line, col = table.get(p) or self.pos.get(p, (0, 0))
        return Problem(message, self.file, line, col, format_path(path) if where is None else where)


def format_path(path: PathKey) -> str:
    """``("layers", 3, "kernel_size")`` -> ``layers[3].kernel_size``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_spec_file(path: str | Path) -> tuple[str, str]:
    """Read a spec file as text, refusing what cannot be a spec. Returns (text, display name)."""
    name = str(path)
    limit = current().spec_bytes
    if "\0" in name:
        raise SpecError(Problem("a file name cannot contain a NUL byte", name.replace("\0", "\\0")))
    real = os.path.realpath(path)
    if real.startswith(_SPECIAL_DIRS):
        raise SpecError(Problem(f"is a system file ({real}), expected a YAML spec file", name))
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except FileNotFoundError:
        raise SpecError(Problem("no such file", name)) from None
    except IsADirectoryError:
        raise SpecError(Problem("is a directory, expected a YAML spec file", name)) from None
    except OSError as e:
        raise SpecError(Problem(f"cannot open: {e.strerror or e}", name)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(Problem("is a directory, expected a YAML spec file", name))
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(Problem("is not a regular file (a FIFO, device or socket); "
                                    "expected a YAML spec file", name))
        if info.st_size > limit:
            raise SpecError(Problem(limit_message(
                f"file is {info.st_size:,} bytes ({human_bytes(info.st_size)})", "spec_bytes"), name))
        raw = _read_at_most(fd, limit + 1)
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise SpecError(Problem(limit_message(f"file is over {limit:,} bytes", "spec_bytes"), name))
    return decode(raw, name), name


def _read_at_most(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def decode(raw: bytes, name: str) -> str:
    """Decode spec bytes as UTF-8, refusing binary data."""
    if b"\x00" in raw:
        raise SpecError(Problem("is a binary file (NUL bytes), expected YAML text", name))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(Problem(f"is not UTF-8 text (byte 0x{raw[e.start]:02x})", name, line, 1)) from None


def load_yaml(text: str, file: str = "<string>") -> Located:
    """Parse one YAML mapping document safely, recording positions."""
    limit = current().spec_bytes
    if len(text) > limit or len(text.encode("utf-8")) > limit:
        raise SpecError(Problem(limit_message("spec text is too long", "spec_bytes"), file))
    loader = _Loader(text)
    try:
        return _Builder(loader, file).document()
    except yaml.MarkedYAMLError as e:
        raise SpecError(_yaml_problem(e, file)) from None
    except yaml.reader.ReaderError as e:
        before = text[: e.position]
        line, col = before.count("\n") + 1, e.position - before.rfind("\n")
        code = e.character if isinstance(e.character, int) else ord(e.character)
        raise SpecError(Problem(f"invalid YAML: the control character U+{code:04X} is not allowed in "
                                "YAML text", file, line, col)) from None
    except yaml.YAMLError as e:
        raise SpecError(Problem(f"invalid YAML: {e}", file)) from None
    finally:
        loader.dispose()


def _yaml_problem(e: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    msg = f"invalid YAML: {e.problem or e.context}"
    if e.context and e.problem:
        msg += f" ({e.context})"
    if "'\\t'" in msg:
        msg += ("; YAML 1.2 allows a tab here but PyYAML's pure-Python parser (YAML 1.1), used "
                "because libyaml is not installed, does not: indent and separate with spaces")
    return Problem(msg, file, line, col)


def _at(event: Any) -> tuple[int, int]:
    m = event.start_mark
    return (m.line + 1, m.column + 1) if m is not None else (0, 0)


class _Frame:
    """An open mapping or sequence while its events are read."""

    __slots__ = ("path", "value", "key", "key_at")

    def __init__(self, path: PathKey, value: dict | list):
        self.path, self.value = path, value
        self.key: str | None = None
        self.key_at = (0, 0)


class _Builder:
    """Builds plain data from parser events with an explicit stack (no recursion)."""

    def __init__(self, loader: Any, file: str):
        self.loader, self.out, self.count = loader, Located(None, file), 0
        self.limits = current()

    def fail(self, message: str, at: tuple[int, int], path: PathKey = ()) -> SpecError:
        return SpecError(Problem(message, self.out.file, at[0], at[1], format_path(path)))

    def document(self) -> Located:
        ev = self.loader.get_event()  # StreamStart
        ev = self.loader.get_event()
        if isinstance(ev, yaml.StreamEndEvent):
            raise self.fail("is empty, expected a mapping with name, inputs and layers", (1, 1))
        root_at = _at(self.loader.peek_event())
        self.out.data = self.node()
        self.loader.get_event()  # DocumentEnd
        ev = self.loader.get_event()
        if not isinstance(ev, yaml.StreamEndEvent):
            raise self.fail("expected a single document in the stream, but found another document "
                            "(remove the '---' line)", _at(ev))
        if not isinstance(self.out.data, dict):
            d = self.out.data
            kind = "null" if d is None else type(d).__name__
            raise self.fail(f"the document is a {kind}, expected a mapping (name:, inputs:, layers:)", root_at)
        return self.out

    def node(self) -> Any:
        """Read one complete node (scalar or collection) and return its value."""
        stack: list[_Frame] = []
        while True:
            ev = self.loader.get_event()
            if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = stack.pop()
                value = frame.value
                if not stack:
                    return value
                self.place(stack[-1], value)
                continue
            at = _at(ev)
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent.value, dict) and parent.key is None:
                self.key(parent, ev, at)
                continue
            path = self.child_path(parent)
            self.check(ev, at, path, len(stack))
            self.out.pos[path] = at
            if isinstance(ev, yaml.MappingStartEvent):
                stack.append(_Frame(path, {}))
            elif isinstance(ev, yaml.SequenceStartEvent):
                stack.append(_Frame(path, []))
            else:
                value = self.scalar(ev, at, path)
                if parent is None:
                    return value
                self.place(parent, value)

    def child_path(self, parent: _Frame | None) -> PathKey:
        if parent is None:
            return ()
        if isinstance(parent.value, dict):
            return (*parent.path, parent.key)
        return (*parent.path, len(parent.value))

    def place(self, parent: _Frame, value: Any) -> None:
        if isinstance(parent.value, dict):
            parent.value[parent.key] = value
            parent.key = None
        else:
            parent.value.append(value)

    def check(self, ev: Any, at: tuple[int, int], path: PathKey, depth: int) -> None:
        """Aliases, anchors, tags on collections, depth and value count."""
        if isinstance(ev, yaml.AliasEvent) or getattr(ev, "anchor", None) is not None:
            what = "aliases" if isinstance(ev, yaml.AliasEvent) else "anchors"
            raise self.fail(f"YAML {what} (&name / *name) are not allowed in specs; use vars: and "
                            "repeat: instead", at)
        self.count += 1
        if self.count > self.limits.spec_values:
            raise self.fail(limit_message("spec has too many values", "spec_values"), at, path)
        if depth > self.limits.spec_depth:
            raise self.fail(limit_message(f"spec nests deeper than {self.limits.spec_depth} levels",
                                          "spec_depth"), at, path)
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)) and ev.tag not in _PLAIN_TAGS:
            raise self.fail(f"invalid YAML: tag {ev.tag!r} is not allowed in specs", at, path)

    def key(self, parent: _Frame, ev: Any, at: tuple[int, int]) -> None:
        if not isinstance(ev, yaml.ScalarEvent):
            if isinstance(ev, yaml.AliasEvent):
                self.check(ev, at, parent.path, 0)
            raise self.fail("mapping keys must be strings, got a nested list or mapping", at, parent.path)
        self.check(ev, at, parent.path, 0)
        key = self.scalar(ev, at, parent.path)
        if not isinstance(key, str):
            raise self.fail(f"mapping keys must be strings, got {key!r}", at, parent.path)
        if key in parent.value:
            raise self.fail(f"duplicate key {key!r}", at, (*parent.path, key))
        parent.key, parent.key_at = key, at
        self.out.key_pos[(*parent.path, key)] = at

    def scalar(self, ev: Any, at: tuple[int, int], path: PathKey) -> Any:
        tag = ev.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, ev.value, ev.implicit)
        digits = self.limits.int_digits
        if tag == "tag:yaml.org,2002:int" and len(ev.value) > 3 * digits:
            raise self.fail(limit_message(f"integer {ev.value[:20]}... is too long", "int_digits"), at, path)
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style)
        construct = self.loader.yaml_constructors.get(tag)
        try:
            # The tag's constructor directly (the safe ones only read node.value); others go
            # through construct_object, which refuses unknown tags.
            value = construct(self.loader, node) if construct else self.loader.construct_object(node, deep=True)
        except Exception as e:  # PyYAML's constructors raise KeyError, AttributeError, ... on bad text
            short = tag.rsplit(":", 1)[-1]
            raise self.fail(f"invalid YAML: cannot read {ev.value[:40]!r} as {short} "
                            f"({first_line(e, 80)})", at, path) from None
        if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) > digits:
            raise self.fail(limit_message(f"integer of {len(str(abs(value)))} digits", "int_digits"), at, path)
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise self.fail(f"unsupported YAML value of type {type(value).__name__} "
                            "(specs hold strings, numbers, booleans, lists and mappings)", at, path)
        return value
