"""Bad specs: each gets a message naming the problem, with file:line:column and the location
inside the spec."""

from __future__ import annotations

import textwrap

import pytest

import spdnn

GOOD = """\
name: tiny
inputs: {image: [1, 8, 8]}
layers:
  - {name: conv, op: conv2d, out_channels: 4, kernel_size: 3}
  - {name: flat, op: flatten}
  - {name: fc, op: linear, out_features: 2}
outputs: {logits: fc}
"""


def problems_of(text: str) -> list[spdnn.Problem]:
    with pytest.raises(spdnn.SpecError) as info:
        spdnn.load_spec_text(textwrap.dedent(text), "t.yaml")
    return info.value.problems


def test_good_spec_loads():
    g = spdnn.load_spec_text(GOOD, "t.yaml")
    assert [n.name for n in g] == ["image", "conv", "flat", "fc", "logits"]


# (spec text, expected line, column, location, message fragment)
CASES = [
    ("unknown_op", GOOD.replace("op: flatten", "op: flaten"), 5, 22, "layers[1].op",
     "unknown op 'flaten' (did you mean 'flatten'?)"),
    ("unknown_attribute", GOOD.replace("kernel_size: 3", "kernel_sise: 3"), 4, 47, "layers[0].kernel_sise",
     "unknown attribute 'kernel_sise'; did you mean 'kernel_size'?"),
    ("missing_attribute", GOOD.replace(", out_features: 2", ""), 6, 5, "layers[2]",
     "linear: missing required key 'out_features'"),
    ("negative_width", GOOD.replace("out_channels: 4", "out_channels: -4"), 4, 44, "layers[0].out_channels",
     "greater than 0 (got -4)"),
    ("wrong_type", GOOD.replace("out_channels: 4", "out_channels: four"), 4, 44, "layers[0].out_channels",
     "valid integer"),
    ("bool_for_int", GOOD.replace("kernel_size: 3", "kernel_size: true"), 4, 60, "layers[0].kernel_size",
     "got True"),
    ("bad_padding_word", GOOD.replace("kernel_size: 3}", "kernel_size: 3, padding: full}"), 4, 72,
     "layers[0].padding", "expected 'same' or 'valid'"),
    ("pair_too_long", GOOD.replace("kernel_size: 3", "kernel_size: [3, 3, 3]"), 4, 60,
     "layers[0].kernel_size", "at most 2 items"),
    ("unknown_input_ref", GOOD.replace("op: flatten}", "op: flatten, inputs: [cnov]}"), 5, 39,
     "layers[1].inputs", "unknown input 'cnov' (did you mean 'conv'?)"),
    ("forward_ref", GOOD.replace("op: flatten}", "op: flatten, inputs: fc}"), 5, 39, "layers[1].inputs",
     "input 'fc' is defined later"),
    ("duplicate_layer", GOOD.replace("name: flat,", "name: conv,"), 5, 6, "layers[1].name",
     "duplicate layer name 'conv' (already used at layers[0])"),
    ("layer_named_like_input", GOOD.replace("name: flat,", "name: image,"), 5, 6, "layers[1].name",
     "duplicate layer name 'image' (already used as a graph input)"),
    ("bad_layer_name", GOOD.replace("name: flat,", "name: flat-1,"), 5, 6, "layers[1].name",
     "must be an identifier"),
    ("op_missing", GOOD.replace("name: flat, op: flatten", "name: flat"), 5, 5, "layers[1]",
     "missing required key 'op'"),
    ("op_not_string", GOOD.replace("op: flatten", "op: [flatten]"), 5, 22, "layers[1].op",
     "op must be a string"),
    ("layer_not_mapping", GOOD.replace("  - {name: flat, op: flatten}", "  - flatten"), 5, 5,
     "layers[1]", "a layer must be a mapping"),
    ("unknown_top_key", GOOD + "optimiser: sgd\n", 8, 1, "optimiser", "unknown key 'optimiser'"),
    ("reserved_system_key", GOOD + "losses: {bce: {}}\n", 8, 1, "losses",
     "'losses' belongs to system specs, which have networks: instead of layers: (load one with "
     "spdnn.load_system, train it with spdnn train"),
    ("missing_layers", "name: t\ninputs: {x: [3]}\n", 1, 1, "", "missing required key 'layers'"),
    ("empty_layers", "name: t\ninputs: {x: [3]}\nlayers: []\n", 3, 9, "layers", "at least 1 item"),
    ("missing_inputs", "name: t\nlayers: [{op: relu}]\n", 1, 1, "", "missing required key 'inputs'"),
    ("bad_input_shape", GOOD.replace("[1, 8, 8]", "[1, 0, 8]"), 2, 17, "inputs.image",
     "an input shape is a list of positive ints"),
    ("bad_model_name", GOOD.replace("name: tiny", "name: tiny model"), 1, 7, "name",
     "model name 'tiny model' must be an identifier"),
    ("output_unknown_layer", GOOD.replace("logits: fc", "logits: fcc"), 7, 19, "outputs.logits",
     "output refers to unknown layer 'fcc' (did you mean 'fc'?)"),
    ("output_name_clash", GOOD.replace("logits: fc", "fc: fc"), 7, 11, "outputs.fc",
     "output name 'fc' is also a layer or input name"),
    ("unknown_var", GOOD.replace("out_channels: 4", "out_channels: $width"), 4, 44,
     "layers[0].out_channels", "unknown variable 'width'; no vars are defined"),
    ("var_typo", "vars: {width: 4}\n" + GOOD.replace("out_channels: 4", "out_channels: $widht"), 5, 44,
     "layers[0].out_channels", "unknown variable 'widht' (did you mean 'width'?)"),
    ("bad_expression", GOOD.replace("out_channels: 4", "out_channels: $__import__('os')"), 4, 44,
     "layers[0].out_channels", "only min, max, abs, int and round can be called"),
    ("defaults_unknown_op", "defaults: {conv: {padding: same}}\n" + GOOD, 1, 12, "defaults.conv",
     "defaults for unknown op 'conv' (did you mean 'conv2d'?)"),
    ("defaults_unknown_attr", "defaults: {conv2d: {pad: same}}\n" + GOOD, 1, 21, "defaults.conv2d.pad",
     "conv2d has no attribute 'pad'; did you mean 'padding'?"),
    ("repeat_bad_count", GOOD.replace("  - {name: flat, op: flatten}",
                                      "  - repeat: 0\n    layers: [{op: relu}]\n  - {name: flat, op: flatten}"),
     5, 13, "layers[1].repeat", "repeat count must be a positive integer"),
    ("repeat_unknown_key", GOOD.replace("  - {name: flat, op: flatten}",
                                        "  - repeat: 2\n    times: 2\n    layers: [{op: relu}]\n  - {name: flat, op: flatten}"),
     6, 5, "layers[1].times", "unknown key 'times'"),
    ("repeat_duplicate_names", GOOD.replace("  - {name: flat, op: flatten}",
                                            "  - repeat: 2\n    layers: [{name: r, op: relu}]\n  - {name: flat, op: flatten}"),
     6, 15, "layers[1].layers[0] (i=2).name", "duplicate layer name 'r'"),
    ("arity_too_many", GOOD.replace("op: flatten}", "op: flatten, inputs: [conv, image]}"), 5, 39,
     "layers[1].inputs", "flatten takes 1 input, got 2"),
    ("bad_port", GOOD.replace("op: flatten}", "op: flatten, inputs: 'conv:indices'}"), 5, 39,
     "layers[1].inputs", "'conv' (conv2d) has no output 'indices'; its outputs are 0:y"),
    ("first_layer_needs_input", GOOD.replace("inputs: {image: [1, 8, 8]}", "inputs: {a: [1, 8, 8], b: [1, 8, 8]}"),
     4, 5, "layers[0]", "the first layer must say which input it takes"),
    ("shape_mismatch_names_both_layers", GOOD.replace("op: flatten}", "op: relu}"), 6, 5, "layers[2]",
     "layer 'fc' (linear) fed by 'flat' (relu, output (N, 4, 6, 6)): linear expects an (N, features) input"),
    ("declared_in_features", GOOD.replace("out_features: 2", "out_features: 2, in_features: 100"), 6, 5,
     "layers[2]", "layer 'fc' (linear) fed by 'flat' (flatten, output (N, 144)): declares in_features=100"),
    ("kernel_too_big", GOOD.replace("kernel_size: 3", "kernel_size: 11"), 4, 5, "layers[0]",
     "kernel 11x11 does not fit its 8x8 input"),
    ("attr_validator", GOOD.replace("kernel_size: 3", "kernel_size: 3, groups: 3"), 4, 5, "layers[0]",
     "out_channels (4) must be divisible by groups (3)"),
    ("wrong_version", "spdnn: 2\n" + GOOD, 1, 8, "spdnn", "expected 1"),
    ("duplicate_key", GOOD.replace("kernel_size: 3}", "kernel_size: 3, kernel_size: 5}"), 4, 63,
     "layers[0].kernel_size", "duplicate key 'kernel_size'"),
    ("yaml_syntax", GOOD.replace("[1, 8, 8]}", "[1, 8, 8}"), 2, 25, "", "invalid YAML"),
    ("tab_indent", GOOD.replace("  - {name: flat", "\t- {name: flat"), 5, 1, "", "invalid YAML"),
    # Keys that look like pydantic's union tags ("[" inside, "int" prefix) are still the user's.
    ("bracket_in_top_key", GOOD.replace("inputs:", "i[puts:"), 2, 1, "i[puts",
     "unknown key 'i[puts'; did you mean 'inputs'?"),
    ("input_decl_unknown_key", GOOD.replace("{image: [1, 8, 8]}", "{int_x: {shape: [1, 8, 8], shap: 1}}")
     .replace("op: conv2d,", "op: conv2d, inputs: int_x,"), 2, 36, "inputs.int_x.shap",
     "unknown key 'shap'; did you mean 'shape'?"),
]


@pytest.mark.parametrize("text,line,col,where,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_spec_is_reported_with_location(text, line, col, where, message):
    problems = problems_of(text)
    matching = [p for p in problems if message in p.message]
    assert matching, f"no problem mentions {message!r}: {[str(p) for p in problems]}"
    p = matching[0]
    assert (p.file, p.line, p.where) == ("t.yaml", line, where), str(p)
    assert p.column == col, str(p)


def test_at_least_thirty_kinds_of_bad_input_are_covered():
    assert len(CASES) >= 30


def test_all_problems_are_reported_at_once():
    text = GOOD.replace("op: flatten", "op: flaten").replace("out_features: 2", "out_feature: 2")
    problems = problems_of(text)
    assert len(problems) == 3  # unknown op, unknown attribute, missing out_features
    message = str(spdnn.SpecError(problems))
    assert message.startswith("3 problems in spec:")
    assert "t.yaml:5:22: layers[1].op: unknown op 'flaten'" in message


def test_problem_in_repeat_is_reported_once():
    text = GOOD.replace("  - {name: flat, op: flatten}",
                        "  - repeat: 3\n    layers: [{op: relu, slope: 1}]\n  - {name: flat, op: flatten}")
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].message.endswith("(in all 3 repetitions)")


def test_shape_problems_are_reported_together_with_other_problems():
    text = GOOD.replace("op: flatten", "op: flaten").replace("out_features: 2}", "out_features: 2, inputs: conv}")
    problems = problems_of(text)
    assert [p.line for p in problems] == [5, 6]
    assert "unknown op 'flaten'" in problems[0].message
    assert "layer 'fc' (linear) fed by 'conv' (conv2d, output (N, 4, 6, 6))" in problems[1].message


def test_layers_after_a_broken_layer_are_not_reported_again():
    problems = problems_of(GOOD.replace("op: flatten", "op: flaten"))
    assert len(problems) == 1
