"""Typed keys of per-node metadata (``Graph.meta_of(name)``).

Attributes are what the user specified; metadata is what passes derived or tooling recorded.
Keeping the keys here, as constants, stops two passes from colliding on a string.
"""

#: list[TensorType]: one type per output port (set by shape inference).
OUT_TYPES = "out_types"
#: spdnn.errors.Problem: where the node was written in its spec (file, line, column, location).
ORIGIN = "origin"
#: str: the paper citation attached to the layer in its spec (``source:`` key).
SOURCE = "source"
#: int: trainable parameters of the node (set by shape inference).
PARAMS = "params"
#: int: FLOPs of the node for one sample (set by shape inference).
FLOPS = "flops"
#: list[str]: the parent layers (``parent.layer``) an SPDNN-merged node stands for (set by the merge).
MERGED_FROM = "merged_from"
#: str: the SPDNN label of a merged node's block as the thesis prints it, e.g. ``(3C,4)``.
SPDNN_LABEL = "spdnn_label"
#: spdnn.layer_options.LayerOptions: a layer's trainable / init / spectral_norm options (absent: defaults).
LAYER_OPTIONS = "layer_options"
