"""Compiler passes, by name: ``spdnn.run_passes(graph, [("insert-dropout", {"p": 0.2}), "infer-shapes"])``.

``spdnn passes`` lists them; :mod:`spdnn.passes.registry` says how pipelines are written and
:mod:`spdnn.passes.options` how options are validated.
"""

from spdnn.passes.base import Pass, PassManager, PassResult
from spdnn.passes.infer_shapes import InferShapesPass, infer_shapes
from spdnn.passes.insert_dynamic_filters import InsertDynamicFiltersPass, insert_dynamic_filters
from spdnn.passes.insert_dropout import InsertDropoutPass, insert_dropout
from spdnn.passes.insert_aux_head import InsertAuxHeadPass, insert_aux_head
from spdnn.passes.mirror import MirrorPass, mirror
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
    "PASSES", "InferShapesPass", "InsertAuxHeadPass", "InsertDropoutPass", "InsertDynamicFiltersPass", "MirrorPass", "OneOrMore", "OptionInfo", "Pass", "PassManager",
    "PassOptionsError", "PassResult", "PipelineEntry", "get_pass", "infer_shapes", "insert_aux_head", "insert_dynamic_filters", "insert_dropout",
    "make_pipeline", "mirror", "option_infos", "parse_pipeline_text", "register_pass", "run_pipeline",
]

register_pass(InferShapesPass)
register_pass(InsertDropoutPass)
register_pass(MirrorPass)
register_pass(InsertAuxHeadPass)
register_pass(InsertDynamicFiltersPass)

from spdnn.passes.spdnn import SPDNN_STAGES, SpdnnMergeHeadPass  # noqa: E402  (they import spdnn.merge)

for _stage in SPDNN_STAGES:
    register_pass(_stage)
register_pass(SpdnnMergeHeadPass)
