"""Every citation in specs/ points at seed lines that exist and talk about what cites them.

Rules checked here:

* A citation is a line range ``L123`` or ``L123-130`` written in a ``source:``: the model-level mapping
  (each value but ``paper``), a layer's ``source`` (after repeat expansion) or an input's ``source``.
* The cited file is the model's ``source: {paper: seeds/...}``; every spec of a folder cites the same
  paper, which is the folder's default (used for its README and YAML comments). Only the folders in
  ``MULTI_PAPER`` (one small spec per building block, each from its own paper) cite several: there
  each spec's YAML text is checked against its own paper, and every README / expected.yml line that
  cites a range names its seed (``seed 003``).
* Each range lies inside the seed file, starts before it ends and spans at most ``MAX_SPAN`` lines (a
  citation points at a passage, not a chapter).
* Each cited range mentions what cites it (case-insensitive, hyphenated line breaks joined):
  a layer: a word for its op (``OP_WORDS``), its kernel size (``3x3``, ``3 × 3``, ``3 x 3``) or its
  width (``out_channels``, ``out_features``, a reshape's ``128 × 7 × 7``);
  an input: one of its spatial dimensions (all of them for a vector input);
  a model: anything a layer of the model would match.
* The model-level source cites at least one range; a layer's or input's source without a line range
  names where the fact comes from instead (a ``README`` decision or the shared ``reference``), and no
  source keeps an unexpanded ``{...}`` template.
* Every ``L<n>`` range in a folder's README and YAML text (comments, variants in subfolders and
  ``expected.yml`` included) lies inside its seed.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

import spdnn

#: The papers: ``shared/`` beside the checkout (``../shared`` from the main checkout, ``../../shared``
#: from a worktree under ``wt/``) or inside it.
SEEDS = next((d for d in (ROOT / "shared", ROOT.parent / "shared", ROOT.parent.parent / "shared")
              if (d / "seeds").is_dir()), None)
if SEEDS is None:
    pytest.skip("the seed papers (shared/seeds/) are not beside this checkout", allow_module_level=True)
MAX_SPAN = 40
RANGE = re.compile(r"\bL(\d+)(?:-L?(\d+))?\b")

#: Words that name each op in the papers (regexes, case-insensitive). A sigmoid output is also
#: evidenced by a binary cross-entropy loss, which needs outputs in (0, 1).
OP_WORDS: dict[str, list[str]] = {
    "conv2d": [r"conv"],
    "conv_transpose2d": [r"deconv", r"transpose", r"\btconv"],
    "linear": [r"dense", r"fully[ -]?connected", r"\bFC\d*\b", r"\blinear\b"],
    "batch_norm": [r"batch ?norm", r"bathnorm", r"normali[sz]", r"\bBN\b"],
    "relu": [r"relu", r"rectif"],
    "leaky_relu": [r"leaky", r"\blrelu"],
    "elu": [r"\belu\b"],
    "sigmoid": [r"sigmoid", r"logistic", r"binary cross"],
    "softmax": [r"softmax"],
    "tanh": [r"tanh"],
    "max_pool2d": [r"pool"],
    "avg_pool2d": [r"pool"],
    "repeat_unpool": [r"unpool", r"un-pool", r"repeat"],
    "upsample": [r"upsampl", r"interpolat"],
    "dropout": [r"drop-?out"],
    "gaussian_noise": [r"gaussian noise"],
    "minibatch_discrimination": [r"mini ?batch discrimination", r"MBDisc"],
    "concat": [r"concat", r"pair"],
    "max_unpool2d": [r"unpool", r"upsampl", r"indices"],
    "flatten": [r"flatten"],
    "reshape": [r"reshape"],
    "dynamic_conv2d": [r"generat\w* filters", r"base filters", r"dynamic filters", r"conv"],
    "log_filter_bank": [r"laplacian", r"\bLoG\b"],
    "adaptive_avg_pool2d": [r"pool"],
    "sample_conv2d": [r"conv"],
    "haar_pool": [r"wavelet pool", r"haar"],
    "haar_unpool": [r"unpool", r"haar wavelet synthesis"],
    "pad": [r"padding"],
    "identity": [],  # nothing to evidence: an identity layer cannot cite a range
    "concat": [r"concatenat"],
    "dynamic_conv2d": [r"repositor", r"base filter", r"dynamic"],
    "sample_conv2d": [r"G\(z\)", r"generated filter"],
    "haar_pool": [r"haar", r"wavelet pool"],
    "haar_unpool": [r"haar", r"wavelet unpool", r"synthesis"],
    "log_filter_bank": [r"laplacian"],
    "minibatch_discrimination": [r"mini ?-?batch discrimination", r"MBDisc"],
    "repeat_code": [r"conditional"],
}
#: Folders whose specs come from several papers (see the module docstring).
MULTI_PAPER = {"building_blocks"}
SEED_NAME = re.compile(r"\bseed (\d{3})\b")


def _size(*dims: int) -> str:
    """``3x3`` / ``3 × 3`` / ``3 x 3`` (or ``128 × 7 × 7``) as a regex."""
    return r"(?<![\d.])" + r"\s*[x×]\s*".join(str(d) for d in dims) + r"(?![\d.])"


def _number(n: int) -> str:
    return rf"(?<![\d.,]){n}(?![\d])"


def layer_words(node: spdnn.Node) -> list[str]:
    """Regexes that evidence ``node`` in a cited passage."""
    if node.op not in OP_WORDS:
        pytest.fail(f"layer {node.name!r}: no citation keywords for op {node.op!r}; add them to OP_WORDS")
    words = list(OP_WORDS[node.op])
    attrs = node.attrs
    kernel = getattr(attrs, "kernel_size", None)
    if kernel is not None:
        words.append(_size(*(kernel if isinstance(kernel, (tuple, list)) else (kernel, kernel))))
    if getattr(attrs, "factor", None):
        words.append(_size(attrs.factor, attrs.factor))
    for width in ("out_channels", "out_features"):
        if getattr(attrs, width, None):
            words.append(_number(getattr(attrs, width)))
    if node.op == "reshape":
        words.append(_size(*attrs.shape))
    return words


def input_words(shape: tuple[int, ...]) -> list[str]:
    dims = shape[1:] if len(shape) >= 3 else shape
    return [_number(d) for d in dims]


@cache
def seed_lines(paper: str) -> tuple[str, ...]:
    path = SEEDS / paper
    assert path.is_file(), f"cited paper {paper!r} not found under {SEEDS}"
    return tuple(path.read_text(encoding="utf-8").split("\n"))


def ranges(text: str) -> list[tuple[int, int]]:
    return [(int(m.group(1)), int(m.group(2) or m.group(1))) for m in RANGE.finditer(text)]


def passage(lines: tuple[str, ...], start: int, end: int) -> str:
    """The cited lines as one string, words broken across lines by a hyphen joined."""
    return re.sub(r"-\n", "", "\n".join(lines[start - 1:end])).replace("\n", " ")


def citations(graph: spdnn.Graph) -> list[tuple[str, str, list[str]]]:
    """(who, source text, keyword regexes) for every source of ``graph``."""
    nodes = [n for n in graph if n.op not in ("input", "output")]
    out = []
    model_words = list(dict.fromkeys(w for n in nodes for w in layer_words(n)))
    for key, value in graph.meta["source"].items():
        if key != "paper" and isinstance(value, str):
            out.append((f"model source.{key}", value, model_words))
    for node in graph:
        source = graph.meta_of(node.name).get("source")
        if source is None or node.op == "output":
            continue
        if node.op == "input":
            out.append((f"input {node.name!r}", source, input_words(node.attrs.shape)))
        else:
            out.append((f"layer {node.name!r} ({node.op})", source, layer_words(node)))
    return out


def folder_paper(folder: Path) -> str:
    papers = {spdnn.load_spec(p).meta["source"]["paper"] for p in sorted(folder.rglob("*.yaml"))
              if "systems" not in p.relative_to(folder).parts}
    assert len(papers) == 1, f"{folder.name}: specs cite several papers {sorted(papers)}"
    return papers.pop()


FOLDERS = sorted({p.parent for p in SPECS})
#: The shipped specs and their documented variants in subfolders (e.g. vacgan_mnist/table_order/).
#: System specs (specs/<paper>/systems/) are not network specs: tests/test_paper_systems.py runs them.
CITING = SPECS + sorted(p for p in ROOT.glob("specs/*/*/*.yaml") if p.parent.name != "systems")


@pytest.mark.parametrize("path", CITING, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_cited_range_exists_and_mentions_what_cites_it(path):
    graph = spdnn.load_spec(path)
    source = graph.meta.get("source")
    assert isinstance(source, dict) and isinstance(source.get("paper"), str), \
        f"{path}: model-level source must be a mapping with paper: seeds/..."
    lines = seed_lines(source["paper"])
    problems = []
    if not any(ranges(v) for k, v in source.items() if k != "paper" and isinstance(v, str)):
        problems.append("the model-level source cites no line range")
    for who, text, words in citations(graph):
        found = ranges(text)
        if not found and not who.startswith("model"):
            if "README" not in text and "reference" not in text:
                problems.append(f"{who}: {text!r} cites no line range and names no README decision or reference")
        if "{" in text or "}" in text:
            problems.append(f"{who}: {text!r} keeps an unexpanded template")
        for start, end in found:
            if not 1 <= start <= end <= len(lines):
                problems.append(f"{who}: L{start}-{end} is not inside {source['paper']} ({len(lines)} lines)")
                continue
            if end - start + 1 > MAX_SPAN:
                problems.append(f"{who}: L{start}-{end} spans {end - start + 1} lines (at most {MAX_SPAN})")
            cited = passage(lines, start, end)
            if not any(re.search(w, cited, re.IGNORECASE) for w in words):
                problems.append(f"{who}: none of {words} occurs in L{start}-{end}: {cited[:300]!r}")
    assert not problems, f"{path}:\n  " + "\n  ".join(problems)


def _outside(text: str, lines: tuple[str, ...], where: str) -> list[str]:
    return [f"{where}: L{start}-{end} (seed has {len(lines)} lines)"
            for start, end in ranges(text) if not 1 <= start <= end <= len(lines)]


def _named_seed(line: str) -> str | None:
    """The seed file a README line names (``seed 003``), if it names exactly one."""
    named = set(SEED_NAME.findall(line))
    if len(named) != 1:
        return None
    found = sorted(p.relative_to(SEEDS).as_posix() for p in (SEEDS / "seeds").glob(f"{named.pop()}_*.txt"))
    return found[0] if len(found) == 1 else None


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_line_number_in_readme_and_yaml_text_is_inside_the_seed(folder):
    problems = []
    if folder.name not in MULTI_PAPER:
        lines = seed_lines(folder_paper(folder))
        for path in [folder / "README.md", *sorted(folder.rglob("*.y*ml"))]:
            problems += _outside(path.read_text(encoding="utf-8"), lines, str(path.relative_to(folder)))
    else:
        for path in sorted(folder.rglob("*.yaml")):
            paper = spdnn.load_spec(path).meta["source"]["paper"]
            problems += _outside(path.read_text(encoding="utf-8"), seed_lines(paper), str(path.relative_to(folder)))
        for path in [folder / "README.md", folder / "expected.yml"]:
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not ranges(line):
                    continue
                paper = _named_seed(line)
                where = f"{path.name}:{number}"
                if paper is None:
                    problems.append(f"{where}: cites lines but names no single seed (seed 000 ... seed 004)")
                else:
                    problems += _outside(line, seed_lines(paper), where)
    assert not problems, f"{folder}: " + "; ".join(problems)


# ------------------------------------------------------------------ the checker itself
SEED_003 = "seeds/003_f78db3380e29ea3f.txt"


def _graph(layer: str, inp: str = "") -> spdnn.Graph:
    return spdnn.load_spec_text(f"""
name: t
source: {{paper: {SEED_003}, lines: L8526-8538}}
inputs: {{z: {{shape: [10]{inp}}}}}
layers:
  - {layer}
""")


def _problems(graph: spdnn.Graph) -> list[str]:
    lines = seed_lines(SEED_003)
    out = []
    for who, text, words in citations(graph):
        for start, end in ranges(text):
            if not any(re.search(w, passage(lines, start, end), re.IGNORECASE) for w in words):
                out.append(who)
    return out


def test_checker_accepts_the_right_row_and_rejects_a_neighbouring_one():
    assert _problems(_graph('{name: h, op: linear, out_features: 1024, source: "Dense 1024, L8532"}')) == []
    # L8531 is the Input(10) row: no Dense, no 1024.
    assert _problems(_graph('{name: h, op: linear, out_features: 1024, source: "L8531"}')) == ["layer 'h' (linear)"]
    # the generator's BN rows are spelled "BathNorm" (sic) in the thesis
    assert _problems(_graph('{name: b, op: batch_norm, source: "L8535"}')) == []
    assert _problems(_graph('{name: b, op: batch_norm, source: "L8536"}')) == ["layer 'b' (batch_norm)"]


def test_checker_reads_input_sizes_and_kernel_sizes():
    assert _problems(_graph('{name: s, op: sigmoid}', ', source: "Input(10), L8531"')) == []
    assert _problems(_graph('{name: s, op: sigmoid}', ', source: "L8532"')) == ["input 'z'"]
    g = spdnn.load_spec_text(f"""
name: t
source: {{paper: {SEED_003}, lines: L8553-8563}}
inputs: {{x: [1, 28, 28]}}
layers:
  - {{name: c, op: conv2d, out_channels: 4, kernel_size: 3, source: "L8559"}}
""")
    # L8559 is "Pool 1 Max pooling 2 × 2": no conv, no 3 × 3, no 4
    assert _problems(g) == ["layer 'c' (conv2d)"]


def test_hyphenated_line_breaks_are_joined():
    # L2026-2029: "... no fully connected and pool-" / "ing layers"
    assert "pooling layers" in passage(seed_lines(SEED_003), 2026, 2029)
