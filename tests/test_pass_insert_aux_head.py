"""insert-aux-head: an auxiliary network beside a discriminator, an InfoGAN Q head, deep
supervision; exact structure, torch vs onnxruntime, second application refused, bad options
located."""

from __future__ import annotations

import pytest
from test_onnx_export import assert_parity

import spdnn
from spdnn.cli import main
from spdnn.errors import PassError
from spdnn.ir.printer import format_graph
from spdnn.passes import InsertAuxHeadPass, PassOptionsError

DISCRIMINATOR = """\
name: disc
inputs: {x: [1, 8, 8]}
layers:
  - {name: c1, op: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
  - {name: a1, op: leaky_relu, negative_slope: 0.2}
  - {name: c2, op: conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
  - {name: a2, op: leaky_relu, negative_slope: 0.2}
  - {name: f, op: flatten}
  - {name: fc, op: linear, out_features: 1}
  - {name: p, op: sigmoid}
"""

CLASSIFIER = """\
name: cls
inputs: {image: [1, 8, 8]}
layers:
  - {name: c1, op: conv2d, out_channels: 2, kernel_size: 3}
  - {name: r1, op: relu}
  - {name: f, op: flatten}
  - {name: fc, op: linear, out_features: 3}
outputs: {logits: fc}
"""

D_IR = """\
graph disc {
  %x = input(){shape=[1, 8, 8]} : (N, 1, 8, 8)
  %c1 = conv2d(%x){out_channels=4, kernel_size=[3, 3], stride=[2, 2], padding=[1, 1]} : (N, 4, 4, 4)
  %a1 = leaky_relu(%c1){negative_slope=0.2} : (N, 4, 4, 4)
  %c2 = conv2d(%a1){out_channels=8, kernel_size=[3, 3], stride=[2, 2], padding=[1, 1]} : (N, 8, 2, 2)
  %a2 = leaky_relu(%c2){negative_slope=0.2} : (N, 8, 2, 2)
  %f = flatten(%a2){} : (N, 32)
  %fc = linear(%f){out_features=1} : (N, 1)
  %p = sigmoid(%fc){} : (N, 1)
  %output = output(%p){}
"""

WITH_NETWORK = D_IR + """\
  %aux_c1 = conv2d(%x){out_channels=2, kernel_size=[3, 3]} : (N, 2, 6, 6)
  %aux_r1 = relu(%aux_c1){} : (N, 2, 6, 6)
  %aux_f = flatten(%aux_r1){} : (N, 72)
  %aux_fc = linear(%aux_f){out_features=3} : (N, 3)
  %aux_logits = output(%aux_fc){}
}"""

WITH_Q = D_IR + """\
  %q_fc = linear(%f){out_features=2} : (N, 2)
  %q = output(%q_fc){}
}"""

WITH_DEEP_SUPERVISION = D_IR + """\
  %c1_aux_pool = adaptive_avg_pool2d(%c1){output_size=[1, 1]} : (N, 4, 1, 1)
  %c1_aux_flatten = flatten(%c1_aux_pool){} : (N, 4)
  %c1_aux_fc = linear(%c1_aux_flatten){out_features=10} : (N, 10)
  %c1_aux = output(%c1_aux_fc){}
  %f_aux_fc = linear(%f){out_features=10} : (N, 10)
  %f_aux = output(%f_aux_fc){}
}"""


@pytest.fixture
def classifier(tmp_path):
    path = tmp_path / "cls.yaml"
    path.write_text(CLASSIFIER)
    return str(path)


def with_head(pipeline):
    g = spdnn.load_spec_text(DISCRIMINATOR, "disc.yaml")
    spdnn.run_passes(g, pipeline)
    return g


def test_auxiliary_network_fed_what_the_discriminator_is_fed(classifier):
    g = with_head(f"insert-aux-head:head={classifier}")
    assert format_graph(g) == WITH_NETWORK
    assert g.meta_of("aux_fc")["origin"].file == classifier  # the layer's own spec location
    with pytest.raises(PassError, match="the graph has a layer named 'aux_c1' already"):
        spdnn.run_passes(g, f"insert-aux-head:head={classifier}")
    assert format_graph(with_head(f"insert-aux-head:head={classifier},prefix=vac_")) == WITH_NETWORK.replace("%aux_", "%vac_")


def test_q_head_shares_all_but_the_last_layer():
    g = with_head([("insert-aux-head", {"mode": "q-head", "codes": 2})])
    assert format_graph(g) == WITH_Q
    with pytest.raises(PassError, match="the graph has a layer named 'q' already"):
        spdnn.run_passes(g, "insert-aux-head:mode=q-head,codes=2")


def test_q_head_of_a_convolutional_last_layer_flattens():
    text = "name: d\ninputs: {x: [1, 4, 4]}\nlayers:\n  - {name: c, op: conv2d, out_channels: 1, kernel_size: 4}\n"
    g = spdnn.load_spec_text(text)
    spdnn.run_passes(g, "insert-aux-head:mode=q-head,codes=3")
    assert "%q_flatten = flatten(%x){} : (N, 16)\n  %q_fc = linear(%q_flatten){out_features=3} : (N, 3)" in format_graph(g)


def test_deep_supervision_heads():
    g = with_head("insert-aux-head:mode=deep-supervision,at=[c1,f],classes=10")
    assert format_graph(g) == WITH_DEEP_SUPERVISION
    with pytest.raises(PassError, match="the graph has a layer named 'c1_aux' already"):
        spdnn.run_passes(g, "insert-aux-head:mode=deep-supervision,at=c1,classes=10")
    with pytest.raises(PassError, match=r"no layer 'fcc' to supervise \(did you mean 'fc'\?\)"):
        spdnn.run_passes(g, "insert-aux-head:mode=deep-supervision,at=fcc,classes=10")


@pytest.mark.parametrize("mode", ["network", "q-head", "deep-supervision"])
def test_heads_match_onnxruntime(mode, classifier):
    options = {"network": {"head": classifier}, "q-head": {"codes": 2},
               "deep-supervision": {"at": ["c1", "a2", "fc"], "classes": 4}}[mode]
    g = with_head([InsertAuxHeadPass(mode=mode, **options)])
    assert len(g.output_nodes()) == (4 if mode == "deep-supervision" else 2)
    for batch in (1, 3):
        assert_parity(g, batch)


def test_spec_passes_entry_and_its_errors_are_located(classifier):
    g = spdnn.load_spec_text(DISCRIMINATOR + f"passes:\n  - {{name: insert-aux-head, head: '{classifier}'}}\n")
    assert format_graph(g) == WITH_NETWORK
    with pytest.raises(spdnn.SpecError) as e:
        spdnn.load_spec_text(DISCRIMINATOR + "passes:\n  - {name: insert-aux-head, mode: q-head}\n", "d.yaml")
    assert str(e.value.problems[0]) == "d.yaml:12:12: passes[0].name: pass 'insert-aux-head': option 'codes' " \
                                       "is required when mode is 'q-head'"
    with pytest.raises(spdnn.SpecError) as e:
        spdnn.load_spec_text(DISCRIMINATOR + "passes:\n  - {name: insert-aux-head, head: nope.yaml}\n", "d.yaml")
    assert str(e.value.problems[0]).startswith("d.yaml:12:35: passes[0].head: pass 'insert-aux-head' option "
                                               "'head': no such file 'nope.yaml'")


def test_bad_options_from_python_and_the_command_line(tmp_path, capsys):
    with pytest.raises(PassOptionsError, match="option 'at' is required when mode is 'deep-supervision'; "
                                               "pass 'insert-aux-head': option 'classes' is required"):
        InsertAuxHeadPass(mode="deep-supervision")
    with pytest.raises(PassOptionsError, match="option 'codes': expected greater than 0"):
        InsertAuxHeadPass(mode="q-head", codes=0)
    (tmp_path / "d.yaml").write_text(DISCRIMINATOR)
    assert main(["compile", str(tmp_path / "d.yaml"), "-o", str(tmp_path / "o"), "--pass",
                 "insert-aux-head:mode=qhead"]) == 2
    assert "--pass 'insert-aux-head:mode=qhead': pass 'insert-aux-head' option 'mode': expected 'network', " \
           "'q-head' or 'deep-supervision'" in capsys.readouterr().err


def test_spec_paths_in_passes_are_relative_to_the_spec_file(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    (models / "cls.yaml").write_text(CLASSIFIER)
    spec = models / "d.yaml"
    spec.write_text(DISCRIMINATOR + "passes:\n  - {name: insert-aux-head, head: cls.yaml}\n")
    monkeypatch.chdir(tmp_path)
    assert format_graph(spdnn.load_spec("models/d.yaml")) == WITH_NETWORK
    # From the command line and Python the current directory is the base.
    with pytest.raises(PassOptionsError, match="no such file 'cls.yaml'"):
        InsertAuxHeadPass(head="cls.yaml")
    assert InsertAuxHeadPass(head="models/cls.yaml").head == "models/cls.yaml"
    (models / "away.yaml").write_text(DISCRIMINATOR + "passes:\n  - {name: insert-aux-head, head: gone.yaml}\n")
    with pytest.raises(spdnn.SpecError, match=r"no such file 'gone.yaml' \(relative to .*models\)"):
        spdnn.load_spec(models / "away.yaml")


def test_a_spec_that_loads_itself_through_passes_is_refused(tmp_path, capsys):
    spec = tmp_path / "self.yaml"
    spec.write_text(DISCRIMINATOR + "passes:\n  - {name: insert-aux-head, head: self.yaml}\n")
    assert main(["inspect", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "is loaded again by its own passes (a spec cannot include itself)" in err
    assert "Traceback" not in err
    for i in range(12):  # a chain of specs, each loading the next: refused at the nesting limit
        (tmp_path / f"c{i}.yaml").write_text(DISCRIMINATOR + f"passes:\n  - {{name: insert-aux-head, head: c{i + 1}.yaml}}\n")
    (tmp_path / "c12.yaml").write_text(CLASSIFIER)
    assert main(["inspect", str(tmp_path / "c0.yaml")]) == 2
    assert "limit 8 (spec_nesting)" in capsys.readouterr().err
