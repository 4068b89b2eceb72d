"""Safe YAML loading that remembers where every value was written.

Rules:
  1. Files over ``MAX_BYTES`` are refused before parsing; text must be UTF-8.
  2. Anchors and aliases are refused (no "billion laughs"), as are duplicate keys, more than
     one document, nesting deeper than ``MAX_DEPTH`` and more than ``MAX_NODES`` values.
  3. Only plain data: the safe loader's scalars, lists and mappings with string keys.
  4. The document must be a mapping.
Every refusal is a SpecError with file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spdnn.errors import Problem, SpecError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "Located", "load_yaml", "read_spec_file"]

MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 50
MAX_NODES = 200_000

PathKey = tuple[str | int, ...]
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


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
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise SpecError(Problem("no such file", name))
    if p.is_dir():
        raise SpecError(Problem("is a directory, expected a YAML spec file", name))
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise SpecError(Problem(f"file is {size} bytes; specs are limited to {MAX_BYTES}", name))
    raw = p.read_bytes()
    return decode(raw, name), name


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
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise SpecError(Problem(f"spec text is over {MAX_BYTES} bytes", file))
    try:
        _refuse_aliases(text, file)
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            out = Located(None, file)
            if root is None:
                raise SpecError(Problem("is empty, expected a mapping with name, inputs and layers", file, 1, 1))
            counter = [0]
            out.data = _convert(root, (), out, loader, counter, 0)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        msg = f"invalid YAML: {e.problem or e.context}"
        if e.context and e.problem:
            msg += f" ({e.context})"
        raise SpecError(Problem(msg, file, line, col)) from None
    except yaml.YAMLError as e:
        raise SpecError(Problem(f"invalid YAML: {e}", file)) from None
    if not isinstance(out.data, dict):
        kind = type(out.data).__name__ if out.data is not None else "null"
        raise SpecError(Problem(f"the document is a {kind}, expected a mapping (name:, inputs:, layers:)",
                                file, root.start_mark.line + 1, root.start_mark.column + 1))
    return out


def _refuse_aliases(text: str, file: str) -> None:
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent) or anchor is not None:
            m = event.start_mark
            what = "aliases" if isinstance(event, yaml.AliasEvent) else "anchors"
            raise SpecError(Problem(
                f"YAML {what} (&name / *name) are not allowed in specs; use vars: and repeat: instead",
                file, m.line + 1, m.column + 1))


def _convert(node: yaml.Node, path: PathKey, out: Located, loader, counter: list[int], depth: int) -> Any:
    counter[0] += 1
    mark = node.start_mark
    if counter[0] > MAX_NODES:
        raise SpecError(Problem(f"spec has more than {MAX_NODES} values", out.file, mark.line + 1, mark.column + 1))
    if depth > MAX_DEPTH:
        raise SpecError(Problem(f"spec nests deeper than {MAX_DEPTH} levels", out.file, mark.line + 1, mark.column + 1))
    out.pos[path] = (mark.line + 1, mark.column + 1)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise SpecError(Problem(f"invalid YAML: tag {node.tag!r} is not allowed in specs",
                                out.file, mark.line + 1, mark.column + 1, format_path(path)))
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) else None
            km = key_node.start_mark
            if not isinstance(key, str):
                raise SpecError(Problem(f"mapping keys must be strings, got {key!r}",
                                        out.file, km.line + 1, km.column + 1, format_path(path)))
            if key in result:
                raise SpecError(Problem(f"duplicate key {key!r}", out.file, km.line + 1, km.column + 1,
                                        format_path((*path, key))))
            out.key_pos[(*path, key)] = (km.line + 1, km.column + 1)
            result[key] = _convert(value_node, (*path, key), out, loader, counter, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(v, (*path, i), out, loader, counter, depth + 1) for i, v in enumerate(node.value)]
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, (str, int, float, bool, type(None))):
        raise SpecError(Problem(f"unsupported YAML value of type {type(value).__name__}",
                                out.file, mark.line + 1, mark.column + 1, format_path(path)))
    return value
