"""Tracking accuracy metrics (OTB, LaSOT/TrackingNet and GOT-10k conventions) on x,y,w,h boxes.

Per sequence, over the *evaluated frames* (by default every frame except frame 0, which is the
given initial box, and except frames whose ground truth is absent (NaN row)):

- IoU: intersection / (union + eps) of the two boxes, exactly as ``got10k.utils.metrics.rect_iou``.
- success curve: fraction of frames with IoU > t for the 21 thresholds t = linspace(0, 1, 21);
  **AUC** = mean of that curve (OTB success score).
- centre error: distance between box centres (x + (w-1)/2, y + (h-1)/2) in pixels;
  precision curve: fraction with error <= t for t = 0..50 px; **precision** = its value at 20 px.
- **normalised precision**: centre error divided per axis by the ground-truth width/height;
  fraction with normalised error <= t averaged over t = linspace(0, 0.5, 51) (TrackingNet/LaSOT).
- **AO** = mean IoU; **SR0.5** / **SR0.75** = fraction with IoU > 0.5 / 0.75 (GOT-10k).

A predicted NaN row (a tracker that gave no box) counts as IoU 0 and infinite centre error.
Over a dataset, curve metrics are the mean over sequences (OTB), while AO and SR pool all
evaluated frames (GOT-10k). ``got10k_compat=True`` mimics ``ExperimentOTB.report``: frame 0 is
counted, with the prediction replaced by the ground truth.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0, 1, 21)
PRECISION_THRESHOLDS = np.arange(0, 51)
PRECISION_AT = 20
NORM_PRECISION_THRESHOLDS = np.linspace(0, 0.5, 51)


def iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-row IoU of (N, 4) x,y,w,h arrays, got10k's formula (eps in the denominator, clipped to [0, 1])."""
    x1 = np.maximum(pred[:, 0], gt[:, 0])
    y1 = np.maximum(pred[:, 1], gt[:, 1])
    x2 = np.minimum(pred[:, 0] + pred[:, 2], gt[:, 0] + gt[:, 2])
    y2 = np.minimum(pred[:, 1] + pred[:, 3], gt[:, 1] + gt[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    out = np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)
    return np.where(np.isnan(pred).any(axis=1), 0.0, out)


def _centres(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, :2] + (boxes[:, 2:] - 1) / 2


def centre_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance in pixels between box centres; inf where the prediction is NaN."""
    err = np.sqrt(np.sum((_centres(pred) - _centres(gt)) ** 2, axis=1))
    return np.where(np.isnan(pred).any(axis=1), np.inf, err)


def normalised_centre_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre error with x divided by the ground-truth width and y by its height."""
    err = np.sqrt(np.sum(((_centres(pred) - _centres(gt)) / gt[:, 2:]) ** 2, axis=1))
    return np.where(np.isnan(pred).any(axis=1), np.inf, err)


@dataclass
class Scores:
    """Accuracy of one tracker on one sequence (or a dataset); curves as lists for JSON."""

    auc: float
    precision: float
    norm_precision: float
    ao: float
    sr50: float
    sr75: float
    frames: int
    success_curve: list[float]
    precision_curve: list[float]

    def to_dict(self, curves: bool = True) -> dict:
        d = asdict(self)
        if not curves:
            del d["success_curve"], d["precision_curve"]
        return d


def evaluated_frames(gt: np.ndarray, skip_first: bool = True) -> np.ndarray:
    """Boolean mask of frames that count: ground truth present and, by default, not frame 0."""
    mask = ~np.isnan(gt).any(axis=1)
    if skip_first:
        mask[0] = False
    return mask


def score_sequence(pred: np.ndarray, gt: np.ndarray, got10k_compat: bool = False) -> Scores:
    """Score (N, 4) predictions against (N, 4) ground truth (NaN rows absent); see the module doc."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 2 or pred.shape[1] != 4:
        raise ValueError(f"predictions {pred.shape} and ground truth {gt.shape} must both be (N, 4)")
    if got10k_compat:
        pred = pred.copy()
        pred[0] = gt[0]
    mask = evaluated_frames(gt, skip_first=not got10k_compat)
    p, g = pred[mask], gt[mask]
    ious = iou(p, g)
    ce = centre_error(p, g)
    nce = normalised_centre_error(p, g)
    n = int(mask.sum())
    if n == 0:
        zeros21, zeros51 = [0.0] * len(SUCCESS_THRESHOLDS), [0.0] * len(PRECISION_THRESHOLDS)
        return Scores(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, zeros21, zeros51)
    succ = np.mean(ious[:, None] > SUCCESS_THRESHOLDS[None, :], axis=0)
    prec = np.mean(ce[:, None] <= PRECISION_THRESHOLDS[None, :], axis=0)
    norm = np.mean(nce[:, None] <= NORM_PRECISION_THRESHOLDS[None, :], axis=0)
    return Scores(auc=float(succ.mean()), precision=float(prec[PRECISION_AT]), norm_precision=float(norm.mean()),
                  ao=float(ious.mean()), sr50=float(np.mean(ious > 0.5)), sr75=float(np.mean(ious > 0.75)),
                  frames=n, success_curve=succ.tolist(), precision_curve=prec.tolist())


def summarise(per_sequence: Iterable[Scores]) -> Scores:
    """Dataset scores: curves, AUC, precision, normalised precision averaged over sequences (OTB);
    AO and SR pooled over all evaluated frames (GOT-10k)."""
    seqs = list(per_sequence)
    if not seqs:
        raise ValueError("no sequences to summarise")
    succ = np.mean([s.success_curve for s in seqs], axis=0)
    prec = np.mean([s.precision_curve for s in seqs], axis=0)
    w = np.array([s.frames for s in seqs], dtype=np.float64)
    total = w.sum()

    def pooled(key: str) -> float:
        return float(np.dot(w, [getattr(s, key) for s in seqs]) / total) if total else 0.0

    return Scores(auc=float(succ.mean()), precision=float(prec[PRECISION_AT]),
                  norm_precision=float(np.mean([s.norm_precision for s in seqs])),
                  ao=pooled("ao"), sr50=pooled("sr50"), sr75=pooled("sr75"), frames=int(total),
                  success_curve=succ.tolist(), precision_curve=prec.tolist())
