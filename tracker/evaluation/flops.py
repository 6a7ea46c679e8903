"""FLOP counts as executed: 2 x multiply-accumulates of every convolution and matrix product.

Counting at the ATen dispatch level sees every conv/matmul a forward really runs (module or
functional, inside heads included), so new backbones and heads need no per-layer rules.
Element-wise ops, pooling and activations are not counted (the usual convention).
ONNX graphs (NanoTrack) are counted the same way from their inferred shapes.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..config import LoopConfig
from ..models import Network

aten = torch.ops.aten


def _conv_macs(args: tuple, out: torch.Tensor) -> int:
    if len(args) > 6 and args[6] is True:  # aten.convolution, transposed: each input meets a kernel slice
        return args[0].numel() * args[1][0].numel()
    return out.numel() * args[1][0].numel()  # each output element: Cin/groups * kh * kw MACs


def _addmm_macs(args: tuple, out: torch.Tensor) -> int:
    return out.numel() * args[1].shape[-1]


def _mm_macs(args: tuple, out: torch.Tensor) -> int:
    return out.numel() * args[0].shape[-1]


def _linear_macs(args: tuple, out: torch.Tensor) -> int:
    return out.numel() * args[1].shape[-1]


# Ops arrive decomposed (convolution, mm/bmm) or, for inference tensors, whole (conv2d, matmul).
# A mode sees only the outermost op of each call, so both sets together never double count.
_MACS: dict[Any, Callable[[tuple, torch.Tensor], int]] = {
    aten.convolution.default: _conv_macs,
    aten.conv1d.default: _conv_macs,
    aten.conv2d.default: _conv_macs,
    aten.conv3d.default: _conv_macs,
    aten.mm.default: _mm_macs,
    aten.bmm.default: _mm_macs,
    aten.matmul.default: _mm_macs,
    aten.addmm.default: _addmm_macs,
    aten.baddbmm.default: _addmm_macs,
    aten.linear.default: _linear_macs,
}


class FlopCounter(TorchDispatchMode):
    """``with FlopCounter() as fc: model(x)`` then ``fc.flops`` (2 x MACs of convs and matmuls)."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        rule = _MACS.get(func)
        if rule is not None:
            self.macs += rule(args, out)
        return out


def count_flops(fn: Callable[[], Any]) -> int:
    with torch.no_grad(), FlopCounter() as counter:
        fn()
    return counter.flops


@dataclass(frozen=True)
class ModelFlops:
    """Per-frame cost of one target: ``backbone`` on its search crops (SiamFC: one per scale), ``head`` on them;
    ``exemplar`` is paid once per ``init``."""

    backbone: int
    head: int
    exemplar: int

    @property
    def per_frame(self) -> int:
        return self.backbone + self.head


def model_flops(net: Network, config: LoopConfig) -> ModelFlops:
    """FLOPs of one tracking step of ``net`` under ``config`` (one target, all its search crops)."""
    net = net.eval()
    z_img = torch.zeros(1, 3, config.exemplar_size, config.exemplar_size)
    x_img = torch.zeros(config.searches_per_target, 3, config.instance_size, config.instance_size)
    with torch.no_grad():
        z = net.embed(z_img)
        x = net.embed(x_img)
    return ModelFlops(backbone=count_flops(lambda: net.embed(x_img)),
                      head=count_flops(lambda: net.outputs(z, x)),
                      exemplar=count_flops(lambda: net.embed(z_img)))


def onnx_flops(path: str | os.PathLike) -> int:
    """2 x MACs of the Conv, MatMul and Gemm nodes of an ONNX graph with static input shapes."""
    import onnx
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(g.value_info) + list(g.input) + list(g.output)}
    shapes.update({t.name: list(t.dims) for t in g.initializer})
    macs = 0
    for node in g.node:
        if node.op_type == "Conv":
            w = shapes[node.input[1]]
            macs += math.prod(shapes[node.output[0]]) * math.prod(w[1:])
        elif node.op_type in ("MatMul", "Gemm"):
            a = shapes[node.input[0]]
            trans_a = any(att.name == "transA" and att.i for att in node.attribute)
            macs += math.prod(shapes[node.output[0]]) * (a[-2] if trans_a else a[-1])
    return 2 * macs
