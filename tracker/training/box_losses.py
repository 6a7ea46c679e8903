"""Losses of the box-regression Siamese family (anchor-free, NanoTrack / SiamBAN / FCOS style).

The network gives, per point of its n x n output grid, 2-class logits ``cls`` (channel 1 = target),
``loc`` = (l, t, r, b) distances in search-crop pixels and optionally a centerness logit; targets
come from :func:`tracker.training.box_targets.box_targets`.

As in losses.py every term is a mean over samples of a per-sample value that never depends on the
other samples, so DistributedDataParallel shards give exactly the undivided batch's gradient. Every
term is ``weighted_mean(per_point, weights)``: a per-point loss summed with per-sample weights
(for terms on positive points: 1 / the sample's positive count), then averaged over ALL samples.
A sample without positives (a negative pair) adds 0 to the positive-point terms instead of being
left out of the average, since the count of samples with positives would depend on the shard; the
positive-point terms are thus scaled by the share of positive pairs, which their weights absorb.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import SiamTrackError
from .box_targets import BoxTargets, align_grids
from .losses import relative_mse
from .options import opt

CLS_LOSSES = ("ce", "focal")
LOC_LOSSES = ("giou", "iou", "log_iou")
DISTILL_CLS = ("kl", "mse")
_EPS = 1e-7


@dataclass(frozen=True)
class BoxLossConfig:
    """Box-family losses: which ones and their weights (distillation terms apply only with a teacher)."""

    cls_loss: str = opt("ce", "classification loss: ce (2-class cross-entropy, positives and negatives "
                              "0.5/0.5 per sample) | focal (per sample, normalised by its positive count)")
    cls_weight: float = opt(1.0, "weight of the classification loss")
    focal_alpha: float = opt(0.25, "focal loss weight of positive points (negatives get 1 - alpha)")
    focal_gamma: float = opt(2.0, "focal loss focusing exponent (0 = alpha-weighted cross-entropy)")
    loc_loss: str = opt("giou", "box loss on positive points: giou (1 - GIoU) | iou (1 - IoU) | "
                                "log_iou (-ln IoU, UnitBox)")
    loc_weight: float = opt(1.0, "weight of the box loss")
    l1_weight: float = opt(0.0, "weight of an extra L1 loss on l, t, r, b (crop px, mean of the 4) at positive points")
    centerness_weight: float = opt(0.0, "weight of the BCE between predicted centerness logits and the FCOS "
                                        "centerness target at positive points (needs a centerness output)")
    distill_cls: float = opt(1.0, "with a teacher: weight of the classification distillation")
    distill_cls_kind: str = opt("kl", "kl (T^2 KL(teacher || student) of the softened 2-class probabilities) | "
                                      "mse (of the softened target probabilities)")
    temperature: float = opt(2.0, "softmax temperature T of the classification distillation")
    distill_box: float = opt(1.0, "with a teacher: weight of the box distillation (the loc loss between student "
                                  "and teacher boxes, weighted by the teacher's target probability)")
    distill_feature: float = opt(1.0, "with a teacher: weight of the feature distillation (relative MSE, through "
                                      "a 1x1 adapter where the widths differ)")

    def __post_init__(self) -> None:
        for name, allowed in (("cls_loss", CLS_LOSSES), ("loc_loss", LOC_LOSSES), ("distill_cls_kind", DISTILL_CLS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


@dataclass
class BoxOutputs:
    """What a box network (student or teacher) gives for a batch of pairs.

    ``features`` feed the feature distillation: the student's through its adapter
    (:func:`distill.matching_adapter`), the teacher's as they are, in the same order (e.g. exemplar, search).
    """

    cls: torch.Tensor                        # (N, 2, n, n) logits, channel 1 = target
    loc: torch.Tensor                        # (N, 4, n, n) l, t, r, b in crop px (positive, after exp)
    centerness: torch.Tensor | None = None   # (N, 1, n, n) logits
    features: tuple[torch.Tensor, ...] = ()


def weighted_mean(per_point: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum of ``per_point * weights`` over each sample, averaged over samples: the one reduction
    of every term, so each is a per-sample mean as DDP needs."""
    return (per_point * weights).flatten(1).sum(1).mean()


def _per_sample(count: torch.Tensor) -> torch.Tensor:
    return count.flatten(1).sum(1).view(-1, *([1] * (count.dim() - 1)))


def class_weights(labels: torch.Tensor) -> torch.Tensor:
    """(N, n, n) weights: half of each sample's mass over its positives and half over its negatives
    (all of it over the negatives of a sample without positives, as losses.balanced_weights), none
    on ignored points; pysot's 0.5 pos + 0.5 neg, but per sample."""
    pos, neg = (labels == 1).float(), (labels == 0).float()
    n_pos, n_neg = _per_sample(pos), _per_sample(neg)
    neg_mass = torch.where(n_pos > 0, 0.5, 1.0)
    return pos * (0.5 / n_pos.clamp_min(1)) + neg * (neg_mass / n_neg.clamp_min(1))


def positive_weights(labels: torch.Tensor) -> torch.Tensor:
    """(N, n, n) weights 1 / (the sample's positive count) at its positives, 0 elsewhere."""
    pos = (labels == 1).float()
    return pos / _per_sample(pos).clamp_min(1)


def balanced_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """2-class cross-entropy, ignore (-1) excluded, positives and negatives balanced per sample."""
    ce = F.cross_entropy(logits, labels, ignore_index=-1, reduction="none")
    return weighted_mean(ce, class_weights(labels))


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss -alpha_t (1 - p_t)^gamma ln p_t on the 2-class softmax, ignore excluded, summed
    over each sample's points and divided by its positive count (at least 1), as RetinaNet/FCOS:
    the down-weighting of easy points replaces explicit class balancing."""
    log_p = F.log_softmax(logits, dim=1).gather(1, labels.clamp_min(0).unsqueeze(1)).squeeze(1)
    alpha_t = torch.where(labels == 1, alpha, 1 - alpha)
    terms = -alpha_t * (1 - log_p.exp()).pow(gamma) * log_p
    valid = (labels >= 0).float()
    return weighted_mean(terms, valid / _per_sample((labels == 1).float()).clamp_min(1))


def _area(ltrb: torch.Tensor) -> torch.Tensor:
    return (ltrb[:, 0] + ltrb[:, 2]).clamp_min(0) * (ltrb[:, 1] + ltrb[:, 3]).clamp_min(0)


def ltrb_iou(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and GIoU of two (N, 4, ...) l, t, r, b boxes measured from the same points: no decoding
    needed. Valid for any signs (a box need not contain its point), so disjoint boxes give IoU 0."""
    inter = _area(torch.minimum(pred, target))
    union = _area(pred) + _area(target) - inter
    enclose = _area(torch.maximum(pred, target))
    iou = inter / union.clamp_min(_EPS)
    return iou, iou - (enclose - union) / enclose.clamp_min(_EPS)


def iou_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "giou") -> torch.Tensor:
    """Per-point box loss: giou = 1 - GIoU, iou = 1 - IoU, log_iou = -ln IoU (IoU clamped at 1e-7
    so an underflowed prediction gives a large finite loss, not inf)."""
    iou, giou = ltrb_iou(pred, target)
    if kind == "giou":
        return 1 - giou
    if kind == "iou":
        return 1 - iou
    if kind == "log_iou":
        return -iou.clamp_min(_EPS).log()
    raise SiamTrackError(f"unknown loc loss {kind!r}; choose one of {', '.join(LOC_LOSSES)}")


def cls_distillation(student: torch.Tensor, teacher: torch.Tensor, kind: str = "kl",
                     temperature: float = 2.0) -> torch.Tensor:
    """Per-point mean of T^2 KL(teacher || student) of the T-softened 2-class probabilities (T^2
    keeps the gradient scale independent of T, as Hinton et al.), or of the squared difference of
    the softened target probabilities; averaged over samples."""
    log_s = F.log_softmax(student / temperature, dim=1)
    log_t = F.log_softmax(teacher.detach() / temperature, dim=1)
    if kind == "kl":
        per_point = temperature ** 2 * F.kl_div(log_s, log_t, log_target=True, reduction="none").sum(1)
    elif kind == "mse":
        per_point = (log_s[:, 1].exp() - log_t[:, 1].exp()).pow(2)
    else:
        raise SiamTrackError(f"unknown classification distillation {kind!r}; choose one of {', '.join(DISTILL_CLS)}")
    return per_point.flatten(1).mean(1).mean()


def teacher_weights(teacher_cls: torch.Tensor) -> torch.Tensor:
    """(N, n, n) box-distillation weights: the teacher's target probability divided by its sum over
    the sample, or by 1 where that sum is below 1, so a negative pair's (confidently empty) map does
    not blow its background boxes up to full weight."""
    p = F.softmax(teacher_cls.detach(), dim=1)[:, 1]
    return p / _per_sample(p).clamp_min(1)


def feature_distillation(student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Mean of losses.relative_mse over feature pairs (student features already adapted)."""
    if not student or len(student) != len(teacher):
        raise SiamTrackError(f"feature distillation needs matching student and teacher features; got "
                             f"{len(student)} and {len(teacher)} maps (set distill_feature 0 to go without)")
    return sum(relative_mse(s, t.detach()) for s, t in zip(student, teacher)) / len(student)


def _distillation(outputs: BoxOutputs, teacher: BoxOutputs, config: BoxLossConfig) -> dict[str, torch.Tensor]:
    s_cls, t_cls = align_grids(outputs.cls, teacher.cls)
    parts = {}
    if config.distill_cls:
        parts["distill_cls"] = config.distill_cls * cls_distillation(s_cls, t_cls, config.distill_cls_kind,
                                                                     config.temperature)
    if config.distill_box:
        s_loc, t_loc = align_grids(outputs.loc, teacher.loc)
        parts["distill_box"] = config.distill_box * weighted_mean(
            iou_loss(s_loc, t_loc.detach(), config.loc_loss), teacher_weights(t_cls))
    if config.distill_feature:
        parts["distill_feature"] = config.distill_feature * feature_distillation(outputs.features, teacher.features)
    return parts


def box_loss(outputs: BoxOutputs, targets: BoxTargets, config: BoxLossConfig = BoxLossConfig(),
             teacher: BoxOutputs | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the selected losses for one micro-batch, and each weighted part as a float
    (Trainer.loss's return type). Teacher maps may be on a larger grid (16 vs 15): they are cropped
    to the student's points."""
    parts: dict[str, torch.Tensor] = {}
    if config.cls_weight:
        cls = balanced_cross_entropy(outputs.cls, targets.cls) if config.cls_loss == "ce" else \
            focal_loss(outputs.cls, targets.cls, config.focal_alpha, config.focal_gamma)
        parts["cls"] = config.cls_weight * cls
    on_pos = positive_weights(targets.cls)
    if config.loc_weight:
        parts["loc"] = config.loc_weight * weighted_mean(iou_loss(outputs.loc, targets.loc, config.loc_loss), on_pos)
    if config.l1_weight:
        parts["l1"] = config.l1_weight * weighted_mean((outputs.loc - targets.loc).abs().mean(1), on_pos)
    if config.centerness_weight:
        if outputs.centerness is None:
            raise SiamTrackError("centerness_weight > 0 needs the network's centerness output (N, 1, n, n)")
        bce = F.binary_cross_entropy_with_logits(outputs.centerness[:, 0], targets.centerness, reduction="none")
        parts["centerness"] = config.centerness_weight * weighted_mean(bce, on_pos)
    if teacher is not None:
        parts.update(_distillation(outputs, teacher, config))
    if not parts:
        raise SiamTrackError("every box loss weight is 0; set cls_weight, loc_weight, l1_weight, "
                             "centerness_weight or a teacher with a distillation weight")
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}
