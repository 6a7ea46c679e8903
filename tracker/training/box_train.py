"""What training the box-regression family (NanoTrack / SiamBAN style) adds to the family-neutral trainer:
the student it starts from (its options: config.BoxArchConfig and the --box-* groups) and its loss.

The trainer keeps everything else (pair sampler, patch cache, augmentation, DDP, schedule, exact
resume); it calls :class:`BoxTraining` through the same three methods as the SiamFC family.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from ..config import BoxModelConfig
from ..errors import SiamTrackError
from ..models import BoxSiameseNet, efficientnet_lite
from ..models.nanotrack import LOOP_PARAMS, PRESETS
from ..models.prune import narrow_box_net
from .box_losses import BoxOutputs, box_loss
from .box_targets import box_targets
from .config import Setup
from .distill import Teacher, TeacherOutput, load_family, matching_adapter

STRIDE = 16


def exemplar_cells(exemplar_size: int) -> int:
    """Exemplar feature cells for an exemplar crop: every stride-2 layer pads to ceil(n / 2)."""
    side = -(-exemplar_size // STRIDE)
    return side * side


def fresh_student(config: BoxModelConfig, exemplar_size: int) -> BoxSiameseNet:
    """A new network of ``config`` whose head starts at boxes of a typical target's size."""
    cells = config.exemplar_cells
    if config.depthwise and cells < config.template_crop ** 2:
        raise SiamTrackError(f"--cache-exemplar-size {exemplar_size} gives {cells} exemplar cells, fewer "
                             f"than the depth-wise branch's {config.template_crop}x{config.template_crop}; "
                             f"use at least {STRIDE * (config.template_crop - 1) + 1} px")
    net = BoxSiameseNet(config)
    # exp(0) = 1 px boxes would sit deep inside every target, where (G)IoU barely changes with
    # their size; start at a typical target's half side instead (the exemplar shows ~2x the target).
    nn.init.constant_(net.head.loc_out[0].bias, math.log(exemplar_size / 4))
    return net


class BoxTraining:
    """Box-family student, feature adapter and loss for the trainer."""

    family = "box"

    def __init__(self, setup: Setup) -> None:
        if setup.box_loss.centerness_weight:
            raise SiamTrackError("--box-centerness-weight needs a centerness output, which the box networks do not "
                                 "have; leave it at 0")
        self.setup = setup

    def build(self) -> tuple[BoxSiameseNet, dict[str, Any]]:
        """The student and the tracking-loop settings its checkpoints carry: the source's (a NanoTrack
        version's published ones) plus the crop geometry it is trained on, which the tracker must use:
        the head's attention is as wide as the exemplar's feature cells, and the grid points sit where
        the training labels put them."""
        t, arch, cache = self.setup.train, self.setup.box_arch, self.setup.cache
        cells = exemplar_cells(cache.exemplar_size)
        imagenet = efficientnet_lite.imagenet_state(t.init) if t.init else None
        if imagenet is not None:  # an ImageNet backbone; neck and head start fresh, the loop is NanoTrack-v3's
            if arch.width != 1.0:
                raise SiamTrackError(f"--box-width {arch.width} cannot narrow --init {t.init}: its ImageNet weights "
                                     "fix the backbone's channels; leave --box-width at 1")
            net = fresh_student(efficientnet_lite.student_config(cells), cache.exemplar_size)
            efficientnet_lite.load_backbone(net.backbone, imagenet, t.init)
            overrides = dict(LOOP_PARAMS["nanotrack_v3"])
        elif t.init:
            net, overrides = load_family(t.init, self.family, "--init")
            if net.config.exemplar_cells != cells:
                raise SiamTrackError(f"--init {t.init} was trained on exemplars of {net.config.exemplar_cells} feature "
                                     f"cells but --cache-exemplar-size {cache.exemplar_size} gives {cells}; use the "
                                     "source's exemplar size (127 for NanoTrack)")
            if arch.width != 1.0:
                try:
                    net = narrow_box_net(net, arch.width)
                except ValueError as exc:
                    raise SiamTrackError(f"--box-width {arch.width} with --init: {exc}") from None
        else:
            if arch.arch not in PRESETS:
                raise SiamTrackError(f"unknown --box-arch {arch.arch!r}; choose one of {', '.join(PRESETS)}")
            try:
                config = dataclasses.replace(PRESETS[arch.arch].scaled(arch.width), exemplar_cells=cells,
                                             adjust=arch.adjust or PRESETS[arch.arch].adjust)
            except ValueError as exc:
                raise SiamTrackError(f"--box-width: {exc}") from None
            net, overrides = fresh_student(config, cache.exemplar_size), dict(LOOP_PARAMS[arch.arch])
        # box_targets puts the points at -(n // 2) * stride of the training search crop: the tracker
        # carries that convention to other crop sizes from reference_search.
        geometry = {"exemplar_size": cache.exemplar_size, "instance_size": cache.instance_size,
                    "reference_search": cache.instance_size, "context": cache.context}
        return net, {**overrides, **geometry}

    def adapter(self, student: nn.Module, teacher: Teacher | None) -> nn.Module | None:
        if teacher is None or not self.setup.box_loss.distill_feature:
            return None
        return matching_adapter(student, teacher)

    def loss(self, maps: tuple[torch.Tensor, ...], features: tuple[torch.Tensor | None, ...],
             teacher: TeacherOutput | None, boxes: torch.Tensor, positive: torch.Tensor,
             stride: int) -> tuple[torch.Tensor, dict[str, float]]:
        """box_loss on targets from the pairs' boxes; the teacher's maps and embeddings when given."""
        cls, loc = maps
        _, _, az, ax = features
        targets = box_targets(boxes, positive, cls.shape[-1], stride, self.setup.box_labels)
        student = BoxOutputs(cls, loc, features=(az, ax) if az is not None else ())
        teach = BoxOutputs(*teacher.maps, features=(teacher.z, teacher.x)) if teacher is not None else None
        return box_loss(student, targets, self.setup.box_loss, teach)

