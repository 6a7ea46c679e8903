"""Knowledge distillation: a frozen teacher network and the student's training-only feature adapter.

The teacher (any checkpoint our loader reads of the student's family: a wider siamfc-pytorch model,
a NanoTrack state dict, ...) sees the same crops as the student; the student is pulled towards its
embeddings (through a 1x1 adapter where the student is narrower) and its output maps (SiamFC:
response logits; box family: cls logits and l, t, r, b). The adapter is discarded after training.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SiamTrackError
from ..models import Network, load_checkpoint


@dataclass
class TeacherOutput:
    z: torch.Tensor                   # exemplar features (N, Ct, h, w)
    x: torch.Tensor                   # search features (N, Ct, H, W)
    maps: tuple[torch.Tensor, ...]    # net.outputs: (response,) for SiamFC, (cls, loc) for the box family
    cells: float = 0.0                # centre family: cells its search crop spans (0: its maps tile it)

    @property
    def logits(self) -> torch.Tensor:
        """The first output map: SiamFC's response, the box family's cls logits."""
        return self.maps[0]


def load_family(path: str | os.PathLike, family: str, option: str,
                student: bool = True) -> tuple[Network, dict[str, Any]]:
    """(network, tracking-loop overrides) of an ``option`` checkpoint, refused when it is not of ``family``:
    the student's for --init and --teacher (its maps and embeddings would not compare), a fixed one for a
    teacher whose maps are mapped onto the student's (``student`` False: --teacher-centre)."""
    net, overrides, _ = load_checkpoint(path)
    if net.config.family != family:
        fix = (f"--family is {family}; pass a {family} checkpoint or --family {net.config.family}" if student
               else f"{option} takes a {family}-family network; pass one (LightFC's graph folder, say)")
        raise SiamTrackError(f"{option} {path} is a {net.config.family} network but {fix}")
    return net, overrides


class Teacher:
    """A frozen eval-mode network; inputs are float 0-255 in its own channel order."""

    def __init__(self, path: str | os.PathLike, device: torch.device, family: str, option: str = "--teacher") -> None:
        net, _ = load_family(path, family, option, student=option == "--teacher")
        self.net: Network = net.to(device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.channels = self.net.channels
        self.input_order = self.net.config.input_order

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, x: torch.Tensor, z_crops: Any = None, x_crops: Any = None) -> TeacherOutput:
        """Maps and embeddings of the input tensors; the uint8 crops are for teachers that read them
        (training.ensemble.EnsembleTeacher), a network does not. A teacher of fixed crop sizes (the centre
        family) sees a smaller student's crops scaled up to its own: the same region, its own grid."""
        sizes = getattr(self.net.config, "template_size", None), getattr(self.net.config, "search_size", None)
        if sizes[0] and (z.shape[-1], x.shape[-1]) != sizes:
            z, x = (F.interpolate(t, size=(s, s), mode="bilinear", align_corners=False) for t, s in zip((z, x), sizes))
        fz, fx = self.net.embed(z), self.net.embed(x)
        cells = x.shape[-1] / self.net.total_stride if sizes[1] else 0.0
        return TeacherOutput(fz, fx, tuple(self.net.outputs(fz, fx)), cells)


def to_input(crops: np.ndarray, device: torch.device, order: str) -> torch.Tensor:
    """uint8 BGR NHWC -> float 0-255 NCHW in the network's channel order."""
    t = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float()
    return t.flip(1) if order == "rgb" else t


def feature_adapter(student_channels: int, teacher_channels: int) -> nn.Conv2d:
    """1x1 conv mapping student features onto the teacher's channels (training only)."""
    return nn.Conv2d(student_channels, teacher_channels, 1)


def embedding_architecture(net: nn.Module) -> tuple | None:
    """What fixes a box or centre net's embedding space: stem, blocks, activations and neck (None: neither)."""
    c = getattr(net, "config", None)
    if not hasattr(c, "blocks"):
        return None
    return c.stem, c.blocks, c.relu6, getattr(c, "adjust", 0)


def matching_adapter(student: nn.Module, teacher: Any) -> nn.Module:
    """The identity only where student and teacher embed with the same architecture, else feature_adapter:
    equal widths alone do not make two feature spaces comparable (NanoTrack-v3's 96 channels are not
    LightFC's 96). ``teacher``: a Teacher, or an ensemble whose ``network`` is one."""
    net = getattr(teacher, "network", teacher).net
    own = embedding_architecture(student)
    if own is not None and own == embedding_architecture(net):
        return nn.Identity()
    return feature_adapter(student.channels, teacher.channels)
