"""``insert-dynamic-filters``: seed 000's system, a prediction network whose chosen
convolutions get per-sample filters generated from an autoencoder's feature maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import PositiveInt

from spdnn.errors import PassError
from spdnn.ir import meta as M
from spdnn.ir.graph import Graph, Value
from spdnn.ops.base import suggest
from spdnn.passes.base import Pass, PassResult
from spdnn.passes.graft import SpecPath, graft, load_network
from spdnn.passes.infer_shapes import infer_shapes
from spdnn.passes.options import OneOrMore

__all__ = ["InsertDynamicFiltersPass", "insert_dynamic_filters", "reduction_stages"]

_UPSAMPLING = ("conv_transpose2d", "upsample", "repeat_unpool", "max_unpool2d")


@dataclass(frozen=True)
class InsertDynamicFiltersPass(Pass):
    """Make the chosen convolutions dynamic, their filters generated per sample from an autoencoder.

    Seed 000 (§3, L110-185, Fig. 1-2; MNIST Tables 4-7, L381-445).

    Rules:
      1. The graph is the prediction network; the spec at ``autoencoder`` is grafted in with
         its layers named ``<prefix><layer>``, its input reading the prediction network's
         input (same shape), its outputs (the reconstruction) added as graph outputs
         ``<prefix><output>`` after the prediction's, so L = L_rec + L_cls can be trained.
      2. The i-th layer of ``convs`` (conv2d layers, groups 1) is paired with the i-th tap:
         the autoencoder layers named in ``taps``, by default its conv2d layers before its
         first upsampling layer, in order. A tapped map is read before its activation
         (L407-408): when the tap's only user is a batch_norm, after that batch_norm.
      3. Dimension reduction (Tables 6-7), per tapped C x H x W map, each stage a conv2d (C
         filters) + batch_norm + leaky_relu named ``<conv>_dr<k>[_bn|_act]``: first, along an
         axis that is a multiple of 7 above 7, kernel = stride = size/7 (28 -> 7, 14 -> 7);
         then kernel 3, stride 3, padding 1 while the size is above 3 (7 -> 3); then kernel =
         the size (3 -> 1). Then ``<conv>_dr_flatten`` and ``<conv>_dr_fc`` (``features``
         outputs, default C) + ``<conv>_dr_fc_act`` (leaky_relu).
      4. Filter generation (L145-167): ``<conv>_fg``, a linear without bias from the
         feature vector to out_channels x M coefficients (M = ``repository_size``, default
         the conv's out_channels, L193-194); the conv is replaced by a ``dynamic_conv2d`` of
         the same name, kernel, stride, padding and dilation, without bias (L147), reading
         the conv's input and the coefficients.
      5. A layer of ``convs`` that is already a dynamic_conv2d is an error, so applying the
         pass twice is refused; so is an unknown layer, a tap that is missing, or fewer taps
         than convs.
    """

    name: ClassVar[str] = "insert-dynamic-filters"

    autoencoder: SpecPath
    """Path of the autoencoder's YAML spec."""
    convs: OneOrMore
    """The prediction network's conv2d layers that become dynamic, in order."""
    taps: OneOrMore | None = None
    """Autoencoder layers tapped for each conv, in order (default: its encoder's conv2d layers)."""
    repository_size: PositiveInt | None = None
    """Base filters M per dynamic convolution (default: the conv's out_channels)."""
    features: PositiveInt | None = None
    """Length Lf of each sample-specific feature vector (default: the tapped map's channels)."""
    prefix: str = "ae_"
    """Prefix of the autoencoder's layer and output names."""

    def call(self, graph: Graph) -> PassResult:
        insert_dynamic_filters(graph, self)
        return PassResult(graph, True)


def insert_dynamic_filters(graph: Graph, options: InsertDynamicFiltersPass) -> None:
    """Apply the rules of :class:`InsertDynamicFiltersPass` in place."""
    infer_shapes(graph)
    for conv in options.convs:
        _check_conv(graph, conv)
    ae = load_network(options.autoencoder)
    taps = _taps(ae, options)
    inputs, ae_inputs = graph.input_nodes(), ae.input_nodes()
    if len(inputs) != 1 or len(ae_inputs) != 1:
        raise PassError(f"insert-dynamic-filters: the prediction network and the autoencoder need one input each, "
                        f"got {len(inputs)} and {len(ae_inputs)}")
    outputs = graft(graph, ae, options.prefix, {ae_inputs[0].name: Value(inputs[0].name, 0)},
                    f"autoencoder {options.autoencoder!r}")
    for name, value in outputs.items():
        graph.add_node(options.prefix + name, "output", {}, [value])
    for conv, tap in zip(options.convs, taps, strict=False):
        features = _reduce(graph, conv, Value(options.prefix + tap, 0), options.features)
        _make_dynamic(graph, conv, features, options.repository_size)
    infer_shapes(graph)


def _check_conv(graph: Graph, name: str) -> None:
    if name not in graph:
        hint = suggest(name, [n.name for n in graph.nodes("conv2d")])
        raise PassError(f"insert-dynamic-filters: no layer {name!r} in the prediction network"
                        + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    op = graph.node(name).op
    if op == "dynamic_conv2d":
        raise PassError(f"insert-dynamic-filters: layer {name!r} is a dynamic_conv2d already (were its filters "
                        "made dynamic before?)")
    if op != "conv2d" or graph.node(name).attrs.groups != 1:
        raise PassError(f"insert-dynamic-filters: layer {name!r} ({op}) is not a conv2d with groups 1")


def _taps(ae: Graph, options: InsertDynamicFiltersPass) -> list[str]:
    """The tapped autoencoder layer of each conv (rule 2), unprefixed."""
    if options.taps is None:
        names = []
        for name in ae.topo_order():
            if ae.node(name).op in _UPSAMPLING:
                break
            if ae.node(name).op == "conv2d":
                names.append(name)
    else:
        names = list(options.taps)
        for name in names:
            if name not in ae or ae.node(name).op in ("input", "output"):
                hint = suggest(name, [n.name for n in ae if n.op not in ("input", "output")])
                raise PassError(f"insert-dynamic-filters: no layer {name!r} to tap in the autoencoder"
                                + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    if len(names) < len(options.convs):
        raise PassError(f"insert-dynamic-filters: {len(options.convs)} convs to make dynamic but "
                        f"{len(names)} tapped autoencoder layers ({', '.join(names) or 'none'})")
    out = []
    for name in names[:len(options.convs)]:
        users = ae.users_of(name)
        out.append(users[0][0] if len(users) == 1 and ae.node(users[0][0]).op == "batch_norm" else name)
    return out


def reduction_stages(size: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, padding) of the dimension-reduction stages along one axis (rule 3)."""
    stages = []
    if size > 7 and size % 7 == 0:
        stages.append((size // 7, size // 7, 0))
        size = 7
    while size > 3:
        stages.append((3, 3, 1))
        size = (size - 1) // 3 + 1
    if size > 1:
        stages.append((size, 1, 0))
    return stages


def _reduce(graph: Graph, conv: str, x: Value, features: int | None) -> Value:
    """The dimension-reduction subnetwork of ``conv`` on tapped value ``x`` (rule 3)."""
    c, h, w = (int(d) for d in graph.type_of(x).sample_shape)
    along_h, along_w = reduction_stages(h), reduction_stages(w)
    depth = max(len(along_h), len(along_w))
    along_h += [(1, 1, 0)] * (depth - len(along_h))
    along_w += [(1, 1, 0)] * (depth - len(along_w))
    for k, ((kh, sh, ph), (kw, sw, pw)) in enumerate(zip(along_h, along_w, strict=True), 1):
        x = _add(graph, f"{conv}_dr{k}", "conv2d", {"out_channels": c, "kernel_size": [kh, kw],
                                                    "stride": [sh, sw], "padding": [ph, pw]}, [x], conv)
        x = _add(graph, f"{conv}_dr{k}_bn", "batch_norm", {}, [x], conv)
        x = _add(graph, f"{conv}_dr{k}_act", "leaky_relu", {}, [x], conv)
    x = _add(graph, f"{conv}_dr_flatten", "flatten", {}, [x], conv)
    x = _add(graph, f"{conv}_dr_fc", "linear", {"out_features": features or c}, [x], conv)
    return _add(graph, f"{conv}_dr_fc_act", "leaky_relu", {}, [x], conv)


def _make_dynamic(graph: Graph, conv: str, features: Value, repository_size: int | None) -> None:
    """Replace ``conv`` by a dynamic_conv2d of the same name (rule 4)."""
    a = graph.node(conv).attrs
    m = repository_size or a.out_channels
    coefficients = _add(graph, f"{conv}_fg", "linear",
                        {"out_features": a.out_channels * m, "bias": False}, [features], conv)
    (x,) = graph.inputs_of(conv)
    users = graph.users_of(conv)
    for user, slot, _ in users:
        graph.disconnect(user, slot)
    meta = dict(graph.meta_of(conv))
    graph.remove(conv)
    graph.add_node(conv, "dynamic_conv2d", {"out_channels": a.out_channels, "kernel_size": list(a.kernel_size),
                                            "repository_size": m, "stride": list(a.stride),
                                            "padding": a.padding, "dilation": list(a.dilation)},
                   [x, coefficients])
    for key in (M.ORIGIN, M.SOURCE):
        if key in meta:
            graph.meta_of(conv)[key] = meta[key]
    for user, slot, port in users:
        graph.connect(Value(conv, port), user, slot)


def _add(graph: Graph, name: str, op: str, attrs: dict, inputs: list[Value], like: str) -> Value:
    if name in graph:
        raise PassError(f"insert-dynamic-filters: the graph has a layer named {name!r} already")
    graph.add_node(name, op, attrs, inputs)
    origin = graph.meta_of(like).get(M.ORIGIN)
    if origin is not None:
        graph.meta_of(name)[M.ORIGIN] = origin
    return Value(name, 0)
