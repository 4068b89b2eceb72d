"""Generate the hostile spec corpus: files that must end in exit code 2 with a located message.

Each case is a spec text with the marker ``<@>`` where the error must be reported (the marker is
removed; its line and column become the expected location) and a fragment of the expected
message. Cases without a marker expect a file-level message (no line).

    python tests/hostile/make_corpus.py            # writes tests/hostile/cases/ + expected.yaml
    python tests/hostile/make_corpus.py --all DIR  # also the large cases (not committed)

``tests/test_hostile_specs.py`` generates the corpus afresh and runs every case.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

MARK = "<@>"
#: Cases larger than this are generated at test time only, never committed.
COMMIT_BYTES = 16_384


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    line: int  # 0: the message is about the whole file
    column: int
    fragment: str


def case(name: str, text: str, fragment: str) -> Case:
    if MARK in text:
        before = text[: text.index(MARK)]
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        text = text.replace(MARK, "", 1)
    else:
        line = column = 0
    return Case(name, text.encode("utf-8"), line, column, fragment)


def q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


HEAD = """name: t
vars:
  width: 4
  kernels: [1, 2, 3]
  text: ab
  big: .inf
  bad: .nan
"""
INPUTS = "inputs: {x: [3, 8, 8]}\n"
TAIL = """  - {name: fl, op: flatten}
  - {name: fc, op: linear, out_features: 10}
"""
C1 = "  - {name: c1, op: conv2d, out_channels: 4, kernel_size: 3}\n"


def net(layers: str, outputs: str = "", inputs: str = INPUTS, head: str = HEAD) -> str:
    return head + inputs + "layers:\n" + layers + outputs


# (expression, message fragment): each fails wherever it is used.
EXPRESSIONS = [
    ("min([])", "min() needs at least one number"),
    ("max()", "max() needs at least one number"),
    ("max([])", "max() needs at least one number"),
    ("min(3)", "min() takes a list or at least two numbers"),
    ("max(text)", "max() takes a list or at least two numbers"),
    ("min([1, text])", "min() compares numbers"),
    ("min(true, 1)", "min() compares numbers"),
    ('abs("a")', "abs() takes one number"),
    ("abs()", "abs() takes one number"),
    ("abs(1, 2)", "abs() takes one number"),
    ("abs(true)", "abs() takes one number"),
    ('-"a"', "unary - needs a number"),
    ("+kernels", "unary + needs a number"),
    ('int("abc")', "int() of a string needs decimal digits"),
    ('int("1" * 40)', "int() of a string needs decimal digits"),
    ("int(kernels)", "int() takes one number"),
    ("int(big)", "big is inf; expected a finite number"),
    ("int(bad)", "bad is nan; expected a finite number"),
    ('round(width, "2")', "round()'s decimals must be an integer"),
    ("round(2.5, 10**9)", "(int_digits)"),
    ("round()", "round() takes a number"),
    ("round(1, 2, 3)", "round() takes a number"),
    ("round(text)", "round() takes a number"),
    (" + ".join(["1"] * 1000), "(expr_chars)"),
    (" + ".join(["1"] * 60), "(expr_depth)"),
    ("-" * 10000 + "1", "(expr_chars)"),
    ("-" * 100 + "1", "(expr_depth)"),
    ("(" * 300 + "1" + ")" * 300, "invalid expression"),
    ("[" * 100 + "]" * 100, "(expr_depth)"),
    ("9**9**9", "(int_digits)"),
    ("10**31", "(int_digits)"),
    ("2**200", "(int_digits)"),
    ("width * 10**29 * 10**29", "(int_digits)"),
    ('"a" * 10**9', "(seq_items)"),
    ("[0] * 10**8", "(seq_items)"),
    ("kernels * 100000", "(seq_items)"),
    ("[kernels, kernels] * 50000", "(seq_items)"),
    ("text * 1.5", "can only be repeated an integer number of times"),
    ("text * text", "can only be repeated an integer number of times"),
    ("1 / 0", "division by zero"),
    ("width // 0", "division by zero"),
    ("width % 0", "division by zero"),
    ("0 ** -1", "0 cannot be raised to a negative power"),
    ("(-8) ** 0.5", "not a real number"),
    ("1e308 * 10", "not a finite number"),
    ("1e999", "not a finite number"),
    ("2.0 ** 5000", "overflows"),
    ('"a" + 1', "+ needs two numbers"),
    ("[1] + 2", "+ needs two numbers"),
    ("kernels - 1", "- needs two numbers"),
    ("text / 2", "/ needs two numbers"),
    ("true + 1", "+ needs two numbers"),
    ("width.real", "attribute is not supported"),
    ("width.__class__", "attribute is not supported"),
    ('__import__("os")', "only min, max, abs, int and round can be called"),
    ("open(text)", "only min, max, abs, int and round can be called"),
    ("sum(kernels)", "only min, max, abs, int and round can be called"),
    ("kernels.count(1)", "only min, max, abs, int and round can be called"),
    ("(lambda: 1)()", "only min, max, abs, int and round can be called"),
    ("lambda: 1", "lambda is not supported"),
    ("[i for i in kernels]", "listcomp is not supported"),
    ("width if width else 1", "ifexp is not supported"),
    ("width < 2", "compare is not supported"),
    ("not width", "operator Not is not supported"),
    ("~width", "operator Invert is not supported"),
    ("width and 1", "boolop is not supported"),
    ("width << 2", "operator LShift is not supported"),
    ("width | 1", "operator BitOr is not supported"),
    ("kernels[0:1]", "slices are not supported"),
    ("kernels[10]", "index 10 is out of range"),
    ("kernels[-4]", "index -4 is out of range"),
    ('kernels["a"]', "a list index must be an integer"),
    ("kernels[true]", "a list index must be an integer"),
    ("kernels[1.0]", "a list index must be an integer"),
    ("width[0]", "only lists can be indexed"),
    ("kernels[0][0]", "only lists can be indexed"),
    ("unknown_var", "unknown variable 'unknown_var'"),
    ("widht", "did you mean 'width'"),
    ("[{1: 2}]", "dict is not supported"),
    ("[{1}]", "set is not supported"),
    ('f"x{width}"', "joinedstr is not supported"),
    ('b"x"', "the constant b'x' is not supported"),
    ("1j", "the constant 1j is not supported"),
    ("None", "the constant None is not supported"),
    ("...", "the constant Ellipsis is not supported"),
    ("(width := 3)", "namedexpr is not supported"),
    ("max(*kernels)", "takes plain positional arguments"),
    ("min(kernels, key=abs)", "takes plain positional arguments"),
    ("", "invalid expression"),
    ("1 +", "invalid expression"),
    ("width width", "invalid expression"),
    ("'unterminated", "invalid expression"),
    ("width\n+ 1", "an expression must be on one line"),
]


def expression_cases() -> list[Case]:
    out = []
    for i, (expr, fragment) in enumerate(EXPRESSIONS):
        var = HEAD + f"  v: {MARK}{q('$' + expr)}\n" + INPUTS + "layers:\n" + C1 + TAIL
        out.append(case(f"expr_var_{i:03d}", var, fragment))
        attr = f"  - {{name: c1, op: conv2d, out_channels: {MARK}{q('$' + expr)}, kernel_size: 3}}\n"
        out.append(case(f"expr_attr_{i:03d}", net(attr + TAIL), fragment))
        if i % 4 == 0:
            interp = f"  - {{name: {MARK}{q('c${' + expr.replace('}', ')') + '}')}, op: relu}}\n"
            if "}" not in expr:
                out.append(case(f"expr_interp_{i:03d}", net(C1 + interp + TAIL), fragment))
    return out


def reference_cases() -> list[Case]:
    pool = "  - {name: pool, op: max_pool2d, kernel_size: 2}\n"
    refs = [
        ("c1:\u00b2", "after ':' comes an output port"), ("c1:9", "has no output '9'"),
        ("c1:abc", "has no output 'abc'"), ("c1:", "got nothing"), ("c1::0", "after ':' comes an output port"),
        ("c1:0:0", "after ':' comes an output port"), ("c1: 0", "after ':' comes an output port"),
        ("c1:-1", "after ':' comes an output port"), ("c1:99999999999", "after ':' comes an output port"),
        ("pool:indices", "need return_indices: true"), ("pool:1", "need return_indices: true"),
        (":0", "unknown input ''"), ("", "unknown input ''"), ("nope", "unknown input 'nope'"),
        ("fc", "is defined later"), ("c1:\u0663", "after ':' comes an output port"),
    ]
    out = []
    for i, (ref, fragment) in enumerate(refs):
        layer = f"  - {{name: r, op: relu, inputs: {MARK}[{q(ref)}]}}\n"
        out.append(case(f"ref_input_{i:02d}", net(C1 + pool + layer + TAIL), fragment))
        outputs = f"outputs: {{y: {MARK}{q(ref)}}}\n"
        if ref != "fc":
            out.append(case(f"ref_output_{i:02d}", net(C1 + pool + TAIL, outputs),
                            fragment.replace("unknown input", "unknown layer")))
    out += [
        case("ref_not_string", net(C1 + f"  - {{name: r, op: relu, inputs: {MARK}[1]}}\n" + TAIL),
             "inputs must be a layer name or a list of them"),
        case("ref_null", net(C1 + f"  - {{name: r, op: relu, inputs: {MARK}[null]}}\n" + TAIL),
             "inputs must be a layer name or a list of them"),
        case("output_is_input", net(C1 + TAIL, f"outputs: {{y: {MARK}x}}\n"), "refers to the graph input 'x'"),
        case("outputs_empty_list", net(C1 + TAIL, f"outputs: {MARK}[]\n"), "outputs is empty"),
        case("outputs_empty_map", net(C1 + TAIL, f"outputs: {MARK}{{}}\n"), "outputs is empty"),
        case("outputs_empty_str", net(C1 + TAIL, f"outputs: {MARK}''\n"), "outputs is empty"),
        case("add_one_input", net(C1 + f"  - {{name: a, op: add, inputs: {MARK}[c1]}}\n" + TAIL),
             "add takes at least 2 inputs, got 1"),
        case("concat_one_input", net(C1 + "  - {name: a, op: concat, inputs: <@>[c1]}\n" + TAIL),
             "concat takes at least 2 inputs, got 1"),
        case("mul_one_input", net(C1 + "  - {name: a, op: mul, inputs: <@>c1}\n" + TAIL),
             "mul takes at least 2 inputs, got 1"),
    ]
    return out


def name_cases() -> list[Case]:
    long = "n" * 300
    out = [
        case("layer_named_output", net(C1 + f"  - {{{MARK}name: output, op: relu}}\n"),
             "clashes with the network's default output"),
        case("model_name_long", f"name: {MARK}{long}\n" + INPUTS + "layers:\n" + C1, "(name_chars)"),
        case("model_name_dash", f"name: {MARK}a-b\n" + INPUTS + "layers:\n" + C1, "must be an identifier"),
        case("model_name_path", f"name: {MARK}../../etc/x\n" + INPUTS + "layers:\n" + C1, "must be an identifier"),
        case("model_name_empty", f"name: {MARK}''\n" + INPUTS + "layers:\n" + C1, "at least 1 character"),
        case("model_name_keyword", f"name: {MARK}class\n" + INPUTS + "layers:\n" + C1, "must be an identifier"),
        case("model_name_list", f"name: {MARK}[a]\n" + INPUTS + "layers:\n" + C1, "valid string"),
        case("input_name_long", f"name: t\ninputs: {{{MARK}{long}: [3]}}\nlayers:\n  - {{op: relu}}\n", "(name_chars)"),
        case("input_name_dash", f"name: t\ninputs: {{{MARK}a-b: [3]}}\nlayers:\n  - {{op: relu}}\n", "must be an identifier"),
        case("output_name_long", net(C1 + TAIL, f"outputs: {{{MARK}{long}: fc}}\n"), "(name_chars)"),
        case("output_name_keyword", net(C1 + TAIL, f"outputs: {{{MARK}class: fc}}\n"), "must be an identifier"),
        case("output_name_is_layer", net(C1 + TAIL, f"outputs: {{{MARK}fc: fc}}\n"), "is also a layer or input name"),
    ]
    for i, bad in enumerate([long, "a-b", "1a", "\u00e9t\u00e9", "class", "a b", "x.y", "", "None"]):
        out.append(case(f"layer_name_{i}", net(C1 + f"  - {{{MARK}name: {q(bad)}, op: relu}}\n" + TAIL),
                        "(name_chars)" if bad == long else "must be an identifier"))
    out.append(case("layer_name_duplicate", net(C1 + f"  - {{{MARK}name: c1, op: relu}}\n" + TAIL),
                    "duplicate layer name 'c1'"))
    out.append(case("layer_name_is_input", net(C1 + f"  - {{{MARK}name: x, op: relu}}\n" + TAIL),
                    "duplicate layer name 'x'"))
    return out


def size_cases() -> list[Case]:
    simple = "name: t\ninputs: {{x: {shape}}}\nlayers:\n{layers}"
    out = [
        case("conv_1e9_channels", net(f"  - {MARK}{{name: c1, op: conv2d, out_channels: 1000000000, kernel_size: 3}}\n"),
             "c1 would have 2.8e10 parameters"),
        case("linear_1e12", simple.format(shape="[10]", layers=f"  - {MARK}{{name: fc, op: linear, out_features: 1000000000000}}\n"),
             "fc would have 1.1e13 parameters (40.0 TiB as float32); limit 2,000,000,000 (max_params, raise with --max-params)"),
        case("channels_30_digits", net(f"  - {MARK}{{name: c1, op: conv2d, out_channels: {10**29}, kernel_size: 3}}\n"),
             "(max_params"),
        case("input_dim_1e12", f"name: t\ninputs: {{{MARK}x: [1000000000000]}}\nlayers:\n  - {{op: relu}}\n",
             "has a dimension of 1,000,000,000,000; limit 1,000,000 (max_dim)"),
        case("input_elements_int64", f"name: t\ninputs: {{{MARK}x: [1000000, 1000000, 1000000, 1000000]}}\nlayers:\n  - {{op: relu}}\n",
             "(max_elements, raise with --max-elements)"),
        case("input_elements", f"name: t\ninputs: {{{MARK}x: [100000, 100000]}}\nlayers:\n  - {{op: relu}}\n",
             "1.0e10 elements per sample"),
        case("upsample_big", net(f"  - {MARK}{{name: u, op: upsample, scale_factor: 10000}}\n"), "(max_elements"),
        case("upsample_dim", net(f"  - {MARK}{{name: u, op: upsample, scale_factor: [1000000, 1]}}\n"), "(max_dim)"),
        case("repeat_unpool_big", net(f"  - {MARK}{{name: u, op: repeat_unpool, factor: 1000000}}\n"), "(max_dim)"),
        case("pad_big", net(f"  - {MARK}{{name: p, op: pad, padding: 1000000}}\n"), "(max_dim)"),
        case("conv_transpose_big", net(f"  - {MARK}{{name: t, op: conv_transpose2d, out_channels: 2, kernel_size: 3, stride: 1000000}}\n"),
             "(max_dim)"),
        case("total_params", simple.format(shape="[30000]", layers=(
            "  - {name: a, op: linear, out_features: 30000}\n  - {name: b, op: linear, out_features: 30000}\n"
            f"  - {MARK}{{name: c, op: linear, out_features: 30000}}\n")), "the network reaches 2.7e9 parameters at layer 'c'"),
        case("int_5000_digits", net(f"  - {{name: c1, op: conv2d, out_channels: {MARK}{'9' * 5000}, kernel_size: 3}}\n"),
             "(int_digits)"),
        case("int_var_5000_digits", HEAD.replace("  width: 4\n", f"  width: {MARK}{'9' * 5000}\n") + INPUTS
             + "layers:\n" + C1, "(int_digits)"),
        case("int_40_digits", net(f"  - {{name: c1, op: conv2d, out_channels: {MARK}{10**40}, kernel_size: 3}}\n"),
             "integer of 41 digits"),
        case("sexagesimal", net(f"  - {{name: c1, op: conv2d, out_channels: {MARK}{'1' + ':59' * 100}, kernel_size: 3}}\n"),
             "(int_digits)"),
    ]
    return out


def yaml_cases() -> list[Case]:
    deep = "name: " + "[" * 50 + MARK + "[" * 950 + "]" * 1000 + "\n"
    block = "".join("  " * i + "a:\n" for i in range(51)) + "  " * 51 + MARK + "b: 1\n"
    out = [
        case("nested_flow_1000", deep, "(spec_depth)"),
        case("nested_flow_mappings", "name: " + "{a: " * 50 + MARK + "{a: " * 100 + "1" + "}" * 150 + "\n", "(spec_depth)"),
        case("nested_block_mappings", block, "(spec_depth)"),
        case("int_tag_ten", net(f"  - {{name: c1, op: conv2d, out_channels: {MARK}!!int ten, kernel_size: 3}}\n"),
             "cannot read 'ten' as int"),
        case("float_tag_abc", net(f"  - {{name: c1, op: leaky_relu, negative_slope: {MARK}!!float abc}}\n"),
             "cannot read 'abc' as float"),
        case("bool_tag", net(f"  - {{name: c1, op: conv2d, out_channels: 4, kernel_size: 3, bias: {MARK}!!bool maybe}}\n"),
             "cannot read 'maybe' as bool"),
        case("timestamp_tag", f"name: {MARK}!!timestamp 'not a date'\n" + INPUTS + "layers:\n" + C1, "as timestamp"),
        case("binary_tag", f"name: {MARK}!!binary aGVsbG8=\n" + INPUTS + "layers:\n" + C1, "unsupported YAML value of type bytes"),
        case("date_value", net(f"  - {{name: c1, op: conv2d, out_channels: {MARK}2001-01-01, kernel_size: 3}}\n"),
             "unsupported YAML value of type date"),
        case("python_tag", f"name: {MARK}!!python/object/apply:os.system ['true']\n", "is not allowed in specs"),
        case("python_scalar_tag", f"name: {MARK}!!python/name:os.system ''\n", "cannot read"),
        case("local_tag", f"name: {MARK}!foo bar\n", "cannot read 'bar' as !foo"),
        case("set_tag", f"name: t\nvars: {MARK}!!set {{a, b}}\n", "is not allowed in specs"),
        case("omap_tag", f"name: t\nvars: {MARK}!!omap [a: 1]\n", "is not allowed in specs"),
        case("anchor", f"name: t\nvars: {{a: {MARK}&x 1, b: 2}}\n", "anchors"),
        case("alias", f"name: t\nvars: {{a: 1, b: {MARK}*x}}\n", "aliases"),
        case("alias_key", f"name: t\nvars: {{{MARK}*x : 1}}\n", "aliases"),
        case("merge_key", f"name: t\nvars: {{{MARK}<<: {{a: 1}}}}\n", "cannot read '<<' as merge"),
        case("duplicate_key", f"name: t\n{MARK}name: u\n", "duplicate key 'name'"),
        case("int_key", f"name: t\nvars: {{{MARK}1: a}}\n", "mapping keys must be strings"),
        case("null_key", f"name: t\nvars: {{{MARK}~: a}}\n", "mapping keys must be strings"),
        case("bool_key", f"name: t\nvars: {{{MARK}true: a}}\n", "mapping keys must be strings"),
        case("list_key", f"name: t\nvars: {{{MARK}[a]: b}}\n", "mapping keys must be strings"),
        case("complex_key", f"name: t\nvars:\n  ? {MARK}{{a: 1}}\n  : b\n", "mapping keys must be strings"),
        case("two_documents", f"name: t\n{MARK}---\nname: u\n", "expected a single document"),
        case("empty", "", "is empty"),
        case("only_comment", "# nothing\n", "is empty"),
        case("null_document", f"{MARK}~\n", "the document is a null"),
        case("list_document", f"{MARK}- a\n- b\n", "the document is a list"),
        case("scalar_document", f"{MARK}hello\n", "the document is a str"),
        case("unclosed_flow", f"name: [a, b\n{MARK}", "invalid YAML"),
        case("unclosed_quote", f'name: "abc\n{MARK}', "invalid YAML"),
        case("bad_indent", f"name: t\n  inputs{MARK}: x\n", "invalid YAML"),
        case("tab_indent", f"name: t\nvars:\n{MARK}\ta: 1\n", "invalid YAML"),
        case("control_char", f"name: t{MARK}\x07\n", "control character U+0007"),
        case("nan_slope", net(f"  - {{name: r, op: leaky_relu, negative_slope: {MARK}.nan}}\n"), "finite number"),
        case("inf_alpha", net(f"  - {{name: r, op: elu, alpha: {MARK}.inf}}\n"), "finite number"),
        case("nan_alpha", net(f"  - {{name: r, op: elu, alpha: {MARK}.NaN}}\n"), "finite number"),
        case("nan_pad_value", net(f"  - {{name: p, op: pad, padding: 1, value: {MARK}.nan}}\n"), "finite number"),
        case("inf_pad_value", net(f"  - {{name: p, op: pad, padding: 1, value: {MARK}-.inf}}\n"), "finite number"),
        case("huge_float", net(f"  - {{name: r, op: leaky_relu, negative_slope: {MARK}1.0e+99999}}\n"), "finite number"),
        case("nan_dropout", net(f"  - {{name: r, op: dropout, p: {MARK}.nan}}\n"), "finite number"),
        case("nan_eps", net(C1 + f"  - {{name: b, op: batch_norm, eps: {MARK}.nan}}\n"), "finite number"),
        case("nan_expr_var", HEAD + INPUTS + "layers:\n" + f"  - {{name: r, op: elu, alpha: {MARK}$bad}}\n",
             "bad is nan"),
    ]
    return out


def type_cases() -> list[Case]:
    body = INPUTS + "layers:\n" + C1
    out = [
        case("version_true", f"spdnn: {MARK}true\nname: t\n" + body, "the format version is the integer 1"),
        case("version_float", f"spdnn: {MARK}1.5\nname: t\n" + body, "the format version is the integer 1"),
        case("version_one_float", f"spdnn: {MARK}1.0\nname: t\n" + body, "the format version is the integer 1"),
        case("version_string", f"spdnn: {MARK}'1'\nname: t\n" + body, "the format version is the integer 1"),
        case("version_2", f"spdnn: {MARK}2\nname: t\n" + body, "expected 1"),
        case("out_channels_true", net(f"  - {{name: c1, op: conv2d, out_channels: {MARK}true, kernel_size: 3}}\n"),
             "expected a number, not a boolean"),
        case("kernel_true", net(f"  - {{name: c1, op: conv2d, out_channels: 4, kernel_size: {MARK}[true, 3]}}\n"),
             "expected a number, not a boolean"),
        case("slope_nan_text", net(f"  - {{name: r, op: leaky_relu, negative_slope: {MARK}'nan'}}\n"),
             "expected a finite number"),
        case("slope_inf_text", net(f"  - {{name: r, op: elu, alpha: {MARK}-Infinity}}\n"),
             "expected a finite number"),
        case("slope_true", net(f"  - {{name: r, op: leaky_relu, negative_slope: {MARK}false}}\n"),
             "expected a number, not a boolean"),
        case("features_float", net(C1 + "  - {name: fl, op: flatten}\n"
                                   f"  - {{name: fc, op: linear, out_features: {MARK}2.5}}\n"), "integer"),
        case("axis_true", net(C1 + f"  - {{name: a, op: concat, axis: {MARK}true, inputs: [c1, c1]}}\n"),
             "expected a number, not a boolean"),
        case("shape_true", f"name: t\ninputs: {{x: {MARK}[true, 3]}}\nlayers:\n  - {{op: relu}}\n",
             "an input shape is a list of positive ints"),
        case("repeat_true", net(f"  - repeat: {MARK}true\n    layers: [{{op: relu}}]\n"), "valid integer"),
        case("repeat_float", net(f"  - repeat: {MARK}1.5\n    layers: [{{op: relu}}]\n"), "valid integer"),
        case("repeat_zero", net(f"  - repeat: {MARK}0\n    layers: [{{op: relu}}]\n"), "positive integer"),
        case("repeat_negative", net(f"  - repeat: {MARK}-3\n    layers: [{{op: relu}}]\n"), "positive integer"),
        case("repeat_text", net(f"  - repeat: {MARK}abc\n    layers: [{{op: relu}}]\n"), "positive integer"),
        case("repeat_expr_list", net(f"  - repeat: {MARK}$kernels\n    layers: [{{op: relu}}]\n"), "positive integer"),
        case("repeat_start_true", net(f"  - repeat: 2\n    start: {MARK}true\n    layers: [{{op: relu}}]\n"), "valid integer"),
        case("op_number", net(f"  - {{name: r, op: {MARK}3}}\n"), "op must be a string"),
        case("op_unknown", net(f"  - {{name: r, op: {MARK}relux}}\n"), "unknown op 'relux'"),
        case("layer_scalar", net(f"  - {MARK}relu\n"), "a layer must be a mapping"),
        case("layers_scalar", HEAD + INPUTS + f"layers: {MARK}relu\n", "valid list"),
        case("inputs_empty", f"name: t\ninputs: {MARK}{{}}\nlayers:\n  - {{op: relu}}\n", "at least 1 item"),
        case("input_shape_zero", f"name: t\ninputs: {{x: {MARK}[0, 3]}}\nlayers:\n  - {{op: relu}}\n",
             "an input shape is a list of positive ints"),
        case("newline_in_interp", net(f"  - {{name: {MARK}\"c${{width\\n}}\", op: relu}}\n"),
             "an expression must be on one line"),
        case("round_huge_digits", HEAD.replace("  width: 4\n", f"  width: {MARK}$round(2.5, 10**9)\n") + INPUTS
             + "layers:\n" + C1, "(int_digits)"),
    ]
    return out


def limit_cases(big: bool) -> list[Case]:
    relu = "    layers: [{op: relu}]\n"
    nested = (f"  - {MARK}repeat: 50\n    layers:\n      - repeat: 50\n        layers:\n"
              "          - repeat: 50\n            layers: [{op: relu}]\n")
    out = [
        case("repeat_100001", net(f"  - repeat: {MARK}100001\n" + relu), "(repeat_count)"),
        case("repeat_1e30", net(f"  - repeat: {MARK}{10**29}\n" + relu), "(repeat_count)"),
        case("nested_repeats_50", net(nested), "(layers)"),
        case("repeat_times_block", net(f"  - {MARK}repeat: 10000\n    layers: [{', '.join(['{op: relu}'] * 11)}]\n"),
             "(layers)"),
        case("unused_power_var", HEAD + f"  huge: {MARK}$9**9**9\n" + INPUTS + "layers:\n" + C1, "(int_digits)"),
        case("unused_string_var", HEAD + f"  huge: {MARK}$\"a\" * 10**9\n" + INPUTS + "layers:\n" + C1, "(seq_items)"),
        case("unused_list_var", HEAD + f"  huge: {MARK}$[0] * 10**8\n" + INPUTS + "layers:\n" + C1, "(seq_items)"),
        case("chained_list_vars", HEAD + "  l1: $[0] * 1000\n" + f"  l2: {MARK}$[l1] * 1000\n" + INPUTS
             + "layers:\n" + C1, "(seq_items)"),
        case("interp_big_list", HEAD + "  l1: $[0] * 5000\n" + INPUTS + "layers:\n"
             + f"  - {{name: {MARK}\"c${{l1}}\", op: relu}}\n", "too large to write into a string"),
    ]
    if big:
        values = ", ".join(["0"] * 250_000)
        # values counted: the root, name, t, vars, its mapping, v, the list, then the items:
        # item 199,993 is the 200,001st.
        prefix = "name: t\nvars: {v: [" + ", ".join(["0"] * 199_993)
        text = prefix + ", " + MARK + values[len(", ".join(["0"] * 199_993)) + 2:] + "]}\n"
        out.append(case("values_250k", text, "(spec_values)"))
        out.append(case("over_spec_bytes", "name: t\n# " + "x" * (3 * 1024 * 1024) + "\n", "(spec_bytes)"))
        out.append(case("long_model_name_1mb", f"name: {MARK}{'n' * 1_000_000}\n" + INPUTS + "layers:\n" + C1,
                        "(name_chars)"))
    return out


def binary_cases() -> list[Case]:
    return [
        Case("nul_bytes", b"name: t\x00\n", 0, 0, "binary file"),
        Case("latin1", "name: caf\xe9\n".encode("latin-1"), 1, 1, "is not UTF-8 text"),
        Case("random_bytes", bytes(range(1, 256)) * 4, 2, 1, "is not UTF-8 text (byte 0x80)"),
    ]


def all_cases(big: bool = False) -> list[Case]:
    cases = (expression_cases() + reference_cases() + name_cases() + size_cases() + yaml_cases()
             + type_cases() + limit_cases(big) + binary_cases())
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def write(directory: Path, big: bool = False) -> list[Case]:
    """Write every case as DIR/<name>.yaml and DIR/expected.yaml; return the cases."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    cases = [c for c in all_cases(big) if big or len(c.data) <= COMMIT_BYTES]
    lines = ["# name: [exit code, line, column, message fragment]  (line 0: about the whole file)"]
    for c in cases:
        (directory / f"{c.name}.yaml").write_bytes(c.data)
        lines.append(f"{c.name}: [2, {c.line}, {c.column}, {json.dumps(c.fragment)}]")
    (directory / "expected.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cases


if __name__ == "__main__":
    big = "--all" in sys.argv
    rest = [a for a in sys.argv[1:] if a != "--all"]
    target = Path(rest[0]) if rest else Path(__file__).parent / "cases"
    print(f"wrote {len(write(target, big))} cases to {target}")
