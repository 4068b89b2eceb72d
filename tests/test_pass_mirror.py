"""The mirror pass: exact decoder structure for each upsampling, autoencoder or decoder alone,
torch vs onnxruntime, twice is an error, bad options located in every front end."""

from __future__ import annotations

import pytest
from test_onnx_export import assert_parity

import spdnn
from spdnn.cli import main
from spdnn.errors import PassError
from spdnn.ir.printer import format_graph
from spdnn.passes import MirrorPass, PassOptionsError

ENCODER = """\
name: enc
inputs: {x: [3, 16, 16]}
layers:
  - {name: c1, op: conv2d, out_channels: 8, kernel_size: 3, padding: 1}
  - {name: b1, op: batch_norm}
  - {name: r1, op: relu}
  - {name: c2, op: conv2d, out_channels: 16, kernel_size: 4, stride: 2, padding: 1}
  - {name: r2, op: relu}
  - {name: p2, op: max_pool2d, kernel_size: 2}
  - {name: c3, op: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: same}
"""

ENCODER_IR = """\
  %x = input(){shape=[3, 16, 16]} : (N, 3, 16, 16)
  %c1 = conv2d(%x){out_channels=8, kernel_size=[3, 3], padding=[1, 1]} : (N, 8, 16, 16)
  %b1 = batch_norm(%c1){} : (N, 8, 16, 16)
  %r1 = relu(%b1){} : (N, 8, 16, 16)
  %c2 = conv2d(%r1){out_channels=16, kernel_size=[4, 4], stride=[2, 2], padding=[1, 1]} : (N, 16, 8, 8)
  %r2 = relu(%c2){} : (N, 16, 8, 8)
  %p2 = max_pool2d(%r2){kernel_size=[2, 2]} : (N, 16, 4, 4)
  %c3 = conv2d(%p2){out_channels=4, kernel_size=[3, 3], stride=[2, 2], padding=same} : (N, 4, 2, 2)
"""

AUTOENCODER_TRANSPOSED = "graph enc_autoencoder {\n" + ENCODER_IR + """\
  %c3_mirror = conv_transpose2d(%c3){out_channels=16, kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], output_padding=[1, 1]} : (N, 16, 4, 4)
  %p2_mirror = conv_transpose2d(%c3_mirror){out_channels=16, kernel_size=[2, 2], stride=[2, 2]} : (N, 16, 8, 8)
  %c2_mirror = conv_transpose2d(%p2_mirror){out_channels=8, kernel_size=[4, 4], stride=[2, 2], padding=[1, 1]} : (N, 8, 16, 16)
  %r2_mirror = relu(%c2_mirror){} : (N, 8, 16, 16)
  %c1_mirror = conv2d(%r2_mirror){out_channels=3, kernel_size=[3, 3], padding=[1, 1]} : (N, 3, 16, 16)
  %c1_tanh = tanh(%c1_mirror){} : (N, 3, 16, 16)
  %reconstruction = output(%c1_tanh){}
}"""

DECODER_BILINEAR = """\
graph enc_decoder {
  %code = input(){shape=[4, 2, 2]} : (N, 4, 2, 2)
  %c3_up = upsample(%code){mode=bilinear, size=[4, 4]} : (N, 4, 4, 4)
  %c3_mirror = conv2d(%c3_up){out_channels=16, kernel_size=[3, 3], padding=same} : (N, 16, 4, 4)
  %p2_up = upsample(%c3_mirror){mode=bilinear, size=[8, 8]} : (N, 16, 8, 8)
  %c2_up = upsample(%p2_up){mode=bilinear, size=[16, 16]} : (N, 16, 16, 16)
  %c2_mirror = conv2d(%c2_up){out_channels=8, kernel_size=[4, 4], padding=same} : (N, 8, 16, 16)
  %r2_mirror = relu(%c2_mirror){} : (N, 8, 16, 16)
  %c1_mirror = conv2d(%r2_mirror){out_channels=3, kernel_size=[3, 3], padding=[1, 1]} : (N, 3, 16, 16)
  %output = output(%c1_mirror){}
}"""

DECODER_REPEAT_TAIL = """\
  %c3_up = repeat_unpool(%code){factor=[2, 2]} : (N, 4, 4, 4)
  %c3_mirror = conv2d(%c3_up){out_channels=16, kernel_size=[3, 3], padding=same} : (N, 16, 4, 4)
  %p2_up = repeat_unpool(%c3_mirror){factor=[2, 2]} : (N, 16, 8, 8)
  %c2_up = repeat_unpool(%p2_up){factor=[2, 2]} : (N, 16, 16, 16)
"""


def mirrored(pipeline, text=ENCODER):
    g = spdnn.load_spec_text(text, "enc.yaml")
    spdnn.run_passes(g, pipeline)
    return g


def test_autoencoder_with_transposed_convolutions_exact_structure():
    g = mirrored("mirror")
    assert format_graph(g) == AUTOENCODER_TRANSPOSED
    assert g.meta_of("c2_mirror")["origin"].line == 7  # the encoder layer's spec location


def test_decoder_alone_with_interpolation_exact_structure():
    g = mirrored([("mirror", {"upsampling": "bilinear", "output": "decoder", "activation": "none"})])
    assert format_graph(g) == DECODER_BILINEAR
    assert DECODER_REPEAT_TAIL in format_graph(mirrored("mirror:upsampling=repeat,output=decoder"))


@pytest.mark.parametrize("upsampling", ["transposed", "nearest", "bilinear", "repeat"])
@pytest.mark.parametrize("output", ["autoencoder", "decoder"])
def test_mirrored_networks_match_onnxruntime(upsampling, output):
    g = mirrored([MirrorPass(upsampling=upsampling, output=output)])
    assert g.type_of(g.inputs_of(g.output_nodes()[0].name)[0]).sample_shape == (3, 16, 16)
    for batch in (1, 3):
        assert_parity(g, batch)


def test_applying_mirror_twice_is_an_error():
    g = mirrored("mirror")
    with pytest.raises(PassError, match=r"layer 'c3_mirror' \(conv_transpose2d\) upsamples: the graph is not "
                                        r"an encoder \(was it mirrored already\?\)"):
        spdnn.run_passes(g, "mirror")


@pytest.mark.parametrize("layers, message", [
    ("  - {name: c1, op: conv2d, out_channels: 2, kernel_size: 3, stride: 2}\n",  # 7x7 from 16x16
     "repeating the 7x7 output of 'c1' by its stride [2, 2] does not give back 16x16"),
    ("  - {name: c1, op: conv2d, out_channels: 2, kernel_size: 3}\n  - {name: f, op: flatten}\n",
     "cannot mirror layer 'f' (flatten)"),
    ("  - {name: c1, op: conv2d, out_channels: 4, kernel_size: 3, groups: 2}\n",
     "conv2d 'c1' has groups 2, dilation [1, 1]; mirror needs groups 1 and dilation 1"),
    ("  - {name: a, op: relu}\n  - {name: b, op: tanh, inputs: [x]}\n  - {name: s, op: add, inputs: [a, b]}\n",
     "layer 'x' feeds 2 layers"),
    ("  - {name: a, op: relu}\n", "the encoder has no conv2d, max_pool2d or avg_pool2d layer"),
])
def test_what_cannot_be_mirrored_is_refused(layers, message):
    text = "name: e\ninputs: {x: [2, 16, 16]}\nlayers:\n" + layers
    with pytest.raises(PassError) as e:
        mirrored("mirror:upsampling=repeat", text)
    assert message in str(e.value)


def test_a_failing_mirror_in_a_spec_is_located_at_its_entry():
    text = "name: e\ninputs: {x: [2, 16, 16]}\nlayers:\n  - {name: f, op: flatten}\npasses:\n  - mirror\n"
    with pytest.raises(spdnn.SpecError) as e:
        spdnn.load_spec_text(text, "e.yaml")
    assert str(e.value.problems[0]).startswith("e.yaml:6:5: passes[0]: pass 'mirror' failed: mirror: cannot "
                                               "mirror layer 'f' (flatten)")


def test_a_bad_option_is_located_in_every_front_end(tmp_path, capsys):
    message = "pass 'mirror' option 'upsampling': expected 'transposed', 'nearest', 'bilinear' or 'repeat'"
    with pytest.raises(PassOptionsError, match=message):
        MirrorPass(upsampling="cubic")
    with pytest.raises(spdnn.SpecError) as e:
        spdnn.load_spec_text(ENCODER + "passes:\n  - {name: mirror, upsampling: cubic}\n", "enc.yaml")
    assert str(e.value.problems[0]).startswith(f"enc.yaml:12:32: passes[0].upsampling: {message}")
    (tmp_path / "enc.yaml").write_text(ENCODER)
    assert main(["compile", str(tmp_path / "enc.yaml"), "-o", str(tmp_path / "o"), "--pass", "mirror:outptu=decoder"]) == 2
    assert "--pass 'mirror:outptu=decoder': pass 'mirror' option 'outptu': unknown option; did you mean 'output'?" \
        in capsys.readouterr().err


def test_spec_passes_entry_builds_the_autoencoder():
    g = spdnn.load_spec_text(ENCODER + "passes:\n  - {name: mirror}\n", "enc.yaml")
    assert format_graph(g) == AUTOENCODER_TRANSPOSED
