"""JSON Schema of the spec format, generated from the op registry (``spdnn schema``).

Each layer entry is validated against the schema of its op (selected by ``op``); attribute
values may also be ``$expr`` strings. Editors with YAML language support use it for
completion and validation: ``# yaml-language-server: $schema=spdnn.schema.json``.
"""

from __future__ import annotations

import copy
from typing import Any

from spdnn.layer_options import SPECTRAL_NORM_OPS, LayerOptions
from spdnn.ops import all_ops
from spdnn.passes import PASSES
from spdnn.passes.options import options_model
from spdnn.plugins import load_plugins

from .document import SpecDocument

__all__ = ["spec_json_schema"]

_EXPR = {"type": "string", "pattern": "^\\$", "description": "an expression over vars, e.g. $width * 2"}
_STR_OR_LIST = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
#: An identifier, where ``${...}`` interpolations may stand for parts (``conv${i}``).
NAME_PATTERN = r"^([A-Za-z_]|\$\{[^}]*\})([A-Za-z0-9_]|\$\{[^}]*\})*$"
_NAME = {"type": "string", "pattern": NAME_PATTERN, "maxLength": 128}


def _attr_schemas(op: str, defs: dict[str, Any]) -> dict[str, Any]:
    """Schemas of an op's attributes (each also accepting a ``$expr``), with descriptions."""
    schema = all_ops()[op].attrs.model_json_schema()
    defs.update(schema.pop("$defs", {}))
    return {key: {"anyOf": [prop, _EXPR], **({"description": prop["description"]} if "description" in prop else {})}
            for key, prop in schema.get("properties", {}).items()}


def _option_schemas(op: str, defs: dict[str, Any]) -> dict[str, Any]:
    """``trainable``, ``init`` (a rule name: the weight's, or a mapping per parameter) and, on the
    ops that have a weight to normalise, ``spectral_norm`` (see :mod:`spdnn.layer_options`)."""
    schema = LayerOptions.model_json_schema()
    defs.update(schema.pop("$defs", {}))
    props = schema["properties"]
    rule_names = defs["InitRule"]["properties"]["rule"]
    init = {"anyOf": [rule_names, {"$ref": "#/$defs/InitRule"},
                      {"type": "object", "additionalProperties": {"anyOf": [rule_names, {"$ref": "#/$defs/InitRule"}]}}],
            "description": "initialisation: a rule for the weight, or {parameter: rule}"}
    out = {"trainable": {**props["trainable"], "description": "false: parameters frozen (requires_grad False)"},
           "init": init}
    if op in SPECTRAL_NORM_OPS:
        out["spectral_norm"] = {**props["spectral_norm"], "description": "weight / sigma(weight) (torch spectral_norm)"}
    return out


def _layer_schema(op: str, defs: dict[str, Any]) -> dict[str, Any]:
    opdef = all_ops()[op]
    props: dict[str, Any] = {
        "name": {**_NAME, "description": "layer name: an identifier (default: <op>, <op>_1, ...)"},
        "op": {"const": op, "description": opdef.doc},
        "inputs": {**_STR_OR_LIST, "description": "graph inputs or earlier layers (name or name:port); "
                   "default: the previous layer"},
        "source": {"type": "string", "description": "citation: paper, table/figure, lines"},
        "note": {"type": "string"},
    }
    props.update(_option_schemas(op, defs))
    props.update(_attr_schemas(op, defs))
    return {
        "title": f"{op} layer",
        "description": (opdef.attrs.__doc__ or opdef.doc).strip(),
        "type": "object",
        "properties": props,
        # Required attributes are not listed: a spec's defaults: may supply them.
        "required": ["op"],
        "additionalProperties": False,
    }


def _passes_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """``passes:``: a list of pass names or ``{name: NAME, option: value}`` mappings."""
    load_plugins()
    names = sorted(PASSES)
    entries: list[dict[str, Any]] = [{"enum": names, "description": "a pass with default options"}]
    for name in names:
        schema = options_model(PASSES[name]).model_json_schema()
        defs.update(schema.pop("$defs", {}))
        props = {key: {"anyOf": [prop, _EXPR], **({"description": prop["description"]} if "description" in prop else {})}
                 for key, prop in schema.get("properties", {}).items()}
        doc = (PASSES[name].__doc__ or "").strip().splitlines()
        entries.append({"type": "object", "description": doc[0] if doc else name,
                        "properties": {"name": {"const": name}, **props},
                        "required": ["name"], "additionalProperties": False})
    return {"type": "array", "items": {"anyOf": entries},
            "description": "passes run on the built graph, in order (spdnn passes lists them)"}


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a network spec file."""
    schema = copy.deepcopy(SpecDocument.model_json_schema())
    defs = schema.setdefault("$defs", {})
    layer_refs = []
    op_defaults: dict[str, Any] = {}
    for op in sorted(all_ops()):
        if op in ("input", "output"):
            continue
        key = f"layer_{op}"
        defs[key] = _layer_schema(op, defs)
        layer_refs.append({"$ref": f"#/$defs/{key}"})
        op_defaults[op] = {"type": "object", "description": f"default attributes and layer options of every {op} layer",
                           "properties": {**_option_schemas(op, defs), **_attr_schemas(op, defs)},
                           "additionalProperties": False}
    defs["op_defaults"] = {"type": "object", "description": "default attributes per op",
                           "properties": op_defaults, "additionalProperties": False}
    defs["repeat_block"] = {
        "title": "repeat block",
        "type": "object",
        "properties": {
            "repeat": {"anyOf": [{"type": "integer", "minimum": 1}, _EXPR]},
            "index": {"type": "string", "default": "i"},
            "start": {"type": "integer", "default": 1},
            "defaults": {"$ref": "#/$defs/op_defaults"},
            "layers": {"$ref": "#/$defs/layer_list"},
        },
        "required": ["repeat", "layers"],
        "additionalProperties": False,
    }
    defs["layer_list"] = {
        "type": "array", "minItems": 1,
        "items": {"anyOf": [*layer_refs, {"$ref": "#/$defs/repeat_block"}]},
    }
    schema["properties"]["passes"] = _passes_schema(defs)
    schema["properties"]["layers"] = {"$ref": "#/$defs/layer_list"}
    schema["properties"]["defaults"] = {"$ref": "#/$defs/op_defaults"}
    schema["properties"]["name"] = {**_NAME, "description": "model name: an identifier; names the output files"}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "spdnn network spec"
    return schema
