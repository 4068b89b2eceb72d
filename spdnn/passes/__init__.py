"""Compiler passes, by name: ``spdnn.run_passes(graph, [("insert-dropout", {"p": 0.2}), "infer-shapes"])``.

``spdnn passes`` lists them; :mod:`spdnn.passes.registry` says how pipelines are written and
:mod:`spdnn.passes.options` how options are validated.
"""

from spdnn.passes.base import Pass, PassManager, PassResult
from spdnn.passes.infer_shapes import InferShapesPass, infer_shapes
from spdnn.passes.insert_dropout import InsertDropoutPass, insert_dropout
from spdnn.passes.options import OneOrMore, OptionInfo, PassOptionsError, option_infos
from spdnn.passes.registry import (
    PASSES,
    PipelineEntry,
    get_pass,
    make_pipeline,
    parse_pipeline_text,
    register_pass,
    run_pipeline,
)

__all__ = [
    "PASSES", "InferShapesPass", "InsertDropoutPass", "OneOrMore", "OptionInfo", "Pass", "PassManager",
    "PassOptionsError", "PassResult", "PipelineEntry", "get_pass", "infer_shapes", "insert_dropout",
    "make_pipeline", "option_infos", "parse_pipeline_text", "register_pass", "run_pipeline",
]

register_pass(InferShapesPass)
register_pass(InsertDropoutPass)

from spdnn.passes.spdnn import SPDNN_STAGES  # noqa: E402  (the SPDNN merge stages; they import spdnn.merge)

for _stage in SPDNN_STAGES:
    register_pass(_stage)
