"""Hostile specs never crash, hang or exhaust memory: each ends with exit code 2 and a located
message (tests/hostile/: a generated corpus plus hand-written files).

Every case runs ``spdnn inspect FILE`` through ``spdnn.cli.main`` in a child process limited to
2 GiB of address space (RLIMIT_AS) and a per-case time limit; a few children share the cases.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "hostile"
sys.path.insert(0, str(HERE))
import make_corpus  # noqa: E402

MEMORY_LIMIT = 2 * 1024**3
CPU_SECONDS_PER_CASE = 10  # CPU time, so a loaded machine does not fail the test
WALL_SECONDS_PER_CASE = 120  # catches a case blocked in a system call (a FIFO)
WORKERS = 2


def _limit_child() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    import spdnn.cli  # noqa: F401  (imported once per child, before any case)
    import spdnn.frontends.yaml_importer  # noqa: F401


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout("wall clock" if signum == signal.SIGALRM else "CPU")


def run_inspect(path: str) -> tuple[int | str, str]:
    """(exit code, stderr) of ``spdnn inspect path``; the code is a string for a crash."""
    from spdnn.cli import main

    err, out = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGVTALRM, _alarm)
    signal.alarm(WALL_SECONDS_PER_CASE)
    signal.setitimer(signal.ITIMER_VIRTUAL, CPU_SECONDS_PER_CASE)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code: int | str = main(["inspect", path])
    except _Timeout as e:
        code = f"timeout ({e} time limit)"
    except BaseException as e:  # a traceback is the failure this test looks for
        code = f"{type(e).__name__}: " + "".join(traceback.format_exception(e))[-2000:]
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.alarm(0)
    return code, err.getvalue()


def run_all(paths: list[str]) -> list[tuple[int | str, str]]:
    with ProcessPoolExecutor(WORKERS, initializer=_limit_child) as pool:
        return list(pool.map(run_inspect, paths, chunksize=8))


def hand_written() -> list[make_corpus.Case]:
    """tests/hostile/hand/*.yaml, each starting with ``# expect: 2 LINE:COL fragment``."""
    cases = []
    for path in sorted((HERE / "hand").glob("*.yaml")):
        data = path.read_bytes()
        m = re.match(rb"# expect: 2 (\d+):(\d+) (.+)\n", data)
        assert m, f"{path.name} has no '# expect: 2 LINE:COL fragment' header"
        cases.append(make_corpus.Case(path.stem, data, int(m[1]), int(m[2]), m[3].decode()))
    return cases


def check(case: make_corpus.Case, path: str, code, stderr: str) -> str:
    """'' when the run matches the case's expectation, else why not."""
    if code != 2:
        return f"{case.name}: exit {code!r}, expected 2\n{stderr[-500:]}"
    lines = [line.strip() for line in stderr.splitlines() if case.fragment in line]
    if not lines:
        return f"{case.name}: no message mentions {case.fragment!r}:\n{stderr[-800:]}"
    where = f"{path}:{case.line}:{case.column}:" if case.line else f"{path}:"
    if not any(line.startswith(where) or f" {where}" in line for line in lines):
        return f"{case.name}: {case.fragment!r} reported at {lines[0][:200]!r}, expected at {where}"
    return ""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[tuple[make_corpus.Case, str]]:
    directory = tmp_path_factory.mktemp("hostile")
    big = os.environ.get("SPDNN_HOSTILE_BIG", "1") != "0"
    cases = make_corpus.write(directory, big=big) + hand_written()
    out = []
    for c in cases:
        path = directory / f"{c.name}.yaml"
        if not path.exists():
            path.write_bytes(c.data)
        out.append((c, str(path)))
    return out


def test_corpus_is_large_and_committed_copy_is_current(tmp_path):
    fresh = make_corpus.write(tmp_path)
    assert len(fresh) + len(hand_written()) >= 300
    committed = HERE / "cases"
    for c in fresh:
        assert (committed / f"{c.name}.yaml").read_bytes() == c.data, (
            f"tests/hostile/cases/{c.name}.yaml is stale: run python tests/hostile/make_corpus.py")
    assert (committed / "expected.yaml").read_text() == (tmp_path / "expected.yaml").read_text()


def test_every_hostile_spec_ends_in_a_located_error(corpus):
    results = run_all([path for _, path in corpus])
    failures = [why for (c, path), (code, err) in zip(corpus, results) if (why := check(c, path, code, err))]
    assert not failures, f"{len(failures)} of {len(corpus)} cases failed:\n" + "\n".join(failures[:30])


def _special_files(tmp_path: Path) -> list[tuple[str, str]]:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")
    (tmp_path / "dir.yaml").mkdir()
    return [(str(fifo), "is not a regular file"), (str(zero), "is a system file"),
            ("/proc/self/status", "is a system file"), (str(tmp_path / "dir.yaml"), "is a directory"),
            (str(tmp_path / "missing.yaml"), "no such file")]


def test_special_files_are_refused_without_reading(tmp_path):
    cases = _special_files(tmp_path)
    results = run_all([p for p, _ in cases])
    for (path, fragment), (code, err) in zip(cases, results):
        assert code == 2 and f"{path}: {fragment}" in err, (path, code, err)


TAB_SPEC = "name: t\ninputs: {x: [3,\t8, 8]}\nlayers:\n  - {op: relu}\n"


def test_tab_in_flow_sequence_is_valid_yaml_and_loads():
    import yaml

    from spdnn.frontends.yaml_importer import load_spec_text, loader

    assert loader.PARSER == ("libyaml" if yaml.__with_libyaml__ else "pure-python")
    if loader.PARSER == "libyaml":
        graph = load_spec_text(TAB_SPEC)
        assert graph.type_of(graph.inputs_of("relu")[0]).shape == ("N", 3, 8, 8)


def test_tab_with_the_pure_python_parser_is_explained(monkeypatch):
    import yaml

    import spdnn
    from spdnn.frontends.yaml_importer import load_spec_text, loader

    monkeypatch.setattr(loader, "_Loader", yaml.SafeLoader)
    with pytest.raises(spdnn.SpecError) as info:
        load_spec_text(TAB_SPEC, "tab.yaml")
    (p,) = info.value.problems
    assert (p.line, p.column) == (2, 16)  # the tab
    assert "YAML 1.2 allows a tab here but PyYAML's pure-Python parser" in p.message and "spaces" in p.message


@pytest.mark.parametrize("name", ["_steps", "_num_slots", "_result_slots", "forward", "training", "graph_name"])
def test_layer_names_that_only_a_backend_might_mind_are_accepted(name):
    from spdnn.frontends.yaml_importer import load_spec_text

    graph = load_spec_text(f"name: t\ninputs: {{x: [4]}}\nlayers:\n  - {{name: {name}, op: relu}}\n")
    assert name in graph and graph.inputs_of("output")[0].node == name
