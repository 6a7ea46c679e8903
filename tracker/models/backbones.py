"""Backbones: the one shared embedding network applied to both exemplar and search crops."""
from __future__ import annotations

import torch
from torch import nn

# Full-width SiamFC AlexNet channels (conv1..conv5).
ALEXNET_CHANNELS = (96, 256, 384, 384, 256)


def _bn(channels: int) -> nn.BatchNorm2d:
    # siamfc-pytorch's BatchNorm settings, so imported checkpoints behave identically.
    return nn.BatchNorm2d(channels, eps=1e-6, momentum=0.05)


def scaled_channels(width: float) -> tuple[int, ...]:
    """Channel counts for a width multiplier, rounded to even numbers (grouped convs need that)."""
    if not 0.0 < width <= 4.0:
        raise ValueError(f"width multiplier must be in (0, 4], got {width}")
    return tuple(max(2, int(int(width * c / 2) * 2)) for c in ALEXNET_CHANNELS)


class AlexNet(nn.Module):
    """SiamFC AlexNet (AlexNetV1 of siamfc-pytorch): no padding, total stride 8.

    The stage names and layout match siamfc-pytorch (``convN.0`` conv, ``convN.1`` BN) so that
    its checkpoints load without renaming. Dropout, if any, sits between stages so it does not
    shift those indices.
    """

    total_stride = 8
    stages = 5

    def __init__(self, width: float = 1.0, dropout: float = 0.0, dropout_after: int = 0) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = scaled_channels(width)
        self.channels = (c1, c2, c3, c4, c5)
        self.conv1 = nn.Sequential(nn.Conv2d(3, c1, 11, 2), _bn(c1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.conv2 = nn.Sequential(nn.Conv2d(c1, c2, 5, 1, groups=2), _bn(c2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.conv3 = nn.Sequential(nn.Conv2d(c2, c3, 3, 1), _bn(c3), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(nn.Conv2d(c3, c4, 3, 1, groups=2), _bn(c4), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(nn.Conv2d(c4, c5, 3, 1, groups=2))
        if not 0 <= dropout_after <= 4:
            raise ValueError(f"dropout_after must be a stage index 0..4, got {dropout_after}")
        self.dropout_after = dropout_after if dropout > 0 else 0
        self.dropout = nn.Dropout2d(dropout) if self.dropout_after else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def first_conv(self) -> nn.Conv2d:
        return self.conv1[0]

    def stage_modules(self) -> list[nn.Sequential]:
        return [self.conv1, self.conv2, self.conv3, self.conv4, self.conv5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, stage in enumerate(self.stage_modules(), start=1):
            x = stage(x)
            if i == self.dropout_after:
                x = self.dropout(x)
        return x


BACKBONES = {"alexnet": AlexNet}


def build_backbone(name: str, width: float = 1.0, dropout: float = 0.0, dropout_after: int = 0) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](width=width, dropout=dropout, dropout_after=dropout_after)


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold every Conv2d+BatchNorm2d pair inside Sequentials (at any depth) into one Conv2d (inference only).

    Folding removes a memory pass per layer; the maths is exact up to float rounding.
    """
    for child_name, child in module.named_children():
        fuse_conv_bn(child)
        if isinstance(child, nn.Sequential):
            layers = list(child)
            fused: list[nn.Module] = []
            i = 0
            while i < len(layers):
                layer = layers[i]
                nxt = layers[i + 1] if i + 1 < len(layers) else None
                if isinstance(layer, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
                    fused.append(_fold(layer, nxt))
                    fused.append(nn.Identity())  # keep indices stable
                    i += 2
                else:
                    fused.append(layer)
                    i += 1
            setattr(module, child_name, nn.Sequential(*fused))
    return module


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.groups, bias=True)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    out.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    out.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return out
