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
