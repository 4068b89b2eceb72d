"""The public facade of ``import spdnn`` is small and pinned."""

import spdnn


def test_public_names_are_pinned():
    assert sorted(spdnn.__all__) == sorted([
        "ExportError", "Graph", "MergeOptions", "MergeResult", "Node", "PASSES", "Pass", "PassError", "PassManager", "PassResult",
        "Problem", "ShapeError", "SpdnnError", "SpecError", "Summary", "TensorType", "UnknownOpError", "UnsupportedOpError",
        "Value", "VerifyError", "__version__", "all_ops", "build_torch", "count_params", "get_op",
        "export_onnx", "get_pass", "import_onnx", "infer_shapes", "load_spec", "load_spec_text", "merge_networks", "run_onnx", "run_passes", "summarize",
        "build_system", "load_system", "load_plugins", "register_op", "register_pass",
    ])
    for name in spdnn.__all__:
        assert getattr(spdnn, name) is not None


def test_every_user_error_is_an_spdnn_error():
    for cls in (spdnn.SpecError, spdnn.UnknownOpError, spdnn.UnsupportedOpError, spdnn.VerifyError, spdnn.ShapeError,
                spdnn.PassError, spdnn.ExportError):
        assert issubclass(cls, spdnn.SpdnnError)


def test_issue_ops_are_registered():
    assert set(spdnn.all_ops()) == {
        "input", "output", "conv2d", "conv_transpose2d", "linear", "flatten", "reshape", "batch_norm",
        "dropout", "gaussian_noise", "relu", "leaky_relu", "elu", "tanh", "sigmoid", "softmax",
        "identity", "max_pool2d", "max_unpool2d", "avg_pool2d", "adaptive_avg_pool2d", "upsample",
        "repeat_unpool", "concat", "add", "mul", "pad", "crop",
        # the papers' building blocks (issue 11)
        "dynamic_conv2d", "sample_conv2d", "haar_pool", "haar_unpool", "log_filter_bank",
        "minibatch_discrimination", "repeat_code", "wct",
    }
