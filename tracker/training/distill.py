"""Knowledge distillation: a frozen teacher network and the student's training-only feature adapter.

The teacher (any checkpoint our loader reads, e.g. a wider siamfc-pytorch model) sees the same
crops as the student; the student is pulled towards its conv5 features (through a 1x1 adapter,
since the student is narrower) and its response logits. The adapter is discarded after training.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from ..models import SiameseNet, load_checkpoint


@dataclass
class TeacherOutput:
    z: torch.Tensor       # exemplar features (N, Ct, h, w)
    x: torch.Tensor       # search features (N, Ct, H, W)
    logits: torch.Tensor  # response (N, 1, Ho, Wo)


class Teacher:
    """A frozen eval-mode network; inputs are float 0-255 in its own channel order."""

    def __init__(self, path: str | os.PathLike, device: torch.device) -> None:
        net, _, _ = load_checkpoint(path)
        self.net: SiameseNet = net.to(device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.channels = self.net.backbone.channels[-1]
        self.input_order = self.net.config.input_order

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, x: torch.Tensor) -> TeacherOutput:
        fz, fx = self.net.embed(z), self.net.embed(x)
        return TeacherOutput(fz, fx, self.net.head(fz, fx))


def feature_adapter(student_channels: int, teacher_channels: int) -> nn.Conv2d:
    """1x1 conv mapping student features onto the teacher's channels (training only)."""
    return nn.Conv2d(student_channels, teacher_channels, 1)
