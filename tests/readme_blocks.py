"""Commands and shown output of the README files, for tests/test_readme.py.

Conventions of the READMEs (invisible when rendered):

* A ```` ```console ```` block holds ``$ command`` lines, each followed by the output it prints.
  A line ``...`` stands for any number of lines; without it at the start (end) the shown output
  must be the first (last) lines printed. Lines are compared with trailing spaces removed.
* ``<!-- readme-test: numbers vary -->`` just before a block: numbers (and 'k', 'M', ... after
  them) are compared as placeholders in that block (timings, random outputs).
* A ```` ```bash ```` block holds commands, one per line (``#`` comments allowed), whose output
  is not shown.
* A ```` ```python ```` block is one script, run as written with ``python -c`` (it must succeed).
* ``<!-- readme-test: skip REASON -->`` just before a block leaves it out, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Command", "anchor_of", "commands_of", "links_of", "matches", "normalise_numbers", "output_paths_of"]

_BLOCK = re.compile(r"(?:<!--\s*readme-test:\s*(?P<mark>[^>]*?)\s*-->\s*\n)?```(?P<lang>console|bash|python)\n(?P<body>.*?)```",
                    re.S)


@dataclass
class Command:
    """One command of a README, with the output lines it shows (None: not shown)."""

    file: Path
    line: int
    text: str
    shown: list[str] | None = None
    numbers_vary: bool = False
    skip: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    python: bool = False

    def __str__(self) -> str:
        return f"{self.file.name}:{self.line}: {self.text}"


def commands_of(readme: Path) -> list[Command]:
    """Every command of ``readme`` in order."""
    text = readme.read_text(encoding="utf-8")
    out: list[Command] = []
    for m in _BLOCK.finditer(text):
        mark = (m["mark"] or "").strip()
        skip = mark[len("skip"):].strip() or "no reason given" if mark.startswith("skip") else None
        vary = mark == "numbers vary"
        first_line = text.count("\n", 0, m.start("body")) + 1
        body = m["body"].splitlines()
        if m["lang"] == "python":
            out.append(Command(readme, first_line, m["body"], None, vary, skip, python=True))
            continue
        if m["lang"] == "bash":
            for i, line in enumerate(body):
                command = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
                if command:
                    out.append(Command(readme, first_line + i, command, None, vary, skip))
            continue
        current: Command | None = None
        for i, line in enumerate(body):
            if line.startswith("$ "):
                current = Command(readme, first_line + i, line[2:].strip(), [], vary, skip)
                out.append(current)
            elif current is not None:
                current.shown.append(line.rstrip())
    return out


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?:\s?[kMGT](?=FLOPs|\b))?")


def normalise_numbers(line: str) -> str:
    """Numbers (with thousands separators, decimals and k/M/G/T prefixes) become '#'."""
    return _NUMBER.sub("#", line)


def matches(shown: list[str], printed: list[str], numbers_vary: bool = False) -> str | None:
    """None when ``printed`` shows ``shown`` (see the module docstring), else what differs."""
    norm = normalise_numbers if numbers_vary else (lambda s: s)
    printed = [norm(p.rstrip()) for p in printed]
    segments: list[list[str]] = [[]]
    for line in shown:
        if line.strip() in ("...", "…"):
            segments.append([])
        else:
            segments[-1].append(norm(line))
    anchored_start, anchored_end = bool(segments[0]), bool(segments[-1])
    pos = 0
    for k, segment in enumerate(segments):
        if not segment:
            continue
        n = len(segment)
        if k == 0 and anchored_start:
            found = 0 if printed[:n] == segment else -1
        else:
            found = next((i for i in range(pos, len(printed) - n + 1) if printed[i:i + n] == segment), -1)
        if found < 0:
            return f"not printed (in this order): {segment[0]!r}"
        pos = found + n
    if anchored_end and segments[-1] and pos != len(printed):
        return f"printed more lines after the shown ones: {printed[pos:pos + 3]!r}"
    return None


_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_OUT_PATH = re.compile(r"(?<![\w/.])out/[\w./*{}-]+")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def output_paths_of(readme: Path) -> list[str]:
    """Glob patterns of the ``out/...`` paths that the README's prose names in inline code.

    ``{1..4}`` stands for each number, ``X.dot/.mmd`` for ``X.dot`` and ``X.mmd``; placeholders
    such as ``out/<name>`` are left out (they name no file)."""
    prose = _FENCE.sub("", readme.read_text(encoding="utf-8"))
    out: list[str] = []
    for code in _INLINE_CODE.findall(prose):
        for m in _OUT_PATH.finditer(code):
            if code[m.end():m.end() + 1] == "<":
                continue
            path = re.sub(r"\{(\d+)\.\.(\d+)\}", "*", m[0].rstrip("./"))
            stem, *alternatives = path.split("/.")
            suffix = stem.rsplit(".", 1)[1] if alternatives and "." in stem.rsplit("/", 1)[-1] else None
            out.append(stem)
            out += [stem[:-len(suffix)] + alt for alt in alternatives] if suffix else []
    return out


def anchor_of(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def links_of(readme: Path) -> list[str]:
    """Targets of the README's relative links (``docs/x.md``, ``#section``), in order."""
    prose = _FENCE.sub("", readme.read_text(encoding="utf-8"))
    return [t for t in _LINK.findall(prose) if "://" not in t and not t.startswith("mailto:")]
