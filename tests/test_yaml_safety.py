"""The YAML loader refuses what is not a plain, reasonably sized spec document."""

from __future__ import annotations

import pytest
from spdnn.limits import LIMITS

import spdnn

MAX_BYTES, MAX_DEPTH = LIMITS.spec_bytes, LIMITS.spec_depth

BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
"""


def one_problem(text: str) -> spdnn.Problem:
    with pytest.raises(spdnn.SpecError) as info:
        spdnn.load_spec_text(text, "s.yaml")
    assert len(info.value.problems) == 1
    return info.value.problems[0]


def test_alias_bomb_is_refused_at_the_first_anchor():
    p = one_problem(BOMB)
    assert "anchors" in p.message and (p.line, p.column) == (1, 4)


def test_plain_alias_is_refused():
    text = "name: t\ninputs: {x: [3]}\nlayers: [{op: relu}]\nmore: *x\n"
    assert "aliases" in one_problem(text).message


@pytest.mark.parametrize("text,kind", [
    ("- a\n- b\n", "list"), ("just text\n", "str"), ("42\n", "int"), ("~\n", "null"),
])
def test_non_mapping_documents_are_refused(text, kind):
    p = one_problem(text)
    assert f"the document is a {kind}, expected a mapping" in p.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_document_is_refused(text):
    assert "is empty" in one_problem(text).message


def test_several_documents_are_refused():
    assert "expected a single document" in one_problem("a: 1\n---\nb: 2\n").message


def test_python_tags_are_refused():
    p = one_problem("name: !!python/object/apply:os.system ['true']\n")
    assert "invalid YAML" in p.message and p.line == 1


def test_deep_nesting_is_refused():
    text = "name: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    assert "nests deeper" in one_problem(text).message


def test_non_string_keys_are_refused():
    assert "mapping keys must be strings" in one_problem("1: a\n").message


def test_oversized_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(spdnn.SpecError, match="limit 2,097,152 \\(spec_bytes\\)"):
        spdnn.load_spec(path)


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(spdnn.SpecError, match="binary file"):
        spdnn.load_spec(path)


def test_non_utf8_file_is_refused(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(spdnn.SpecError, match=r"latin1.yaml:1:1: is not UTF-8 text"):
        spdnn.load_spec(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(spdnn.SpecError, match="no such file"):
        spdnn.load_spec(tmp_path / "nope.yaml")
    with pytest.raises(spdnn.SpecError, match="is a directory"):
        spdnn.load_spec(tmp_path)
