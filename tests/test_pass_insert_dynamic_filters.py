"""insert-dynamic-filters: seed 000's MNIST system (Tables 4-7) built from the baseline and the
autoencoder; exact structure, torch vs onnxruntime, second application refused, bad options
located."""

from __future__ import annotations

import pytest
import torch
from test_onnx_export import assert_parity

import spdnn
from spdnn.cli import main
from spdnn.errors import PassError
from spdnn.ir.printer import format_graph
from spdnn.passes import InsertDynamicFiltersPass, PassOptionsError
from spdnn.passes.insert_dynamic_filters import reduction_stages

BASELINE = """\
name: df1
inputs: {x: [1, 28, 28]}
layers:
  - {name: conv1, op: conv2d, out_channels: 5, kernel_size: 5}
  - {name: relu1, op: relu}
  - {name: pool1, op: max_pool2d, kernel_size: 2}
  - {name: conv2, op: conv2d, out_channels: 5, kernel_size: 5}
  - {name: relu2, op: relu}
  - {name: pool2, op: max_pool2d, kernel_size: 2}
  - {name: flat, op: flatten}
  - {name: fc, op: linear, out_features: 10}
"""

AUTOENCODER = """\
name: df2
inputs: {x: [1, 28, 28]}
layers:
  - {name: e1, op: conv2d, out_channels: 5, kernel_size: 5, padding: 2}
  - {name: e1_bn, op: batch_norm}
  - {name: e1_act, op: leaky_relu}
  - {name: e2, op: conv2d, out_channels: 5, kernel_size: 5, stride: 2, padding: 2}
  - {name: e2_bn, op: batch_norm}
  - {name: e2_act, op: leaky_relu}
  - {name: up, op: upsample, scale_factor: 2}
  - {name: d1, op: conv2d, out_channels: 1, kernel_size: 5, padding: 2}
  - {name: out, op: sigmoid}
outputs: {reconstruction: out}
"""


def reduction(conv, tap, size, first):
    return f"""\
  %{conv}_dr1 = conv2d(%{tap}){{out_channels=5, kernel_size=[{first}, {first}], stride=[{first}, {first}]}} : (N, 5, 7, 7)
  %{conv}_dr1_bn = batch_norm(%{conv}_dr1){{}} : (N, 5, 7, 7)
  %{conv}_dr1_act = leaky_relu(%{conv}_dr1_bn){{}} : (N, 5, 7, 7)
  %{conv}_dr2 = conv2d(%{conv}_dr1_act){{out_channels=5, kernel_size=[3, 3], stride=[3, 3], padding=[1, 1]}} : (N, 5, 3, 3)
  %{conv}_dr2_bn = batch_norm(%{conv}_dr2){{}} : (N, 5, 3, 3)
  %{conv}_dr2_act = leaky_relu(%{conv}_dr2_bn){{}} : (N, 5, 3, 3)
  %{conv}_dr3 = conv2d(%{conv}_dr2_act){{out_channels=5, kernel_size=[3, 3]}} : (N, 5, 1, 1)
  %{conv}_dr3_bn = batch_norm(%{conv}_dr3){{}} : (N, 5, 1, 1)
  %{conv}_dr3_act = leaky_relu(%{conv}_dr3_bn){{}} : (N, 5, 1, 1)
  %{conv}_dr_flatten = flatten(%{conv}_dr3_act){{}} : (N, 5)
  %{conv}_dr_fc = linear(%{conv}_dr_flatten){{out_features=5}} : (N, 5)
  %{conv}_dr_fc_act = leaky_relu(%{conv}_dr_fc){{}} : (N, 5)
  %{conv}_fg = linear(%{conv}_dr_fc_act){{out_features=25, bias=False}} : (N, 25)
"""


SYSTEM = """\
graph df1 {
  %x = input(){shape=[1, 28, 28]} : (N, 1, 28, 28)
  %ae_e1 = conv2d(%x){out_channels=5, kernel_size=[5, 5], padding=[2, 2]} : (N, 5, 28, 28)
  %ae_e1_bn = batch_norm(%ae_e1){} : (N, 5, 28, 28)
  %ae_e1_act = leaky_relu(%ae_e1_bn){} : (N, 5, 28, 28)
  %ae_e2 = conv2d(%ae_e1_act){out_channels=5, kernel_size=[5, 5], stride=[2, 2], padding=[2, 2]} : (N, 5, 14, 14)
  %ae_e2_bn = batch_norm(%ae_e2){} : (N, 5, 14, 14)
  %ae_e2_act = leaky_relu(%ae_e2_bn){} : (N, 5, 14, 14)
  %ae_up = upsample(%ae_e2_act){scale_factor=[2, 2]} : (N, 5, 28, 28)
  %ae_d1 = conv2d(%ae_up){out_channels=1, kernel_size=[5, 5], padding=[2, 2]} : (N, 1, 28, 28)
  %ae_out = sigmoid(%ae_d1){} : (N, 1, 28, 28)
  %ae_reconstruction = output(%ae_out){}
""" + reduction("conv1", "ae_e1_bn", 28, 4) + """\
  %conv1 = dynamic_conv2d(%x, %conv1_fg){out_channels=5, kernel_size=[5, 5], repository_size=5} : (N, 5, 24, 24)
  %relu1 = relu(%conv1){} : (N, 5, 24, 24)
  %pool1 = max_pool2d(%relu1){kernel_size=[2, 2]} : (N, 5, 12, 12)
""" + reduction("conv2", "ae_e2_bn", 14, 2) + """\
  %conv2 = dynamic_conv2d(%pool1, %conv2_fg){out_channels=5, kernel_size=[5, 5], repository_size=5} : (N, 5, 8, 8)
  %relu2 = relu(%conv2){} : (N, 5, 8, 8)
  %pool2 = max_pool2d(%relu2){kernel_size=[2, 2]} : (N, 5, 4, 4)
  %flat = flatten(%pool2){} : (N, 80)
  %fc = linear(%flat){out_features=10} : (N, 10)
  %output = output(%fc){}
}"""


@pytest.fixture
def autoencoder(tmp_path):
    path = tmp_path / "df2.yaml"
    path.write_text(AUTOENCODER)
    return str(path)


def system(pipeline):
    g = spdnn.load_spec_text(BASELINE, "df1.yaml")
    spdnn.run_passes(g, pipeline)
    return g


def test_seed_000_mnist_system_exact_structure(autoencoder):
    g = system(f"insert-dynamic-filters:autoencoder={autoencoder},convs=[conv1,conv2]")
    assert format_graph(g) == SYSTEM
    assert [n.name for n in g.output_nodes()] == ["output", "ae_reconstruction"]  # L = L_cls + L_rec
    assert g.meta_of("conv2")["origin"].line == 7 and g.meta_of("conv2_fg")["origin"].line == 7
    # filter generation: N x Lf x M coefficients per layer (L160-164), M x C x k x k repository
    assert g.meta_of("conv1_fg")["params"] == 5 * 5 * 5 and g.meta_of("conv2")["params"] == 5 * 5 * 5 * 5


def test_the_system_runs_and_matches_onnxruntime(autoencoder):
    g = system([InsertDynamicFiltersPass(autoencoder=autoencoder, convs=("conv1", "conv2"))])
    module = spdnn.build_torch(g, seed=0)
    logits, reconstruction = module(torch.rand(2, 1, 28, 28))
    assert logits.shape == (2, 10) and reconstruction.shape == (2, 1, 28, 28)
    (logits.sum() + reconstruction.sum()).backward()  # one loss trains every part
    assert module.state_dict()["conv1.weight"].shape == (5, 1, 5, 5)
    for batch in (1, 3):
        assert_parity(g, batch)


def test_taps_repository_size_features_and_prefix(autoencoder):
    g = system([("insert-dynamic-filters", {"autoencoder": autoencoder, "convs": "conv2", "taps": ["e1"],
                                            "repository_size": 2, "features": 3, "prefix": "a_"})])
    text = format_graph(g)
    assert "%conv1 = conv2d(%x){out_channels=5, kernel_size=[5, 5]}" in text
    assert "%conv2_dr1 = conv2d(%a_e1_bn){out_channels=5, kernel_size=[4, 4], stride=[4, 4]}" in text
    assert "%conv2_fg = linear(%conv2_dr_fc_act){out_features=10, bias=False} : (N, 10)" in text
    assert "%conv2 = dynamic_conv2d(%pool1, %conv2_fg){out_channels=5, kernel_size=[5, 5], repository_size=2}" in text
    assert_parity(g, 2)


@pytest.mark.parametrize("size, stages", [
    (28, [(4, 4, 0), (3, 3, 1), (3, 1, 0)]),  # Table 6
    (14, [(2, 2, 0), (3, 3, 1), (3, 1, 0)]),  # Table 7
    (7, [(3, 3, 1), (3, 1, 0)]),
    (5, [(3, 3, 1), (2, 1, 0)]),
    (32, [(3, 3, 1), (3, 3, 1), (3, 3, 1), (2, 1, 0)]),
    (1, []),
])
def test_reduction_stages(size, stages):
    assert reduction_stages(size) == stages


def test_applying_it_twice_is_an_error(autoencoder):
    g = system(f"insert-dynamic-filters:autoencoder={autoencoder},convs=conv1")
    with pytest.raises(PassError, match=r"layer 'conv1' is a dynamic_conv2d already \(were its filters made "
                                        r"dynamic before\?\)"):
        spdnn.run_passes(g, f"insert-dynamic-filters:autoencoder={autoencoder},convs=conv1")


@pytest.mark.parametrize("options, message", [
    ({"convs": ["conv3"]}, "no layer 'conv3' in the prediction network (did you mean 'conv2'?)"),
    ({"convs": ["fc"]}, "layer 'fc' (linear) is not a conv2d with groups 1"),
    ({"convs": ["conv1"], "taps": ["e1_bnn"]}, "no layer 'e1_bnn' to tap in the autoencoder (did you mean 'e1_bn'?)"),
    ({"convs": ["conv1", "conv2"], "taps": ["e1"]}, "2 convs to make dynamic but 1 tapped autoencoder layers (e1)"),
])
def test_what_cannot_be_done_is_refused(autoencoder, options, message):
    with pytest.raises(PassError) as e:
        system([("insert-dynamic-filters", {"autoencoder": autoencoder, **options})])
    assert message in str(e.value)


def test_bad_options_are_located_in_every_front_end(tmp_path, capsys, autoencoder):
    with pytest.raises(PassOptionsError, match="option 'convs': is required"):
        system([("insert-dynamic-filters", {"autoencoder": autoencoder})])
    with pytest.raises(spdnn.SpecError) as e:
        spdnn.load_spec_text(BASELINE + "passes:\n  - {name: insert-dynamic-filters, autoencoder: ae.yaml, "
                                        "convs: conv1, repository_size: 0}\n", "df1.yaml")
    problems = [str(p) for p in e.value.problems]
    assert problems[0].startswith("df1.yaml:13:49: passes[0].autoencoder: pass 'insert-dynamic-filters' option "
                                  "'autoencoder': no such file 'ae.yaml'")
    assert problems[1].startswith("df1.yaml:13:89: passes[0].repository_size: pass 'insert-dynamic-filters' "
                                  "option 'repository_size': expected greater than 0")
    (tmp_path / "df1.yaml").write_text(BASELINE)
    assert main(["compile", str(tmp_path / "df1.yaml"), "-o", str(tmp_path / "o"), "--pass",
                 f"insert-dynamic-filters:autoencoder={autoencoder},conv=conv1"]) == 2
    assert "option 'conv': unknown option; did you mean 'convs'?" in capsys.readouterr().err


def test_spec_passes_entry_builds_the_system(autoencoder):
    g = spdnn.load_spec_text(BASELINE + f"passes:\n  - {{name: insert-dynamic-filters, autoencoder: '{autoencoder}', "
                                        "convs: [conv1, conv2]}\n")
    assert format_graph(g) == SYSTEM


def test_the_shipped_pass_spec_builds_the_hand_written_mnist_system():
    """specs/building_blocks/dynamic_filters_pass.yaml (baseline + the pass) and
    specs/dynamic_filters/mnist_dynamic.yaml (written out by hand) are one network: the same
    ops, shapes and parameters in the same order; only generated layer names differ."""
    from conftest import ROOT

    by_pass = spdnn.load_spec(ROOT / "specs" / "building_blocks" / "dynamic_filters_pass.yaml")
    by_hand = spdnn.load_spec(ROOT / "specs" / "dynamic_filters" / "mnist_dynamic.yaml")

    def layers(g):
        summary = spdnn.summarize(g)
        return sorted((layer.op, tuple(layer.output_shapes), layer.params, layer.flops) for layer in summary.layers)

    assert layers(by_pass) == layers(by_hand)
    assert spdnn.summarize(by_pass).total_params == spdnn.summarize(by_hand).total_params == 37_281
