"""Per-layer options ``trainable``, ``init`` and ``spectral_norm`` (spdnn.layer_options): init
statistics, frozen parameters through a ``spdnn train`` run, sigma = 1 and torch/onnxruntime parity
under spectral normalisation, the summary's frozen counts and located errors for bad values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import spdnn
from spdnn.backends.onnx_exporter.exporter import to_numpy_weights
from spdnn.cli import main


def spec(*layers: str, inputs: str = "x: [16]") -> str:
    body = "\n".join(f"  - {line}" for line in layers)
    return f"name: t\ninputs: {{{inputs}}}\nlayers:\n{body}\n"


def build(*layers: str, inputs: str = "x: [16]", seed: int = 0):
    graph = spdnn.load_spec_text(spec(*layers, inputs=inputs))
    return graph, spdnn.build_torch(graph, seed=seed)


# ------------------------------------------------------------------ init
def test_orthogonal_weight_and_zero_bias():
    _, m = build("{name: fc, op: linear, out_features: 8, init: {weight: orthogonal, bias: zeros}}")
    w = m.fc.weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5)      # 8 orthonormal rows in R^16
    assert torch.count_nonzero(m.fc.bias) == 0


def test_orthogonal_conv_filters_are_orthonormal_as_rows():
    _, m = build("{name: c, op: conv2d, out_channels: 6, kernel_size: 3, init: orthogonal}", inputs="x: [2, 5, 5]")
    w = m.c.weight.detach().flatten(1)                             # 6 x 18
    assert torch.allclose(w @ w.T, torch.eye(6), atol=1e-5)


def test_constant_normal_ones_and_the_default_std():
    _, m = build("{name: a, op: linear, out_features: 400, init: {weight: {rule: normal, std: 0.5, mean: 1.0}, "
                 "bias: {rule: constant, value: 0.25}}}",
                 "{name: b, op: linear, out_features: 300, init: {weight: normal, bias: ones}}",
                 inputs="x: [300]")
    a = m.a.weight.detach()
    assert abs(a.std().item() - 0.5) < 0.01 and abs(a.mean().item() - 1.0) < 0.01   # 120,000 samples
    assert torch.equal(m.a.bias.detach(), torch.full((400,), 0.25))
    assert abs(m.b.weight.detach().std().item() - 0.02) < 0.001                     # DCGAN default
    assert torch.equal(m.b.bias.detach(), torch.ones(300))


def test_xavier_and_kaiming_bounds_and_the_short_form_leaves_the_bias_alone():
    _, m = build("{name: a, op: linear, out_features: 200, init: xavier}",
                 "{name: b, op: linear, out_features: 100, init: kaiming}", inputs="x: [100]")
    xavier_bound = (6 / (100 + 200)) ** 0.5                       # U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    kaiming_bound = (6 / 200) ** 0.5                              # sqrt(2) * sqrt(3 / fan_in), fan_in 200
    a, b = m.a.weight.detach(), m.b.weight.detach()
    assert a.abs().max() <= xavier_bound and a.abs().max() > 0.95 * xavier_bound
    assert b.abs().max() <= kaiming_bound and b.abs().max() > 0.95 * kaiming_bound
    default_bias_bound = 1 / 100 ** 0.5                           # nn.Linear's own bias init, untouched
    assert m.a.bias.abs().max() <= default_bias_bound


def test_init_is_reproducible_from_the_seed_and_in_the_state_dict():
    _, m1 = build("{name: fc, op: linear, out_features: 4, init: {rule: normal, std: 0.1}}", seed=3)
    _, m2 = build("{name: fc, op: linear, out_features: 4, init: {rule: normal, std: 0.1}}", seed=3)
    assert set(m1.state_dict()) == {"fc.weight", "fc.bias"}
    assert all(torch.equal(m1.state_dict()[k], m2.state_dict()[k]) for k in m1.state_dict())


# ------------------------------------------------------------------ trainable
FROZEN = ("{name: c, op: conv2d, out_channels: 2, kernel_size: 3, trainable: false}",
          "{op: flatten}", "{name: fc, op: linear, out_features: 3}")


def test_frozen_parameters_do_not_require_grad_and_the_summary_counts_them():
    graph, m = build(*FROZEN, inputs="x: [1, 5, 5]")
    assert {n: p.requires_grad for n, p in m.named_parameters()} == {
        "c.weight": False, "c.bias": False, "fc.weight": True, "fc.bias": True}
    s = spdnn.summarize(graph)
    # conv 1->2, 3x3: 2*9 + 2 = 20 frozen; linear 2*3*3 = 18 -> 3: 18*3 + 3 = 57 trainable
    assert (s.total_params, s.frozen_params, s.trainable_params) == (77, 20, 57)
    assert s.to_dict()["frozen_params"] == 20 and s.to_dict()["trainable_params"] == 57
    text = s.to_text()
    assert "conv2d (frozen)" in text and "total params: 77 (77)\nfrozen params: 20 (20); trainable: 57 (57)\n" in text
    assert "| **frozen** | | | | **20** | |" in s.to_markdown()


def test_summary_without_frozen_layers_prints_no_frozen_line():
    graph, _ = build("{name: fc, op: linear, out_features: 3}")
    s = spdnn.summarize(graph)
    assert s.frozen_params == 0 and "frozen" not in s.to_text() and "frozen" not in s.to_markdown()


def test_frozen_layer_is_unchanged_by_spdnn_train(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 32)
    x = rng.normal(0, 0.3, (32, 1, 8, 8)).astype("float32")
    x[y == 0, :, :4] += 1.0
    np.savez(tmp_path / "d.npz", x=x, y=y)
    path = tmp_path / "frozen.yaml"
    path.write_text("""name: frozen_classifier
inputs: {image: [1, 8, 8]}
layers:
  - {name: conv1, op: conv2d, out_channels: 4, kernel_size: 3, padding: 1, trainable: false}
  - {name: relu1, op: relu}
  - {name: flatten, op: flatten}
  - {name: fc, op: linear, out_features: 2}
  - {name: probs, op: softmax}
""")
    before = spdnn.build_torch(spdnn.load_spec(path), seed=0).state_dict()   # spdnn train: seed 0 + index 0
    run = tmp_path / "run"
    assert main(["train", str(path), "-q", "--data", str(tmp_path / "d.npz"), "-o", str(run),
                 "--epochs", "2", "--lr", "0.05", "--batch-size", "8"]) == 0
    after = torch.load(run / "frozen_classifier.pt", weights_only=True)
    assert torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert torch.equal(after["conv1.bias"], before["conv1.bias"])
    assert not torch.equal(after["fc.weight"], before["fc.weight"])


# ------------------------------------------------------------------ spectral norm
SN = ("{name: c, op: conv2d, out_channels: 4, kernel_size: 3, spectral_norm: true, init: orthogonal}",
      "{name: d, op: conv_transpose2d, out_channels: 2, kernel_size: 2, stride: 2, spectral_norm: true}",
      "{op: flatten}",
      "{name: fc, op: linear, out_features: 5, spectral_norm: true, init: {rule: normal, std: 1.0}}")


def test_spectral_norm_gives_sigma_one_and_documented_state_dict_keys():
    _, m = build(*SN, inputs="x: [3, 8, 8]")
    assert sorted(m.state_dict()) == sorted(
        f"{layer}.{key}" for layer in ("c", "d", "fc")
        for key in ("bias", "parametrizations.weight.original", "parametrizations.weight.0._u",
                    "parametrizations.weight.0._v"))
    m.train()
    x = torch.randn(4, 3, 8, 8)
    for _ in range(50):      # one power iteration per training forward
        m(x)
    m.eval()
    sigmas = [torch.linalg.matrix_norm(m.c.weight.flatten(1), ord=2),
              torch.linalg.matrix_norm(m.d.weight.movedim(1, 0).flatten(1), ord=2),   # torch: dim 1 for transposed
              torch.linalg.matrix_norm(m.fc.weight, ord=2)]
    assert [round(float(s.detach()), 3) for s in sigmas] == [1.0, 1.0, 1.0]
    raw = torch.linalg.matrix_norm(m.fc.parametrizations.weight.original, ord=2)
    assert raw > 2      # the normal(std 1) weight itself is far from sigma 1: the parametrisation did it


@pytest.mark.parametrize("batch", [1, 3])
def test_spectral_norm_torch_and_onnxruntime_agree(batch):
    graph, m = build(*SN, inputs="x: [3, 8, 8]")
    m.train()
    x = torch.randn(batch, 3, 8, 8)
    for _ in range(3):
        m(torch.randn(4, 3, 8, 8))
    m.eval()
    want = m(x).detach().numpy()
    model = spdnn.export_onnx(graph, to_numpy_weights(m.state_dict()))
    names = {i.name for i in model.graph.initializer}
    assert {"c.weight", "d.weight", "fc.weight"} <= names and not any("parametrizations" in n for n in names)
    got = spdnn.run_onnx(model.SerializeToString(), {"x": x.numpy()})[0]["output"]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------ errors
#: (layer, message, where the error points: the first occurrence of this text on the line)
BAD = [
    ("{name: r, op: relu, spectral_norm: true}", "spectral_norm applies to conv2d, conv_transpose2d, linear", "true"),
    ("{name: f, op: linear, out_features: 2, trainable: 'no'}", "expected a valid boolean", "'no'"),
    ("{name: f, op: linear, out_features: 2, init: xavierr}", "expected 'orthogonal', 'xavier'", "xavierr"),
    ("{name: f, op: linear, out_features: 2, init: {weight: {rule: normal, value: 3}}}",
     "init rule 'normal' takes no value", "{rule"),
    ("{name: f, op: linear, out_features: 2, init: {weight: constant}}", "'constant' needs a value", "constant"),
    ("{name: f, op: linear, out_features: 2, init: {weight: {rule: normal, std: -1}}}", "greater than 0", "-1"),
    ("{name: f, op: linear, out_features: 2, spectral_norm: 1}", "expected a valid boolean", "1}"),
]


@pytest.mark.parametrize("layer,message,anchor", BAD, ids=[b[1][:30] for b in BAD])
def test_bad_option_values_are_located_errors(layer, message, anchor):
    with pytest.raises(spdnn.SpecError) as e:
        spdnn.load_spec_text(spec(layer))
    problem = e.value.problems[0]
    column = f"  - {layer}".index(anchor) + 1
    assert message in problem.message and (problem.line, problem.column) == (4, column), str(e.value)


@pytest.mark.parametrize("layer,message", [
    ("{name: f, op: linear, out_features: 2, init: {wieght: zeros}}",
     "layer 'f': init: no parameter 'wieght' (its parameters: weight, bias)"),
    ("{name: f, op: linear, out_features: 2, init: {bias: orthogonal}}",
     "layer 'f': init: orthogonal needs a parameter of 2 or more dimensions; 'bias' has shape (2,) (use zeros, ones, constant or normal)"),
    ("{name: r, op: relu, trainable: false}", "layer 'r': trainable: false, but the layer has no parameters"),
])
def test_option_errors_found_when_building_torch_are_located_too(layer, message, write, capsys):
    with pytest.raises(spdnn.SpecError) as e:
        spdnn.build_torch(spdnn.load_spec_text(spec(layer), file="s.yaml"))
    p = e.value.problems[0]
    assert p.message == message and (p.file, p.line) == ("s.yaml", 4)
    path = write(spec(layer))
    assert main(["compile", str(path), "-o", str(path.parent / "out")]) == 2
    assert f"{path}:4" in capsys.readouterr().err


def test_json_schema_knows_the_options():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from spdnn.frontends.yaml_importer.schema import spec_json_schema

    validator = jsonschema.Draft202012Validator(spec_json_schema())
    good = yaml.safe_load(spec(*SN[:1], "{op: relu}", "{op: flatten}",
                               "{name: fc, op: linear, out_features: 2, trainable: false, "
                               "init: {weight: {rule: normal, std: 0.1}, bias: zeros}}", inputs="x: [3, 8, 8]"))
    assert list(validator.iter_errors(good)) == []
    bad = yaml.safe_load(spec("{op: relu, spectral_norm: true}"))
    assert list(validator.iter_errors(bad))
    with_defaults = {**good, "defaults": {"linear": {"trainable": False, "spectral_norm": True, "init": "xavier"}}}
    assert list(validator.iter_errors(with_defaults)) == []
    assert list(validator.iter_errors({**good, "defaults": {"relu": {"spectral_norm": True}}}))


def test_options_survive_deepcopy_and_fx_retracing():
    import copy

    _, m = build("{name: c, op: conv2d, out_channels: 4, kernel_size: 3, spectral_norm: true, trainable: false}",
                 inputs="x: [3, 8, 8]")
    m.eval()
    x = torch.randn(2, 3, 8, 8)
    copied = copy.deepcopy(m)
    traced = torch.fx.symbolic_trace(m)
    assert torch.equal(copied(x), m(x)) and torch.equal(traced(x), m(x))
    assert [p.requires_grad for p in copied.parameters()] == [False, False]
    assert "parametrizations.weight.original" in "".join(copied.state_dict())


# ------------------------------------------------------------------ defaults
def test_options_from_defaults_apply_to_every_layer_of_the_op_and_a_layer_overrides_them():
    text = ("name: t\ninputs: {x: [1, 8, 8]}\n"
            "defaults:\n  conv2d: {kernel_size: 3, trainable: false, init: {weight: orthogonal, bias: zeros}}\n"
            "  linear: {spectral_norm: true}\n"
            "layers:\n  - {name: c1, op: conv2d, out_channels: 4}\n"
            "  - {name: c2, op: conv2d, out_channels: 4, trainable: true}\n"
            "  - {op: flatten}\n  - {name: fc, op: linear, out_features: 2}\n")
    graph = spdnn.load_spec_text(text)
    m = spdnn.build_torch(graph)
    assert [p.requires_grad for p in m.c1.parameters()] == [False, False]
    assert [p.requires_grad for p in m.c2.parameters()] == [True, True]
    for conv in (m.c1, m.c2):
        w = conv.weight.detach().flatten(1)
        assert torch.allclose(w @ w.T, torch.eye(4), atol=1e-5) and torch.count_nonzero(conv.bias) == 0
    assert "fc.parametrizations.weight.original" in m.state_dict()
    assert spdnn.summarize(graph).frozen_params == 4 * 9 + 4


@pytest.mark.parametrize("defaults,message,anchor", [
    ("relu: {spectral_norm: true}", "spectral_norm applies to conv2d, conv_transpose2d, linear; 'relu' has no "
                                    "weight to normalise", "spectral_norm"),
    ("linear: {trainabel: false}", "linear has no attribute 'trainabel'; did you mean 'trainable'?", "trainabel"),
    ("linear: {init: xavierr}", "expected 'orthogonal', 'xavier'", None),
])
def test_bad_options_in_defaults_are_located(defaults, message, anchor):
    text = f"name: t\ninputs: {{x: [16]}}\ndefaults:\n  {defaults}\nlayers:\n  - {{name: fc, op: linear, out_features: 2}}\n"
    with pytest.raises(spdnn.SpecError) as e:
        spdnn.load_spec_text(text)
    problem = e.value.problems[0]
    assert message in problem.message, str(e.value)
    line = 4 if anchor else 6  # a bad value is found when the layer is built: located at the layer
    assert problem.line == line and (anchor is None or problem.column == f"  {defaults}".index(anchor) + 1)


# ------------------------------------------------------------------ through ONNX
def _exported(power_steps: int = 3):
    import onnx

    from spdnn.backends.onnx_exporter.exporter import export_onnx_bytes

    graph = spdnn.load_spec_text(spec(
        "{name: c, op: conv2d, out_channels: 4, kernel_size: 3, spectral_norm: true, trainable: false}",
        "{name: t, op: conv_transpose2d, out_channels: 2, kernel_size: 2, stride: 2, spectral_norm: true}",
        "{op: flatten}", "{name: fc, op: linear, out_features: 5, spectral_norm: true, init: orthogonal}",
        inputs="x: [3, 8, 8]"))
    module = spdnn.build_torch(graph, seed=1).train()
    x = torch.randn(3, 3, 8, 8)
    for _ in range(power_steps):  # power iterations move u and v away from their start
        module(x)
    return module.eval(), onnx.load_from_string(export_onnx_bytes(graph, module.state_dict())), x


def test_options_survive_onnx_export_and_import():
    from spdnn.backends.torch_exporter.module import load_weights
    from spdnn.frontends.onnx_importer import import_onnx

    module, model, x = _exported()
    imported = import_onnx(model)
    options = {n.name: imported.graph.meta_of(n.name).get("layer_options") for n in imported.graph}
    assert options["c"].trainable is False and options["c"].spectral_norm
    assert options["t"].spectral_norm and options["fc"].init["weight"].rule == "orthogonal"
    again = load_weights(spdnn.build_torch(imported.graph), imported.weights).eval()
    assert [p.requires_grad for p in again.c.parameters()] == [False, False]
    with torch.no_grad():
        np.testing.assert_allclose(again(x).numpy(), module(x).numpy(), atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("value,message", [
    ("[1, 2]", "must map layer names to option objects"),
    ("{not json", "is not valid JSON"),
    ('{"ghost": {"trainable": false}}', "names layer 'ghost', which the graph does not have"),
    ('{"c": {"trainable": "no"}}', "layer 'c': Input should be a valid boolean"),
    ('{"c": {"init": ' + "[" * 5000 + "]" * 5000 + "}}", "nests deeper than 8 levels"),
])
def test_bad_layer_options_metadata_is_a_clear_error(value, message):
    from spdnn.frontends.onnx_importer import import_onnx

    _, model, _ = _exported(0)
    entry = next(p for p in model.metadata_props if p.key == "spdnn_layer_options")
    entry.value = value
    with pytest.raises(spdnn.SpecError, match="spdnn_layer_options") as e:
        import_onnx(model)
    assert message in str(e.value)
