"""Passes by name with typed options, from Python, --pass and a spec's passes:; insert-dropout."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import pytest

import spdnn
from spdnn.cli import main
from spdnn.ir.printer import format_graph
from spdnn.passes import PASSES, InsertDropoutPass, PassOptionsError, parse_pipeline_text, register_pass

SPEC = """\
name: branchy
inputs: {x: [1, 8, 8]}
layers:
  - {name: c1, op: conv2d, out_channels: 2, kernel_size: 3}
  - {name: a, op: relu, inputs: [c1]}
  - {name: b, op: tanh, inputs: [c1]}
  - {name: sum, op: add, inputs: [a, b]}
  - {name: c2, op: conv2d, out_channels: 2, kernel_size: 3}
outputs: [c2, c1]
"""

GOLDEN = """\
graph branchy {
  %x = input(){shape=[1, 8, 8]} : (N, 1, 8, 8)
  %c1 = conv2d(%x){out_channels=2, kernel_size=[3, 3]} : (N, 2, 6, 6)
  %output_1 = output(%c1){}
  %c1_dropout = dropout(%c1){p=0.25} : (N, 2, 6, 6)
  %a = relu(%c1_dropout){} : (N, 2, 6, 6)
  %b = tanh(%c1_dropout){} : (N, 2, 6, 6)
  %sum = add(%a, %b){} : (N, 2, 6, 6)
  %c2 = conv2d(%sum){out_channels=2, kernel_size=[3, 3]} : (N, 2, 4, 4)
  %output_0 = output(%c2){}
}"""


def test_insert_dropout_exact_structure_and_idempotence():
    g = spdnn.load_spec_text(SPEC)
    spdnn.run_passes(g, [("insert-dropout", {"p": 0.25})])
    assert format_graph(g) == GOLDEN  # c2 feeds only a graph output: no dropout; c1's output keeps c1
    spdnn.run_passes(g, [("insert-dropout", {"p": 0.25}), "infer-shapes"])
    assert format_graph(g) == GOLDEN
    g.verify()


def test_insert_dropout_after_other_ops_and_located_origin():
    g = spdnn.load_spec_text(SPEC, "branchy.yaml")
    spdnn.run_passes(g, "insert-dropout:after=[relu,tanh],p=0.1")
    assert [v.node for v in g.inputs_of("sum")] == ["a_dropout", "b_dropout"]
    assert g.meta_of("a_dropout")["origin"].line == 5
    assert spdnn.count_params(g) == 2 * 9 + 2 + 2 * 2 * 9 + 2


def test_the_three_front_ends_give_the_same_graph(tmp_path):
    by_python = spdnn.load_spec_text(SPEC)
    spdnn.run_passes(by_python, [("insert-dropout", {"p": 0.25})])
    by_spec = spdnn.load_spec_text(SPEC + "passes:\n  - {name: insert-dropout, p: 0.25}\n")
    assert format_graph(by_spec) == format_graph(by_python)
    (tmp_path / "b.yaml").write_text(SPEC)
    assert main(["compile", str(tmp_path / "b.yaml"), "-o", str(tmp_path / "out"), "-q",
                 "--pass", "insert-dropout:p=0.25"]) == 0
    assert "{name: c1_dropout, op: dropout, inputs: [c1], p: 0.25}" in (tmp_path / "out" / "branchy.yaml").read_text()


def test_a_bad_option_gives_the_same_message_everywhere(tmp_path, capsys):
    message = "pass 'insert-dropout' option 'p': expected less than 1"
    with pytest.raises(PassOptionsError, match=message):
        spdnn.run_passes(spdnn.load_spec_text(SPEC), [("insert-dropout", {"p": 2})])
    with pytest.raises(PassOptionsError, match=message):
        InsertDropoutPass(p=2)
    with pytest.raises(spdnn.SpecError) as e:
        spdnn.load_spec_text(SPEC + "passes:\n  - infer-shapes\n  - {name: insert-dropout, p: 2}\n", "s.yaml")
    assert str(e.value.problems[0]).startswith(f"s.yaml:12:31: passes[1].p: {message} (got 2)")
    (tmp_path / "b.yaml").write_text(SPEC)
    assert main(["compile", str(tmp_path / "b.yaml"), "-o", str(tmp_path / "o"), "--pass", "insert-dropout:p=2"]) == 2
    err = capsys.readouterr().err
    assert f"spdnn compile: error: --pass 'insert-dropout:p=2': {message} (got '2')" in err


@pytest.mark.parametrize("entry, expected", [
    ("insert-dropuot", "unknown pass 'insert-dropuot' (did you mean 'insert-dropout'?)"),
    ("insert-dropout:q=1", "pass 'insert-dropout' option 'q': unknown option; options: p, after"),
    ("insert-dropout:after=conv2dd", "option 'after': unknown op 'conv2dd' (did you mean 'conv2d'?)"),
    ("insert-dropout:p=true", "option 'p': expected a valid number"),
    ("insert-dropout:p=nan", "option 'p': expected a finite number"),
    ("infer-shapes:p=1", "pass 'infer-shapes' option 'p': unknown option; this pass takes no options"),
    ("p=1", "'p=1' comes before any pass name"),
])
def test_bad_pipelines_are_refused(entry, expected):
    with pytest.raises(PassOptionsError) as e:
        spdnn.run_passes(spdnn.load_spec_text(SPEC), entry)
    assert expected in str(e.value)


def test_spec_pass_errors_are_located(capsys, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SPEC + "passes:\n  - insert-dropuot\n  - {name: insert-dropout, aftr: relu}\n  - 7\n")
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:12:5: passes[1].aftr: pass 'insert-dropout' option 'aftr': unknown option; did you mean 'after'?" in err \
        or "passes[2]" in err


def test_pipeline_text():
    assert parse_pipeline_text("insert-dropout:p=0.2,after=[conv2d, linear],infer-shapes") == [
        ("insert-dropout", {"p": "0.2", "after": ["conv2d", "linear"]}), ("infer-shapes", {})]
    assert parse_pipeline_text("infer-shapes") == [("infer-shapes", {})]


def test_register_pass_refuses_duplicates_and_bad_names():
    @dataclass(frozen=True)
    class Again(spdnn.Pass):
        name: ClassVar[str] = "insert-dropout"

    with pytest.raises(ValueError, match="already registered"):
        register_pass(Again)

    @dataclass(frozen=True)
    class Camel(spdnn.Pass):
        name: ClassVar[str] = "InsertThing"

    with pytest.raises(ValueError, match="kebab-case"):
        register_pass(Camel)
    assert set(PASSES) >= {"infer-shapes", "insert-dropout"} and "InsertThing" not in PASSES


def test_spdnn_passes_lists_and_describes(capsys):
    assert main(["passes"]) == 0
    out = capsys.readouterr().out
    for name, cls in PASSES.items():
        assert f"{name}  {cls.__doc__.strip().splitlines()[0]}" in " ".join(out.split("  ")).replace("   ", "  ") or name in out
    assert re.search(r"^insert-dropout +After every conv2d whose output feeds other layers, insert a dropout with "
                     r"probability p\.$", out, re.M)
    assert main(["passes", "insert-dropout"]) == 0
    out = capsys.readouterr().out
    assert "  p      float (>= 0, < 1)         default 0.5       Drop probability of each inserted dropout." in out
    assert "3. Idempotent" in out
    assert main(["passes", "insert-dropuot"]) == 2
    assert "did you mean 'insert-dropout'?" in capsys.readouterr().err


def test_schema_accepts_passes():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from spdnn.frontends.yaml_importer.schema import spec_json_schema

    validator = jsonschema.Draft202012Validator(spec_json_schema())
    doc = yaml.safe_load(SPEC + "passes:\n  - infer-shapes\n  - {name: insert-dropout, p: 0.2, after: [relu]}\n")
    assert list(validator.iter_errors(doc)) == []
    doc["passes"].append({"name": "insert-dropout", "q": 1})
    assert len(list(validator.iter_errors(doc))) == 1
