"""The shipped SPDNN merges of thesis App. A (specs/iris_appa) and App. B (specs/depth): exact
merged structures (every node's op and inputs), widths and parameter counts against the
hand-derived values in each folder's expected.yml; the spdnn-merge-head pass's rules and errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

import spdnn
from spdnn.errors import SpdnnError
from spdnn.merge import MergeError, MergeOptions, merge_networks
from spdnn.passes import PASSES, get_pass
from spdnn.summary import totals

APPA = ROOT / "specs" / "iris_appa"
DEPTH = ROOT / "specs" / "depth"
HEAD = str(DEPTH / "head" / "merge_head.yaml")


def parents(folder):
    return [spdnn.load_spec(p) for p in sorted(folder.glob("*.yaml"))]


def expected_merge(folder, name):
    return yaml.safe_load((folder / "expected.yml").read_text(encoding="utf-8"))["merges"][name]


@pytest.fixture(scope="module")
def appa():
    return merge_networks(parents(APPA), "appa_spdnn", MergeOptions(budget="largest"))


@pytest.fixture(scope="module")
def depth():
    return merge_networks(parents(DEPTH), "depth_spdnn", MergeOptions(budget="largest", head=HEAD))


def ops(graph):
    return [(n.name, n.op, [str(v) for v in graph.inputs_of(n.name)]) for n in graph]


def cbr(name, src, bn="batch_norm", relu="relu"):
    """A conv with its batch norm and ReLU, as the merge (or a head spec) names them."""
    bn_name, relu_name = (f"{name}_{bn}", f"{name}_{relu}")
    return [(name, "conv2d", [src]), (bn_name, "batch_norm", [name]), (relu_name, "relu", [bn_name])]


def test_appa_parents_are_about_equal_in_size():
    sizes = {g.name: totals(g)[0] for g in parents(APPA)}
    assert sizes == {"net1_7x7": 43_681, "net2_3x3": 42_569, "net3_growing": 41_889}
    assert max(sizes.values()) / min(sizes.values()) < 1.05


def test_appa_merge_structure_every_node(appa):
    n1, n2, n3 = "net1_7x7__conv", "net2_3x3__conv", "net3_growing__conv"
    want = [("input", "input", []), *cbr(f"{n1}1", "input"), *cbr(f"{n1}2", f"{n1}1_relu"), *cbr("c3_d1", "input"),
            *cbr(f"{n2}2", "c3_d1_relu")]
    for i in (3, 4, 5):
        want += cbr(f"{n2}{i}", f"{n2}{i - 1}_relu")
    want += [(f"{n2}6", "conv2d", [f"{n2}5_relu"]), *cbr(f"{n3}2", "c3_d1_relu"),
             ("c7_d3_concat", "concat", [f"{n1}2_relu", f"{n3}2_relu"]),
             ("c7_d3", "conv2d", ["c7_d3_concat"]), *cbr("c7_d3", "c7_d3_concat")[1:], *cbr(f"{n1}4", "c7_d3_relu")]
    for i in (5, 6, 7):
        want += cbr(f"{n1}{i}", f"{n1}{i - 1}_relu")
    want += [(f"{n1}8", "conv2d", [f"{n1}7_relu"]), *cbr(f"{n3}4", "c7_d3_relu"),
             (f"{n3}5", "conv2d", [f"{n3}4_relu"]),
             ("head_concat", "concat", [f"{n2}6", f"{n1}8", f"{n3}5"]), ("head", "conv2d", ["head_concat"]),
             ("head_sigmoid", "sigmoid", ["head"]), ("output", "output", ["head_sigmoid"])]
    assert ops(appa.graph) == want


def test_appa_merge_sizes_are_the_hand_derived_ones(appa):
    want = expected_merge(APPA, "appa_spdnn")
    report = appa.report()
    assert report["sum_of_parents"]["params"] == want["parents_sum"]
    assert max(p["params"] for p in report["parents"].values()) == want["budget"]
    assert report["merged"]["params"] == want["params"]
    assert appa.widths == want["widths"]
    assert report["reduction_percent"]["params"] == 65.3


def test_depth_fc_parents_are_equal_in_size_and_dominate():
    sizes = {g.name: totals(g)[0] for g in parents(DEPTH)}
    assert [sizes[f"depth_net{i}"] for i in range(1, 5)] == [2_641] * 4
    fc = [sizes[f"depth_net{i}"] for i in range(5, 9)]
    assert fc == [1_289_793, 1_290_018, 1_290_918, 1_294_518]
    assert max(fc) / min(fc) < 1.004


def test_depth_merge_structure_every_node(depth):
    want = [("input", "input", []), *cbr("c3_d1", "input"), *cbr("c3_d2", "c3_d1_relu"), *cbr("c3_d3", "c3_d2_relu"),
            *cbr("c3_d4", "c3_d3_relu")]
    for p, pool in ((2, "c3_d1_max_pool2d"), (4, "c3_d1_max_pool2d_1"), (8, "c3_d1_max_pool2d_2")):
        want += [(pool, "max_pool2d", ["c3_d1_relu"]), *cbr(f"c3p{p}_d2", pool), *cbr(f"c3p{p}_d3", f"c3p{p}_d2_relu"),
                 *cbr(f"c3p{p}_d4", f"c3p{p}_d3_relu")]
    want += [  # node N: J, K, L pooled to M's 10x33 with their parents' max pooling; node O: unpooled to J's size
        ("pooled_c3_d4", "max_pool2d", ["c3_d4_relu"]), ("pooled_c3p2_d4", "max_pool2d", ["c3p2_d4_relu"]),
        ("pooled_c3p4_d4", "max_pool2d", ["c3p4_d4_relu"]),
        ("pooled", "concat", ["pooled_c3_d4", "pooled_c3p2_d4", "pooled_c3p4_d4", "c3p8_d4_relu"]),
        ("unpooled_c3p2_d4", "repeat_unpool", ["c3p2_d4_relu"]), ("unpooled_c3p4_d4", "repeat_unpool", ["c3p4_d4_relu"]),
        ("unpooled_c3p8_d4", "repeat_unpool", ["c3p8_d4_relu"]),
        ("unpooled", "concat", ["c3_d4_relu", "unpooled_c3p2_d4", "unpooled_c3p4_d4", "unpooled_c3p8_d4"]),
        *cbr("fcn1", "unpooled", "bn"), *cbr("fcn2", "fcn1_relu", "bn"),  # the FCN on O
        ("enc_flat", "flatten", ["pooled"]), ("bottleneck", "linear", ["enc_flat"]),  # the autoencoder on N
        ("bottleneck_relu", "relu", ["bottleneck"]), ("bottleneck_drop", "dropout", ["bottleneck_relu"]),
        ("dec_fc", "linear", ["bottleneck_drop"]), ("dec_fc_relu", "relu", ["dec_fc"]),
        ("dec_map", "reshape", ["dec_fc_relu"])]
    src = "dec_map"
    for i in (1, 2, 3):
        want += [(f"dec_unpool{i}", "repeat_unpool", [src]), *cbr(f"dec{i}", f"dec_unpool{i}", "bn")]
        src = f"dec{i}_relu"
    want += [("join", "concat", ["fcn2_relu", "dec3_relu"]), ("out", "conv2d", ["join"]), ("prob", "sigmoid", ["out"]),
             ("output", "output", ["prob"])]
    assert ops(depth.graph) == want
    g = depth.graph
    assert g.out_types("pooled")[0].sample_shape == (119, 10, 33)
    assert g.out_types("unpooled")[0].sample_shape == (119, 80, 264)
    assert g.node("out").attrs.out_channels == 1


def test_depth_merge_labels_are_the_thesis_nodes(depth):
    labels = {n["node"]: n["input_side_labels"] for n in depth.report()["nodes"]}
    # A = (3C,1) feeds B-E; J-M carry (3C,4), (3C2P,4), (3C4P,4), (3C8P,4) (L3401-3430)
    assert labels["c3_d1"] == ["(3C,1)"]
    assert [labels[n] for n in depth.report()["head"]["branches"]] == [["(3C,4)"], ["(3C2P,4)"], ["(3C4P,4)"],
                                                                         ["(3C8P,4)"]]


def test_depth_merge_sizes_are_the_hand_derived_ones(depth):
    want = expected_merge(DEPTH, "depth_spdnn")
    report = depth.report()
    assert report["sum_of_parents"]["params"] == want["parents_sum"]
    assert max(p["params"] for p in report["parents"].values()) == want["budget"]
    assert report["merged"]["params"] == want["params"]
    assert depth.widths == want["widths"]
    assert report["reduction_percent"]["params"] == 75.08  # the thesis: 75% (L1651-1653)
    head = report["head"]
    assert head["branches"] == ["c3_d4", "c3p2_d4", "c3p4_d4", "c3p8_d4"]
    assert head["removed"] == ["depth_net1__conv5", "depth_net2__conv5", "depth_net3__conv5", "depth_net4__conv5",
                               "c3_d6", "f30_d5", "f21120_d6"]
    assert "87.5%" in head["description"] and "Head (spdnn-merge-head)" in depth.report_markdown()


def test_merge_head_is_a_listed_pass_with_validated_options(tmp_path):
    assert "spdnn-merge-head" in PASSES
    listing = subprocess.run([sys.executable, "-m", "spdnn", "passes"], capture_output=True, text=True, check=True)
    assert "spdnn-merge-head" in listing.stdout
    with pytest.raises(SpdnnError, match="no such file"):
        get_pass("spdnn-merge-head", {"head": str(tmp_path / "missing.yaml")})
    with pytest.raises(SpdnnError, match="head"):
        get_pass("spdnn-merge-head", {})


def small_parents():
    """Two small parents with branches at 16x16 and 8x8 read by one FC block after merging."""
    def net(name, pool):
        layers = [{"name": "c1", "op": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": "same"},
                  {"name": "r1", "op": "relu"}]
        if pool:
            layers.append({"name": "p", "op": "max_pool2d", "kernel_size": 2})
        layers += [{"name": "c2", "op": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": "same"},
                   {"name": "flat", "op": "flatten"}, {"name": "fc", "op": "linear", "out_features": 3}]
        return spdnn.load_spec_text(yaml.safe_dump({"spdnn": 1, "name": name, "inputs": {"x": {"shape": [1, 16, 16]}},
                                                    "layers": layers, "outputs": {"y": "fc"}}))
    return [net("full", False), net("half", True)]


def head_spec(tmp_path, pooled=(8, 8), unpooled=(16, 16), extra=""):
    path = tmp_path / "head.yaml"
    path.write_text(f"""spdnn: 1
name: small_head
inputs:
  pooled: {{shape: [4, {pooled[0]}, {pooled[1]}]}}
  unpooled: {{shape: [4, {unpooled[0]}, {unpooled[1]}]}}
layers:
  - {{name: a, op: flatten, inputs: [pooled]}}
  - {{name: b, op: flatten, inputs: [unpooled]}}
  - {{name: ab, op: concat, inputs: [a, b]}}
  - {{name: fc, op: linear, out_features: 3}}
{extra}outputs:
  y: fc
""")
    return str(path)


def test_merge_head_on_small_parents_takes_branch_widths_from_the_merge(tmp_path):
    result = merge_networks(small_parents(), options=MergeOptions(head=head_spec(tmp_path)))
    g = result.graph
    assert result.head["branches"] == ["full__c2", "half__c2"]
    assert [str(v) for v in g.inputs_of("pooled")] == ["pooled_full__c2", "half__c2"]
    assert [str(v) for v in g.inputs_of("unpooled")] == ["full__c2", "unpooled_half__c2"]
    assert g.type_of(g.inputs_of("fc")[0]).sample_shape == (4 * 2 * 64 + 4 * 2 * 256,)
    assert result.head["removed"] == ["f3_d3"]
    assert ops(merge_networks(small_parents()[::-1], options=MergeOptions(head=head_spec(tmp_path))).graph) == ops(g)


def test_merge_head_input_of_the_wrong_size_is_named(tmp_path):
    with pytest.raises(SpdnnError, match=r"declares input 'pooled' of height and width \[4, 4\], but the pooled "
                                         r"form of the branches is \[8, 8\]"):
        merge_networks(small_parents(), options=MergeOptions(head=head_spec(tmp_path, pooled=(4, 4))))


def test_merge_head_must_keep_the_parents_output_shape(tmp_path):
    path = head_spec(tmp_path, extra="  - {name: fc2, op: linear, out_features: 5}\n")
    (tmp_path / "head.yaml").write_text((tmp_path / "head.yaml").read_text().replace("y: fc\n", "y: fc2\n"))
    with pytest.raises(MergeError, match=r"outputs \[5\], the parents \[3\]"):
        merge_networks(small_parents(), options=MergeOptions(head=path))


def test_merge_head_branch_errors(tmp_path):
    from spdnn.passes import run_pipeline
    from spdnn.passes.spdnn import MergeModule

    module = MergeModule.of(small_parents())
    run_pipeline(module, "spdnn-label-input,spdnn-contract,spdnn-label-output,spdnn-contract,spdnn-widths,"
                         "spdnn-to-network")
    with pytest.raises(MergeError, match="no merged block 'full__c9' \\(did you mean 'full__c2'\\?\\)"):
        run_pipeline(module, [("spdnn-merge-head", {"head": head_spec(tmp_path), "branches": ["full__c9", "half__c2"]})])
    with pytest.raises(MergeError, match="branch 'f3_d3' is not a conv block"):
        run_pipeline(module, [("spdnn-merge-head", {"head": head_spec(tmp_path), "branches": ["f3_d3"]})])
    plain = MergeModule.of(parents(APPA))
    run_pipeline(plain, "spdnn-label-input,spdnn-contract,spdnn-widths,spdnn-to-network")
    with pytest.raises(MergeError, match="no fully connected block of the merge reads several blocks"):
        run_pipeline(plain, [("spdnn-merge-head", {"head": head_spec(tmp_path)})])


def test_merge_head_with_warm_start_is_refused(tmp_path):
    with pytest.raises(MergeError, match="merge head cannot be combined with init_from_parents"):
        merge_networks(small_parents(), options=MergeOptions(head=head_spec(tmp_path), init_from_parents=True))


def test_cli_merge_head_missing_file_is_a_located_error(tmp_path):
    specs = [str(p) for p in sorted(APPA.glob("*.yaml"))]
    proc = subprocess.run([sys.executable, "-m", "spdnn", "compile", *specs, "--merge-head",
                           str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("folder,args,line", [
    (APPA, ["--budget", "largest"], "merged 3 parents into m: 19 layers became 17 (65.3% fewer parameters than "
                                    "the parents together)"),
    (DEPTH, ["--merge-head", HEAD, "--budget", "largest"],
     "merged 8 parents into m: 48 layers became 20, 7 of them replaced by the head (75.08% fewer parameters than "
     "the parents together)"),
])
def test_folder_readme_merge_commands(tmp_path, folder, args, line):
    specs = [str(p) for p in sorted(folder.glob("*.yaml"))]
    proc = subprocess.run([sys.executable, "-m", "spdnn", "compile", *specs, *args, "-o", str(tmp_path), "--name", "m"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == line
    assert (tmp_path / "merge_report.md").is_file() and (tmp_path / "m.onnx").is_file()


def test_depth_merge_trains_a_step_and_matches_onnxruntime(depth):
    import torch
    from test_merge import train_bce
    from test_onnx_export import assert_parity

    torch.manual_seed(0)
    module = spdnn.build_torch(depth.graph, seed=0)
    x, target = torch.rand(2, 2, 80, 264), torch.rand(2, 1, 80, 264)
    optimiser = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    losses = train_bce(module, x, target, optimiser, steps=3)
    assert losses[-1] < losses[0]
    module.eval()
    assert_parity(depth.graph, 1, module)
