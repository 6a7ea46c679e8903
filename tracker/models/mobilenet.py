"""MobileNetV3-style backbone of the box-regression family: the one embedding network for both crops.

Built from a block table (kernel, hidden, out, SE width, h-swish, stride) so that the architecture of
any checkpoint can be rebuilt from its config. The module layout (``features.i.conv.j``) is the usual
MobileNetV3 one, which NanoTrack's checkpoints also use, so their backbone keys load unrenamed.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn


def _activation(hswish: bool, relu6: bool = False) -> nn.Module:
    return nn.Hardswish() if hswish else nn.ReLU6() if relu6 else nn.ReLU()


class SqueezeExcite(nn.Module):
    """Channel gates from the global average: Linear-ReLU-Linear-hard-sigmoid."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, squeeze), nn.ReLU(), nn.Linear(squeeze, channels), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3))).unsqueeze(-1).unsqueeze(-1)


class InvertedResidual(nn.Module):
    """Expand (1x1) - depth-wise (k x k) - [SE] - project (1x1), with a skip when shapes allow.

    Without expansion (hidden == in) the 1x1 expand is left out and SE follows the activation; with
    it, SE sits between the depth-wise BN and its activation (the MobileNetV3 reference layout).
    """

    def __init__(self, inp: int, kernel: int, hidden: int, out: int, se: int, hswish: bool, stride: int,
                 relu6: bool = False) -> None:
        super().__init__()
        self.identity = stride == 1 and inp == out
        pad = (kernel - 1) // 2
        depthwise = nn.Conv2d(hidden, hidden, kernel, stride, pad, groups=hidden, bias=False)
        excite = SqueezeExcite(hidden, se) if se else nn.Identity()
        if inp == hidden:
            layers = [depthwise, nn.BatchNorm2d(hidden), _activation(hswish, relu6), excite,
                      nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        else:
            layers = [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), _activation(hswish, relu6),
                      depthwise, nn.BatchNorm2d(hidden), excite, _activation(hswish, relu6),
                      nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.identity else self.conv(x)


class MobileNet(nn.Module):
    """Stem (3x3, stride 2, h-swish) + inverted residuals; the total stride is the product of strides.

    ``relu6``: the stem and the blocks without h-swish use ReLU6 instead of h-swish / ReLU (EfficientNet-Lite).
    """

    def __init__(self, stem: int, blocks: Sequence[Sequence[Any]], relu6: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem),
                                                 _activation(not relu6, relu6))]
        inp = stem
        self.total_stride = 2
        for kernel, hidden, out, se, hswish, stride in blocks:
            layers.append(InvertedResidual(inp, int(kernel), int(hidden), int(out), int(se), bool(hswish), int(stride), relu6))
            inp = int(out)
            self.total_stride *= int(stride)
        self.features = nn.Sequential(*layers)
        self.channels = inp
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def first_conv(self) -> nn.Conv2d:
        return self.features[0][0]

    def stage_modules(self) -> list[nn.Module]:
        """Stem then each block: the units training freezes from the input side (as AlexNet's stages)."""
        return list(self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
