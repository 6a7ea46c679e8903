"""What training the centre-head family (LightFC style) adds to the family-neutral trainer: the student it
starts from (config.CentreArchConfig and the --centre-* groups) and its loss (centre_losses).

The crops are LightFC's (``--cache-crop area``: search side 4 x sqrt(w h), template 2 x, zero border) at
the student's template and search sizes; every student is a :class:`~tracker.config.CentreModelConfig`.
A teacher (``--teacher``: a centre-family checkpoint, LightFC's official checkpoint or its deployment's
graph folder) sees the same crops; it teaches at training time only and nothing of it is copied.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from ..errors import SiamTrackError
from ..models import CentreSiameseNet, efficientnet_lite, load_checkpoint
from .centre_losses import MapGrid, centre_loss, centre_targets
from .config import CentreArchConfig, Setup
from .distill import Teacher, TeacherOutput, matching_adapter


@torch.no_grad()
def take_over_towers(net: CentreSiameseNet, donor: nn.Module, path: str, crop: int) -> None:
    """A box-family head's correlations and towers into a ``nanotrack`` centre head, and its outputs' best linear
    start: the score is the softmax's target probability, sigmoid(cls1 - cls0); the size's logit starts at
    log(w / crop) ~ (log l + log r) / 2 + log(2 / crop) (l ~ r at the centre, w << crop); the offset at the cell's
    middle. A shallower head takes the donor's first tower blocks, and the outputs' start reads their features
    instead of the last block's. What the approximations miss, training corrects."""
    kept = len(net.fusion.cls_tower)  # layers of the blocks the student has

    def taken(key: str) -> bool:
        part = key.split(".")
        return part[0] not in ("cls_out", "loc_out") and not (part[0] in ("cls_tower", "loc_tower") and int(part[1]) >= kept)
    towers = {k: v for k, v in donor.head.state_dict().items() if taken(k)}
    d = donor.config
    if d.cls_channels != d.loc_channels:
        raise SiamTrackError(f"--init {path}'s cls and loc towers differ in width ({d.cls_channels}, {d.loc_channels}); "
                             "--centre-head nanotrack needs equal ones")
    try:
        net.fusion.load_state_dict(towers)
    except RuntimeError:
        raise SiamTrackError(f"--init {path}'s head is not NanoTrack-v3's layout (pixel-wise and depth-wise correlations "
                             "of a 128 px template's 8 x 8 cells, linear_pw towers); pass --centre-head lightfc") from None
    head, cls, loc = net.head, donor.head.cls_out[0], donor.head.loc_out[0]
    head.score.weight.copy_(cls.weight[1:2] - cls.weight[0:1])
    head.score.bias.copy_(cls.bias[1:2] - cls.bias[0:1])
    head.size.weight.copy_((loc.weight[0:2] + loc.weight[2:4]) / 2)  # rows l, t, r, b -> w, h
    head.size.bias.copy_((loc.bias[0:2] + loc.bias[2:4]) / 2 + math.log(2 / crop))
    nn.init.zeros_(head.offset.weight)
    nn.init.constant_(head.offset.bias, 0.5)


class CentreTraining:
    """Centre-family student, feature adapter and loss for the trainer."""

    family = "centre"

    def __init__(self, setup: Setup) -> None:
        cache = setup.cache
        if cache.crop != "area":
            raise SiamTrackError("--family centre trains on LightFC's crops: pass --cache-crop area (with "
                                 "--cache-exemplar-size 128 --cache-instance-size 256 for LightFC's sizes)")
        self.setup = setup

    def build(self) -> tuple[CentreSiameseNet, dict[str, Any]]:
        """The student and the loop geometry its checkpoints carry: ``--init`` a centre checkpoint to fine-tune,
        a box-family checkpoint (its backbone, trained for tracking, taken over; fusion and head fresh),
        ``efficientnet_lite0`` (EfficientNet-Lite0's ImageNet backbone to stride 16; fusion and head fresh),
        else a fresh --centre-* architecture."""
        t, cache, arch = self.setup.train, self.setup.cache, self.setup.centre_arch
        imagenet = efficientnet_lite.imagenet_state(t.init) if t.init else None
        donor = None
        if t.init and imagenet is None:
            net, overrides, _ = load_checkpoint(t.init)
            if net.config.family not in (self.family, "box"):
                raise SiamTrackError(f"--init {t.init} is a {net.config.family} network but --family is centre; pass a "
                                     "centre checkpoint, a box-family one (its backbone is taken over) or efficientnet_lite0")
            if net.config.family == self.family:
                if net.config.template_size != cache.exemplar_size or net.config.search_size != cache.instance_size:
                    raise SiamTrackError(f"--init {t.init} takes {net.config.template_size}/{net.config.search_size} px "
                                         f"crops; pass --cache-exemplar-size {net.config.template_size} "
                                         f"--cache-instance-size {net.config.search_size}")
                return net, {**overrides, **net.config.loop_overrides()}
            donor = net
        if (imagenet is not None or donor is not None) and (arch.width != 1.0 or arch.repeats != CentreArchConfig.repeats
                                                            or arch.expansion != CentreArchConfig.expansion):
            raise SiamTrackError(f"--init {t.init} fixes the backbone; leave --centre-width, --centre-repeats and "
                                 "--centre-expansion at their defaults")
        template_factor = cache.search_factor * cache.exemplar_size / cache.instance_size
        config = arch.model_config(cache.exemplar_size, cache.instance_size, template_factor, cache.search_factor)
        if imagenet is not None:
            config = dataclasses.replace(config, stem=efficientnet_lite.STEM, blocks=efficientnet_lite.BLOCKS,
                                         normalise="none")
        if donor is not None:  # 0-255 input in the donor's channel order, its activations
            d = donor.config
            config = dataclasses.replace(config, stem=d.stem, blocks=d.blocks, relu6=d.relu6, normalise="none",
                                         input_order=d.input_order)
            if config.head == "nanotrack":
                if arch.head_channels != CentreArchConfig.head_channels:
                    raise SiamTrackError(f"--centre-head nanotrack takes its towers from --init {t.init}; leave "
                                         "--centre-head-channels at its default")
                if arch.head_depth > len(d.cls_tower):
                    raise SiamTrackError(f"--centre-head-depth {arch.head_depth}: --init {t.init}'s towers have "
                                         f"{len(d.cls_tower)} blocks; pass at most that many (0 = all)")
                config = dataclasses.replace(config, head_channels=d.cls_channels,
                                             head_depth=arch.head_depth or len(d.cls_tower))
        net = CentreSiameseNet(config)
        if imagenet is not None:
            efficientnet_lite.load_backbone(net.backbone, imagenet, t.init)
        if donor is not None:
            net.backbone.load_state_dict(donor.backbone.state_dict())
        if config.head == "nanotrack":
            if donor is not None:
                take_over_towers(net, donor, t.init, cache.instance_size)
        else:
            nn.init.constant_(net.head.score.last.bias, -4.6)  # p = 0.01 at the start: CenterNet's prior
        return net, net.config.loop_overrides()

    def adapter(self, student: nn.Module, teacher: Teacher | None) -> nn.Module | None:
        if teacher is None or not self.setup.centre_loss.distill_feature:
            return None
        return matching_adapter(student, teacher)

    def loss(self, maps: tuple[torch.Tensor, ...], features: tuple[torch.Tensor | None, ...],
             teacher: TeacherOutput | None, boxes: torch.Tensor, positive: torch.Tensor,
             stride: int) -> tuple[torch.Tensor, dict[str, float]]:
        """centre_loss on labels from the pairs' boxes, and the teacher's maps and embeddings when given."""
        cfg, crop = self.setup.centre_loss, self.setup.cache.instance_size
        n = maps[0].shape[-1]
        targets = centre_targets(boxes, positive, n, crop, cfg.min_overlap, MapGrid.centred(n, crop / stride))
        _, _, az, ax = features
        adapted = (az, ax) if az is not None else ()
        if teacher is None:
            return centre_loss(maps, targets, cfg)
        m = teacher.maps[0].shape[-1]
        return centre_loss(maps, targets, cfg, teacher.maps, adapted, (teacher.z, teacher.x) if adapted else (),
                           MapGrid.centred(m, teacher.cells or m))
