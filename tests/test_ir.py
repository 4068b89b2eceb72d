"""The IR graph: ports, deterministic order, mutation and verification."""

from __future__ import annotations

import networkx as nx
import pytest

import spdnn
from spdnn import Graph, Value, VerifyError
from spdnn.ir.graph import Node
from spdnn.ir.naming import sanitize, unique_name


def chain() -> Graph:
    g = Graph("chain")
    g.add_node("x", "input", {"shape": [3]})
    g.add_node("a", "relu", {}, ["x"])
    g.add_node("b", "tanh", {}, ["a"])
    g.add_node("y", "output", {}, ["b"])
    return g


def test_same_value_consumed_twice_makes_two_edges():
    g = Graph()
    g.add_node("x", "input", {"shape": [3]})
    g.add_node("s", "add", {}, ["x", "x"])
    g.add_node("y", "output", {}, ["s"])
    assert g.inputs_of("s") == [Value("x", 0), Value("x", 0)]
    assert g.num_edges() == 3
    g.verify()


def test_multi_output_ports_are_addressed_by_index():
    g = Graph()
    g.add_node("x", "input", {"shape": [1, 4, 4]})
    g.add_node("p", "max_pool2d", {"kernel_size": 2, "return_indices": True}, ["x"])
    g.add_node("u", "max_unpool2d", {"kernel_size": 2}, [("p", 0), ("p", 1)])
    g.add_node("y", "output", {}, ["u"])
    spdnn.infer_shapes(g)
    assert g.type_of(("p", 1)).dtype == "int64"
    assert g.users_of("p") == [("u", 0, 0), ("u", 1, 1)]


def test_topological_order_breaks_ties_by_insertion():
    g = Graph()
    g.add_node("x", "input", {"shape": [3]})
    for name in ["z", "b", "m"]:
        g.add_node(name, "relu", {}, ["x"])
    g.add_node("cat", "concat", {"axis": 1}, ["m", "b", "z"])
    g.add_node("y", "output", {}, ["cat"])
    assert g.topo_order() == ["x", "z", "b", "m", "cat", "y"]


def test_records_give_each_node_with_its_inputs_in_slot_order_and_its_own_meta():
    g = Graph()
    g.add_node("x", "input", {"shape": [3]})
    for name in ["z", "b"]:
        g.add_node(name, "relu", {}, ["x"])
    g.add_node("cat", "concat", {"axis": 1}, ["b", "z", "b"])
    g.add_node("y", "output", {}, ["cat"])
    g.meta_of("z")["note"] = 1
    records = list(g.records())
    assert [node.name for node, _, _ in records] == g.topo_order() == ["x", "z", "b", "cat", "y"]
    assert [[str(v) for v in inputs] for _, inputs, _ in records] == [[], ["x"], ["x"], ["b", "z", "b"], ["cat"]]
    assert records[1][2] is g.meta_of("z")
    g.disconnect("cat", 0)  # a changed graph: the next walk sees it
    g.connect("z", "cat", 0)
    assert [str(v) for v in dict((n.name, i) for n, i, _ in g.records())["cat"]] == ["z", "z", "b"]


def test_names_are_sanitised_and_made_unique():
    assert sanitize("conv 1-a") == "conv_1_a"
    assert sanitize("1st") == "n_1st"
    assert sanitize("class") == "class_"
    assert unique_name("conv", {"conv", "conv_1"}) == "conv_2"
    assert chain().unique_name("a") == "a_1"


def test_add_node_rejects_bad_names_duplicates_and_missing_inputs():
    g = chain()
    with pytest.raises(VerifyError, match="already exists"):
        g.add_node("a", "relu", {}, ["x"])
    with pytest.raises(VerifyError, match="invalid node name"):
        g.add_node("a.b", "relu", {}, ["x"])
    with pytest.raises(VerifyError, match="does not exist"):
        g.add_node("c", "relu", {}, ["nope"])
    with pytest.raises(spdnn.UnknownOpError, match="did you mean 'relu'"):
        g.add_node("c", "rellu", {}, ["x"])
    with pytest.raises(VerifyError, match="invalid attributes for conv2d"):
        g.add_node("c", "conv2d", {"kernel_size": 3}, ["x"])


def test_verify_reports_cycles_with_the_path():
    g = chain()
    g.connect("b", "a", 1)
    g.disconnect("a", 0)
    g.connect("a", "b", 1)
    with pytest.raises(VerifyError, match="has a cycle"):
        g.verify()


def test_verify_reports_arity_and_unreachable_outputs():
    g = Graph()
    g.add_node("x", "input", {"shape": [3]})
    g.add_node("x2", "input", {"shape": [3]})
    g.add_node("r", "relu", {}, ["x", "x2"])
    g.add_node("y", "output", {}, ["r"])
    with pytest.raises(VerifyError, match="relu takes 1 inputs, has 2"):
        g.verify()
    h = Graph()
    h.add_node("x", "input", {"shape": [3]})
    h.add_node("y", "output", {}, ["x"])
    h.verify()
    h.disconnect("y", 0)
    with pytest.raises(VerifyError, match="output takes 1 inputs, has 0"):
        h.verify()


def test_remove_refuses_nodes_with_users_and_replace_all_uses_with_moves_edges():
    g = chain()
    with pytest.raises(VerifyError, match="still used by"):
        g.remove("a")
    assert g.replace_all_uses_with("a", "x") == 1
    g.remove("a")
    assert [n.name for n in g] == ["x", "b", "y"]
    g.verify()


def test_copy_is_independent_and_structure_comparable():
    g = chain()
    h = g.copy()
    assert h.structure() == g.structure()
    h.replace_node("a", h.node("a").replace(op="sigmoid"))
    assert h.structure() != g.structure()
    assert g.node("a").op == "relu"


def test_node_replace_revalidates_attributes():
    g = Graph()
    g.add_node("x", "input", {"shape": [1, 4, 4]})
    node = g.add_node("c", "conv2d", {"out_channels": 2, "kernel_size": 3}, ["x"])
    assert node.replace(attrs={"kernel_size": 1}).attrs.kernel_size == (1, 1)


def test_view_is_read_only():
    view = chain().view()
    with pytest.raises(nx.NetworkXError, match="Frozen graph"):
        view.add_node("z")


def test_printer_is_stable():
    g = chain()
    spdnn.infer_shapes(g)
    assert str(g) == (
        "graph chain {\n"
        "  %x = input(){shape=[3]} : (N, 3)\n"
        "  %a = relu(%x){} : (N, 3)\n"
        "  %b = tanh(%a){} : (N, 3)\n"
        "  %y = output(%b){}\n"
        "}"
    )


def test_pass_manager_runs_passes_by_name_and_rejects_unknown():
    g = chain()
    spdnn.run_passes(g, "infer-shapes")
    assert g.out_types("b")[0].shape == ("N", 3)
    with pytest.raises(spdnn.SpdnnError, match="did you mean 'infer-shapes'"):
        spdnn.run_passes(g, "infer-shape")


def test_output_ports_by_name_resolve_to_their_index():
    g = Graph("ports")
    g.add_node("x", "input", {"shape": [3, 8, 8]})
    g.add_node("pool", "haar_pool", {}, ["x"])
    g.add_node("hh", "relu", {}, [("pool", "hh")])
    g.add_node("y", "output", {}, ["hh"])
    assert g.inputs_of("hh") == [Value("pool", 3)]
    spdnn.infer_shapes(g)
    assert g.type_of(("pool", "hh")) == g.type_of(("pool", 3))
    with pytest.raises(VerifyError, match="haar_pool node 'pool' has no output port 'zz'"):
        g.add_node("bad", "relu", {}, [("pool", "zz")])


def test_verify_names_attributes_of_another_op():
    g = Graph("swapped")
    x = g.add_node("x", "input", {"shape": [4]})
    fc = g.add_node("fc", "linear", {"out_features": 2}, inputs=[x])
    g.add_node("y", "output", inputs=[fc])
    relu_attrs = g.add_node("r", "relu", {}, inputs=[fc]).attrs
    g.replace_node("fc", Node("fc", "linear", relu_attrs))
    with pytest.raises(VerifyError, match="fc: attributes are .*, linear needs LinearAttrs"):
        g.verify()
