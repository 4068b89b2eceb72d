"""Property-based tests: random specs, random expressions and random byte mutations of the
shipped specs end in a graph or in a SpecError whose every problem is located, quickly.

The default run uses few examples, the same ones every run (CI must not fail on a new random
draw); ``pytest -m slow tests/test_properties.py`` explores many more, randomly.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spdnn
from spdnn.frontends.yaml_importer import load_spec, load_spec_text
from spdnn.ops import all_ops

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*/*.yaml"))
QUICK, SLOW = 25, 400
SECONDS = 5.0
MEMORY = 256 * 2**20


def outcome(load) -> object:
    """Run ``load()``; it must return a Graph or raise a SpecError with located problems, within
    SECONDS and without allocating more than MEMORY bytes of Python objects at its peak."""
    start = time.perf_counter()
    tracemalloc.start()
    try:
        result = load()
    except spdnn.SpecError as e:
        for p in e.problems:
            assert p.message and p.file, p
            assert p.line >= 1 or p.where == "" and p.line == 0, f"unlocated problem: {p}"
        result = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - start < SECONDS, "took too long"
    assert peak < MEMORY, f"allocated {peak:,} bytes"
    return result


# -- expressions ------------------------------------------------------------------------------
ATOMS = st.one_of(
    st.integers(-10**40, 10**40).map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["width", "kernels", "text", "big", "true", "nope", '"ab"', "[]", "[1, 2]",
                     "1e999", "0", "-1", "10**9", "9**9**9"]),
)
FUNCS = ["min", "max", "abs", "int", "round", "sum", "len", "open"]
OPS = ["+", "-", "*", "/", "//", "%", "**", "<", "and", "|", "@", "."]


def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(OPS), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(FUNCS), st.lists(children, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.lists(children, max_size=4).map(lambda xs: f"[{', '.join(xs)}]"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        children.map(lambda c: f"-{c}"),
    )


EXPRESSIONS = st.recursive(ATOMS, combine, max_leaves=12) | st.text(max_size=40)
HEAD = "name: t\nvars:\n  width: 4\n  kernels: [1, 2, 3]\n  text: ab\n  big: .inf\n"


def expression_spec(expr: str, where: str) -> str:
    value = json.dumps("$" + expr)
    if where == "var":
        return HEAD + f"  v: {value}\ninputs: {{x: [3, 8, 8]}}\nlayers:\n  - {{op: relu}}\n"
    if where == "name":
        return HEAD + f"inputs: {{x: [3, 8, 8]}}\nlayers:\n  - {{op: relu, name: {json.dumps('c${' + expr + '}')}}}\n"
    return HEAD + f"inputs: {{x: [3, 8, 8]}}\nlayers:\n  - {{op: conv2d, kernel_size: 3, out_channels: {value}}}\n"


def check_expression(expr: str, where: str) -> None:
    outcome(lambda: load_spec_text(expression_spec(expr, where), "e.yaml"))


@settings(max_examples=QUICK, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, st.sampled_from(["var", "attr", "name"]))
def test_random_expressions(expr, where):
    check_expression(expr, where)


@pytest.mark.slow
@settings(max_examples=SLOW, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, st.sampled_from(["var", "attr", "name"]))
def test_random_expressions_many(expr, where):
    check_expression(expr, where)


# -- random specs -----------------------------------------------------------------------------
VALUES = st.one_of(
    st.integers(-3, 70), st.integers(-10**31, 10**31), st.booleans(), st.none(),
    st.floats(), st.sampled_from(["same", "valid", "$width", "$width * 2", "nearest", "nan", "x"]),
    st.lists(st.integers(-2, 9), max_size=5),
)
OPS_NAMES = sorted(op for op in all_ops() if op not in ("input", "output"))


@st.composite
def random_spec(draw) -> str:
    names = ["x"]
    layers = []
    for i in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(OPS_NAMES))
        fields = list(all_ops()[op].attrs.model_fields)
        attrs = {k: draw(VALUES) for k in draw(st.lists(st.sampled_from(fields), max_size=4, unique=True))} if fields else {}
        entry = {"name": f"l{i}", "op": op, **attrs}
        if draw(st.booleans()):
            entry["inputs"] = draw(st.lists(st.sampled_from(names + ["l9", "x:1", "l0:indices", "l0:"]),
                                            min_size=1, max_size=3))
        layers.append(entry)
        names.append(f"l{i}")
    shape = draw(st.lists(st.integers(1, 40), min_size=1, max_size=4))
    doc = {"name": "r", "vars": {"width": draw(st.integers(1, 8))}, "inputs": {"x": shape}, "layers": layers}
    if draw(st.booleans()):
        doc["outputs"] = draw(st.sampled_from([[], {}, "x", "l0", ["l0", "l0:1"], {"y": "l0"}]))
    return json.dumps(doc, indent=1)  # JSON is YAML: every line and column is a real position


def check_spec(text: str) -> None:
    result = outcome(lambda: load_spec_text(text, "r.yaml"))
    if not isinstance(result, spdnn.SpecError):
        assert result.name == "r" and len(result) >= 2


@settings(max_examples=QUICK, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec())
def test_random_specs(text):
    check_spec(text)


@pytest.mark.slow
@settings(max_examples=SLOW, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_spec())
def test_random_specs_many(text):
    check_spec(text)


# -- byte mutations of the shipped specs ---------------------------------------------------------
@st.composite
def mutated(draw) -> bytes:
    data = bytearray(SPECS[draw(st.integers(0, len(SPECS) - 1))].read_bytes())
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["set", "insert", "delete"]))
        byte = draw(st.sampled_from(list(b"[]{}:,-&*!|>'\"#%@`\t\n 0123456789$.") + [0, 0x80, 0xff, 7]))
        if kind == "insert" or at == len(data):
            data.insert(at, byte)
        elif kind == "set":
            data[at] = byte
        else:
            del data[at]
    return bytes(data)


def check_bytes(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(data)
    outcome(lambda: load_spec(path))


@settings(max_examples=QUICK, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(mutated())
def test_mutated_specs(tmp_path, data):
    check_bytes(data, tmp_path)


@pytest.mark.slow
@settings(max_examples=SLOW, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(mutated())
def test_mutated_specs_many(tmp_path, data):
    check_bytes(data, tmp_path)
