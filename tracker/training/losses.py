"""Training losses on response maps and embeddings.

Every loss is a mean of per-sample terms (never normalised over the whole batch), so a batch split
across DistributedDataParallel ranks gives exactly the gradient of the undivided batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.heads import Cosine


def siamfc_labels(offsets: torch.Tensor, positive: torch.Tensor, size: int = 17, stride: int = 8,
                  radius: float = 16.0) -> torch.Tensor:
    """(N, 1, size, size) labels: 1 where a response cell lies within ``radius`` search-crop px of the
    target centre (``offsets`` (N, 2) = target (dx, dy) from the crop centre), 0 elsewhere and
    everywhere for negative pairs."""
    grid = (torch.arange(size, dtype=torch.float32, device=offsets.device) - (size - 1) / 2) * stride
    dx = grid.view(1, 1, size) - offsets[:, 0].view(-1, 1, 1)
    dy = grid.view(1, size, 1) - offsets[:, 1].view(-1, 1, 1)
    inside = (dx * dx + dy * dy) <= radius * radius
    return (inside & positive.view(-1, 1, 1).bool()).float().unsqueeze(1)


def balanced_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per-sample weights giving positives and negatives half the mass each (all of it to negatives
    when a sample has no positive cell); each sample's weights sum to 1."""
    flat = labels.flatten(1)
    n_pos = flat.sum(1, keepdim=True)
    n_neg = flat.shape[1] - n_pos
    has_pos = (n_pos > 0).float()
    w_pos = 0.5 / n_pos.clamp_min(1)
    w_neg = (1 - 0.5 * has_pos) / n_neg.clamp_min(1)
    return (flat * w_pos + (1 - flat) * w_neg).view_as(labels)


def balanced_logistic(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SiamFC's class-balanced logistic loss on the response map, averaged over samples."""
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (bce * balanced_weights(labels)).flatten(1).sum(1).mean()


def contrastive(distance: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Hadsell et al.: y d^2 + (1 - y) max(0, margin - d)^2, class-balanced per sample as above."""
    terms = labels * distance.pow(2) + (1 - labels) * F.relu(margin - distance).pow(2)
    return (terms * balanced_weights(labels)).flatten(1).sum(1).mean()


def triplet(d_pos: torch.Tensor, d_neg: torch.Tensor, margin: float = 0.2,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """max(0, d(anchor, positive) - d(anchor, negative) + margin), averaged over each sample's
    valid negatives (``mask`` (N, K)) and then over samples that have any."""
    terms = F.relu(d_pos.view(-1, 1) - d_neg + margin)
    mask = torch.ones_like(terms) if mask is None else mask.float()
    count = mask.sum(1)
    per_sample = (terms * mask).sum(1) / count.clamp_min(1)
    valid = (count > 0).float()
    return (per_sample * valid).sum() / valid.sum().clamp_min(1)


def cosine_distance(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between the L2-normalised exemplar and every search window, in [0, 2]."""
    return (2 - 2 * Cosine().similarity(z, x)).clamp_min(1e-12).sqrt()


def window_triplet(distance: torch.Tensor, labels: torch.Tensor, cross: torch.Tensor,
                   margin: float = 0.2) -> torch.Tensor:
    """Triplet on a distance map: anchor = exemplar, positive = the closest target window,
    negatives = every non-target window plus every window of another object's search crop
    (``cross`` (N, 1, H, W) distances of exemplar i to search crop i+1)."""
    flat, lab = distance.flatten(1), labels.flatten(1)
    has_pos = lab.sum(1) > 0
    d_pos = torch.where(lab > 0, flat, torch.full_like(flat, float("inf"))).min(1).values
    d_pos = torch.where(has_pos, d_pos, torch.zeros_like(d_pos))
    d_neg = torch.cat([flat, cross.flatten(1)], dim=1)
    mask = torch.cat([lab == 0, torch.ones_like(cross.flatten(1), dtype=torch.bool)], dim=1)
    mask = mask & has_pos.view(-1, 1)
    return triplet(d_pos, d_neg, margin, mask)


def relative_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE normalised by the teacher's mean square per sample: scale-free feature distillation."""
    err = (student - teacher).pow(2).flatten(1).mean(1)
    return (err / teacher.detach().pow(2).flatten(1).mean(1).clamp_min(1e-12)).mean()


def response_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Plain MSE between response logits (teacher and student share the logistic scale)."""
    return (student - teacher).pow(2).flatten(1).mean(1).mean()
