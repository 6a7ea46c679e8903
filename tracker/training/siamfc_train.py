"""What training the SiamFC family adds to the family-neutral trainer: its student (fresh, or from
--init) and its response-map, metric and distillation losses (box_train is the box family's counterpart).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import SiamTrackError
from ..models import SiameseNet
from . import losses
from .config import Setup, TrainConfig
from .distill import Teacher, TeacherOutput, feature_adapter, load_family


def build_net(cfg: TrainConfig) -> SiameseNet:
    """A fresh network, or one started from ``--init`` (dropout options still apply)."""
    if not cfg.init:
        return SiameseNet(ModelConfig(width=cfg.width, head=cfg.head, dropout=cfg.dropout,
                                      dropout_after=cfg.dropout_after))
    src, _ = load_family(cfg.init, "siamfc", "--init")
    net = SiameseNet(dataclasses.replace(src.config, dropout=cfg.dropout, dropout_after=cfg.dropout_after))
    net.load_state_dict(src.state_dict())
    return net


class SiamFCTraining:
    """SiamFC student, feature adapter and losses for the trainer (box_train.BoxTraining's counterpart)."""

    family = "siamfc"

    def __init__(self, setup: Setup) -> None:
        self.setup = setup

    def build(self) -> tuple[SiameseNet, dict[str, Any]]:
        """The student and the tracking-loop settings its checkpoints carry (none: TrackerConfig's)."""
        return build_net(self.setup.train), {}

    def adapter(self, student: nn.Module, teacher: Teacher | None) -> nn.Module | None:
        t = self.setup.train
        return feature_adapter(student.channels, teacher.channels) if teacher and t.distill_feature > 0 else None

    def loss(self, maps: tuple[torch.Tensor, ...], features: tuple[torch.Tensor | None, ...],
             teacher: TeacherOutput | None, boxes: torch.Tensor, positive: torch.Tensor,
             stride: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the selected response-map, metric and distillation losses."""
        t = self.setup.train
        (logits,), (fz, fx, az, ax) = maps, features
        labels = losses.siamfc_labels(boxes[:, :2], positive, logits.shape[-1], stride, t.radius)
        parts: dict[str, torch.Tensor] = {}
        if t.logistic:
            parts["logistic"] = t.logistic * losses.balanced_logistic(logits, labels)
        if t.contrastive or t.triplet:
            dist_map = losses.cosine_distance(fz, fx)
            if t.contrastive:
                parts["contrastive"] = t.contrastive * losses.contrastive(dist_map, labels, t.contrastive_margin)
            if t.triplet:
                cross = losses.cosine_distance(fz, fx.roll(-1, dims=0))
                parts["triplet"] = t.triplet * losses.window_triplet(dist_map, labels, cross, t.triplet_margin)
        if teacher is not None:
            if az is not None:
                parts["feature"] = t.distill_feature * 0.5 * (losses.relative_mse(az, teacher.z) + losses.relative_mse(ax, teacher.x))
            if t.distill_response:
                parts["response"] = t.distill_response * losses.response_mse(logits, teacher.logits)
        if not parts:
            raise SiamTrackError("every loss weight is 0; set --logistic, --contrastive, --triplet or a --teacher")
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}
