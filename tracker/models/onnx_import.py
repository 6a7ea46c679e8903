"""Weights of a BatchNorm-folded ONNX graph put into our unfolded network, layer by layer in call order.

Third-party deployments (NanoTrack's pair for cv2.TrackerNano, LightFC's) ship graphs, not state
dicts. Their Conv/Gemm weights, in node order, are matched to our layers in the order one forward
runs them; shapes and groups must agree at every position, so a wrong architecture is refused.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import WeightsError

Layer = tuple[str, np.ndarray, Any, int]  # op, weight, bias (or None), groups


def onnx_layers(path: Path, hint: str) -> tuple[int, list[Layer]]:
    """(number of graph inputs, [(op, weight, bias, groups)] of every Conv/Gemm with constant weights, in order)."""
    try:
        import onnx
        from onnx import numpy_helper
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises its own types for foreign bytes
        raise WeightsError(f"cannot read {path} as an ONNX model ({type(exc).__name__}); {hint}") from None
    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    layers = []
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm") and len(node.input) > 1 and node.input[1] in consts:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            weight = consts[node.input[1]]
            if node.op_type == "Gemm" and not attrs.get("transB", 0):
                weight = weight.T
            bias = consts.get(node.input[2]) if len(node.input) > 2 else None
            layers.append((node.op_type, weight, bias, int(attrs.get("group", 1))))
    inputs = {i.name for i in graph.input} - set(consts)
    return len(inputs), layers


def call_order(net: nn.Module, exemplar: int, search: int) -> tuple[list[nn.Module], list[nn.Module]]:
    """Conv2d/Linear layers in the order one embed (search crop) and one head call run them."""
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m))
             for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            z = net.embed(torch.zeros(1, 3, exemplar, exemplar))
            order.clear()
            x = net.embed(torch.zeros(1, 3, search, search))
            backbone = list(order)
            order.clear()
            net.outputs(z, x)
    finally:
        for h in hooks:
            h.remove()
    return backbone, list(order)


def fits(modules: Sequence[nn.Module], layers: Sequence[Layer]) -> bool:
    """Same layer kinds, weight shapes and groups, in the same order."""
    if len(modules) != len(layers):
        return False
    for m, (op, w, _, groups) in zip(modules, layers):
        if (op == "Conv") != isinstance(m, nn.Conv2d) or tuple(m.weight.shape) != w.shape:
            return False
        if isinstance(m, nn.Conv2d) and m.groups != groups:
            return False
    return True


def _batchnorm_after(net: nn.Module) -> dict[nn.Module, nn.BatchNorm2d]:
    pairs = {}
    for seq in net.modules():
        if isinstance(seq, nn.Sequential):
            layers = list(seq)
            for a, b in zip(layers, layers[1:]):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    pairs[a] = b
    return pairs


@torch.no_grad()
def load_folded(net: nn.Module, modules: Sequence[nn.Module], layers: Sequence[Layer]) -> None:
    """Put folded (Conv+BN) weights into an unfolded net: conv <- weight, its BN <- identity + bias."""
    after = _batchnorm_after(net)
    for m, (_, w, b, _) in zip(modules, layers):
        m.weight.copy_(torch.from_numpy(np.array(w, np.float32)))
        bias = torch.from_numpy(np.array(b, np.float32)) if b is not None else torch.zeros(m.weight.shape[0])
        bn = after.get(m)
        if bn is not None:
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.weight.fill_(math.sqrt(1.0 + bn.eps))
            bn.bias.copy_(bias)
            if m.bias is not None:
                m.bias.zero_()
        elif m.bias is not None:
            m.bias.copy_(bias)
