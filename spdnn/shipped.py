"""The models shipped with spdnn: every spec of the source papers, installed with the package.

The repository's ``specs/`` folder installs as ``spdnn.specs`` (one folder per paper or thesis
appendix, network specs ``<folder>/<model>.yaml``, system specs ``<folder>/systems/<system>.yaml``).

Rules:
  1. A command-line input that is an existing path is used as it is. Otherwise, when it names a
     shipped model it resolves to that spec: ``iris`` is every network spec of the folder (in name
     order, as ``specs/iris/*.yaml``), ``vacgan_mnist/classifier`` one network spec,
     ``dynamic_filters/systems/mnist_dynamic`` one system spec; a trailing ``.yaml`` is allowed.
     A name that is neither stays as written, so the usual "no such file" error reports it.
  2. :func:`catalogue` lists every shipped spec with its folder, paper (the seed file its
     ``source:`` cites), the model IDs of ``shared/reference/seed-models.md`` its header names,
     parameters, and status: ``checked`` when the folder's ``expected.yml`` holds hand-derived
     values for it (tests compare them), ``compiles`` otherwise (and for a system spec that
     loads with its networks), or the last line of the problem when it does not load. A system spec that cites no seed itself gets the
     paper of most of its folder's networks.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from spdnn.errors import SpdnnError

__all__ = ["ShippedModel", "catalogue", "resolve_input", "resolve_inputs", "specs_dir"]

#: Short titles of the source papers, by seed number.
PAPERS = {
    "000": "Sample-specific dynamic filters (seed 000)",
    "001": "Inverting adversarially robust networks (seed 001)",
    "002": "Parametrizing filters of a CNN with a GAN (seed 002)",
    "003": "SPDNN thesis (seed 003)",
    "004": "Spatial frequency loss for autoencoders (seed 004)",
}
_MODEL_ID = re.compile(r"\b(?:DF|AR|FG|TH|SF)-[A-Z]?[0-9]+[a-z]?\b")
_SEED = re.compile(r"seeds/(\d{3})_")


def specs_dir() -> Path:
    """The folder of the shipped specs (the checkout's ``specs/`` or the installed copy)."""
    found = importlib.util.find_spec("spdnn.specs")
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError("the shipped specs (package spdnn.specs) are not installed")
    return Path(next(iter(found.submodule_search_locations)))


def _shipped(name: str) -> list[Path]:
    """Rule 1 for a name that is not an existing path ([] when it names nothing shipped)."""
    parts = name.removesuffix(".yaml").removesuffix("/").split("/")
    if "\0" in name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return []
    root = specs_dir()
    if len(parts) == 1 and (root / parts[0]).is_dir():
        return sorted((root / parts[0]).glob("*.yaml"))
    path = root.joinpath(*parts[:-1], parts[-1] + ".yaml")
    return [path] if path.is_file() else []


def _exists(name: str) -> bool:
    try:
        return Path(name).exists()
    except (OSError, ValueError):  # a NUL byte, a name too long: not a path that exists
        return False


def resolve_inputs(names: list[str]) -> list[str]:
    """Rule 1 for a list of command-line inputs (a folder name expands to its specs)."""
    out: list[str] = []
    for name in names:
        found = [] if _exists(name) else _shipped(name)
        out += [str(p) for p in found] or [name]
    return out


def resolve_input(name: str) -> str:
    """Rule 1 for a command that takes one spec: a folder of several specs is an error naming them."""
    found = [] if _exists(name) else _shipped(name)
    if len(found) > 1:
        folder = found[0].parent.name
        options = ", ".join(f"{folder}/{p.stem}" for p in found)
        raise SpdnnError(f"{name!r} is a folder of {len(found)} shipped specs; name one: {options}")
    return str(found[0]) if found else name


@dataclass(frozen=True)
class ShippedModel:
    """One line of ``spdnn list``."""

    name: str
    paper: str
    ids: tuple[str, ...]
    kind: str
    params: int | None
    status: str

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "paper": self.paper, "ids": list(self.ids), "kind": self.kind,
                "params": self.params, "status": self.status}


def catalogue() -> list[ShippedModel]:
    """Rule 2: every shipped spec, folder by folder."""
    root = specs_dir()
    out: list[ShippedModel] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        expected = _expected_stems(folder / "expected.yml")
        networks = [_network(folder.name, path, path.stem in expected) for path in sorted(folder.glob("*.yaml"))]
        papers = [m.paper for m in networks if m.paper != "-"]
        out += networks
        for path in sorted((folder / "systems").glob("*.yaml")):
            system = _entry(f"{folder.name}/systems/{path.stem}", path, "system", None, _system_status(path))
            if system.paper == "-" and papers:  # a system cites its networks' paper through them
                system = replace(system, paper=max(set(papers), key=papers.count))
            out.append(system)
    return out


def _network(folder: str, path: Path, checked: bool) -> ShippedModel:
    from spdnn.frontends.yaml_importer import load_spec
    from spdnn.summary import summarize

    try:
        params: int | None = summarize(load_spec(path)).total_params
        status = "checked" if checked else "compiles"
    except SpdnnError as e:
        params, status = None, f"error: {str(e).splitlines()[-1].strip()[:80]}"
    return _entry(f"{folder}/{path.stem}", path, "network", params, status)


def _system_status(path: Path) -> str:
    from spdnn.frontends.yaml_importer.system import load_system

    try:
        load_system(path)
    except SpdnnError as e:
        return f"error: {str(e).splitlines()[-1].strip()[:80]}"
    return "compiles"


def _entry(name: str, path: Path, kind: str, params: int | None, status: str) -> ShippedModel:
    text = path.read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines()[:40] if line.lstrip().startswith("#") or "section" in line
                       or "table" in line)
    seed = _SEED.search(text)
    paper = PAPERS.get(seed.group(1), f"seed {seed.group(1)}") if seed else "-"
    ids = tuple(dict.fromkeys(_MODEL_ID.findall(header)))
    return ShippedModel(name, paper, ids, kind, params, status)


def _expected_stems(path: Path) -> set[str]:
    """The spec stems an ``expected.yml`` gives values for (its ``models:`` keys)."""
    if not path.is_file():
        return set()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return set((data.get("models") or {}).keys())
