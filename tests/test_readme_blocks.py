"""The README checker itself: parsing of blocks and matching of shown output."""

from __future__ import annotations

from readme_blocks import commands_of, matches, normalise_numbers


def test_console_and_bash_blocks_are_parsed_with_their_marks(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n```bash\npip install x   # install\n# a comment\npytest\n```\n"
        "<!-- readme-test: numbers vary -->\n```console\n$ spdnn run m.onnx\nprovider: CPU\nmin 0.5\n$ echo hi\nhi\n```\n"
        "<!-- readme-test: skip needs a GPU -->\n```console\n$ spdnn run --cuda\n```\n")
    commands = commands_of(readme)
    assert [c.text for c in commands] == ["pip install x", "pytest", "spdnn run m.onnx", "echo hi", "spdnn run --cuda"]
    assert commands[0].shown is None and commands[0].line == 3
    assert commands[2].shown == ["provider: CPU", "min 0.5"] and commands[2].numbers_vary
    assert commands[3].shown == ["hi"]
    assert commands[4].skip == "needs a GPU" and not commands[1].skip


def test_matching_is_anchored_unless_elided():
    printed = ["a", "b", "c", "d"]
    assert matches(["a", "b", "c", "d"], printed) is None
    assert matches(["a", "...", "d"], printed) is None
    assert matches(["...", "c"], printed) is not None  # 'd' follows but the block shows no '...'
    assert matches(["...", "c", "..."], printed) is None
    assert matches(["b", "..."], printed) is not None  # not at the start
    assert matches(["a", "...", "c", "b"], printed) is not None


def test_numbers_vary_only_where_marked():
    assert normalise_numbers("350.4 k params, 8.61 GFLOPs, 1,570 in 0.3 s") == "# params, #FLOPs, # in # s"
    assert matches(["min 0.5"], ["min 0.4981"], numbers_vary=True) is None
    assert matches(["min 0.5"], ["min 0.4981"]) is not None


def test_python_blocks_are_one_script_each(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("```python\nimport spdnn\nprint(1)\n```\n```toml\n[x]\n```\n")
    [command] = commands_of(readme)
    assert command.python and command.text == "import spdnn\nprint(1)\n" and command.shown is None
