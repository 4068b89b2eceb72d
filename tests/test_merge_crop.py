"""Centre cropping: the ``crop`` op (torch, ONNX Slice, and back) and its use at SPDNN
concatenations of 'valid'-padded parents whose sizes differ by a few pixels."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from test_merge import chain
from test_onnx_export import assert_parity

import spdnn
from spdnn.frontends.onnx_importer import import_onnx
from spdnn.merge import MergeError, merge_networks


def valid(k, width=4, **extra):
    return ("conv2d", {"out_channels": width, "kernel_size": k, **extra})


def valid_pair() -> list[spdnn.Graph]:
    """a: 20 -conv3-> 18 -conv5-> 14 -conv1(pad 1)-> 16;  b: 20 -conv3-> 18 -conv3-> 16 -conv1-> 16."""
    a = chain("a", [valid(3), valid(5), valid(1, 2, padding=1)], shape=(1, 20, 20))
    b = chain("b", [valid(3), valid(3), valid(1, 2)], shape=(1, 20, 20))
    return [a, b]


def crop_graph() -> spdnn.Graph:
    g = spdnn.Graph("cropper")
    g.add_node("x", "input", {"shape": [2, 7, 6]})
    g.add_node("c", "crop", {"size": [4, 3]}, ["x"])
    g.add_node("y", "output", {}, ["c"])
    spdnn.infer_shapes(g)
    return g


def test_crop_keeps_the_centre_with_the_odd_pixel_removed_at_the_end():
    module = spdnn.build_torch(crop_graph())
    x = torch.arange(2 * 7 * 6, dtype=torch.float32).reshape(1, 2, 7, 6)
    assert torch.equal(module(x), x[:, :, 1:5, 1:4])


def test_crop_exports_as_slice_and_imports_back_as_crop():
    g = crop_graph()
    model = assert_parity(g, 3)
    assert [n.op_type for n in model.graph.node if n.op_type != "Identity"] == ["Slice"]
    back = import_onnx(model).graph
    crops = back.nodes("crop")
    assert len(crops) == 1 and list(crops[0].attrs.size) == [4, 3]


def test_a_slice_that_is_not_centred_is_not_imported_as_a_crop():
    model = assert_parity(crop_graph(), 1)
    for suffix, window in ((".starts", [0, 0]), (".ends", [4, 3])):  # the same size, at the top left
        init = next(i for i in model.graph.initializer if i.name.endswith(suffix))
        init.CopyFrom(onnx.numpy_helper.from_array(np.array(window, np.int64), init.name))
    with pytest.raises(spdnn.SpdnnError, match="is not a centre crop"):
        import_onnx(model)


def test_valid_padded_parents_a_few_pixels_apart_are_centre_cropped_at_the_concatenation():
    result = merge_networks(valid_pair())
    g = result.graph
    crops = g.nodes("crop")
    assert len(crops) == 1
    (src,) = g.inputs_of(crops[0].name)
    assert g.type_of(src).sample_shape == (4, 16, 16)  # b's 16x16 branch ...
    assert g.out_types(crops[0].name)[0].sample_shape == (4, 14, 14)  # ... cropped to a's 14x14
    concat = g.nodes("concat")[0]
    assert [g.type_of(v).sample_shape for v in g.inputs_of(concat.name)] == [(4, 14, 14), (4, 14, 14)]
    assert g.out_types(g.inputs_of(g.output_nodes()[0].name)[0].node)[0].sample_shape == (2, 16, 16)
    # the padding taken from a (alphabetically first on a tie) is reported as a dropped choice
    assert any("padding" in line for line in result.warnings())
    assert_parity(g, 2)


def test_parents_in_either_order_give_the_same_cropped_network():
    a, b = valid_pair()
    one, two = merge_networks([a, b]).graph, merge_networks([b, a]).graph
    assert [(n.name, n.op) for n in one] == [(n.name, n.op) for n in two]


def test_branches_too_far_apart_for_a_crop_are_refused():
    a = chain("a", [valid(3), valid(9), valid(1, 2, padding=3)], shape=(1, 20, 20))  # 18 -> 10
    b = chain("b", [valid(3), valid(5), valid(1, 2, padding=1)], shape=(1, 20, 20))  # 18 -> 14
    with pytest.raises(MergeError, match=r"concatenated at .*\(10x10, 14x14\).*more than a quarter"):
        merge_networks([a, b])
