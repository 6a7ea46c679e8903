"""Can the tracker's own signals be trusted? The lost flag and the confidence against failure frames.

Why: re-detection, and every pipeline that drops or re-initialises a track, acts on ``lost`` and ``score``;
AUC says nothing about whether they fire on the right frames. Per sequence, over frames 1..N-1 (frame 0 is
the given box; all frames with a ground-truth row, absent ones included):

- a **failure frame** is one where the target is absent (NaN ground truth) or present with IoU = 0;
- **lost-flag precision** = failure frames flagged lost / frames flagged lost (None: never flagged);
  **recall** = failure frames flagged lost / failure frames (None: no failure frame);
- **confidence ROC AUC**: the probability that a failure frame scores lower than a non-failure frame, ties
  counted half (None: one class empty, or a frame without a score);
- **long-term tracking precision / recall / F** (Lukežič et al., "Performance evaluation methodology for
  long-term single-object tracking", 2020; VOT-LT): at a threshold τ the tracker *predicts* on the frames
  with score >= τ. Pr(τ) = mean IoU over the predicted frames (IoU 0 where the target is absent),
  Re(τ) = sum of IoU over the predicted frames with the target present / frames with the target present,
  F(τ) = 2 Pr Re / (Pr + Re). No predicted frame gives Pr = 1, Re = 0, and Pr + Re = 0 gives F = 0 (the VOT
  toolkit's conventions). Thresholds are the VOT toolkit's: +inf, ``resolution - 2`` quantiles of the
  scores sorted high to low, -inf. Reported: the best F over the thresholds, its Pr, Re and τ.

Over a dataset the flag's counts and the ROC pool all frames; Pr(τ) and Re(τ) are averaged over sequences
at thresholds taken from every sequence's scores, and F is computed from those means (as VOT-LT does).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .metrics import iou

RESOLUTION = 100  # VOT-LT thresholds: +inf, 98 score quantiles, -inf


@dataclass(frozen=True)
class Outcome:
    """One sequence's frames 1..N-1 that have a ground-truth row: IoU (0 where the target is absent),
    whether the target is present, the tracker's score and lost flag."""

    overlap: np.ndarray
    present: np.ndarray
    score: np.ndarray
    lost: np.ndarray

    @property
    def failure(self) -> np.ndarray:
        return ~self.present | (self.overlap == 0)


def outcome(boxes: np.ndarray, scores: np.ndarray, lost: np.ndarray, gt: np.ndarray) -> Outcome:
    """The evaluated frames of one run; ``gt`` may be shorter than the run (partial ground truth)."""
    n = len(gt)
    boxes, gt = np.asarray(boxes, np.float64)[1:n], np.asarray(gt, np.float64)[1:]
    if len(boxes) != len(gt) or len(scores) < n or len(lost) < n:
        raise ValueError(f"a run of {len(scores)} scores and {len(boxes) + 1} boxes cannot cover {n} ground-truth rows")
    present = ~np.isnan(gt).any(axis=1)
    overlap = np.zeros(len(gt))
    overlap[present] = iou(boxes[present], gt[present])
    return Outcome(overlap, present, np.asarray(scores, np.float64)[1:n], np.asarray(lost, bool)[1:n])


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def flag_counts(o: Outcome) -> tuple[int, int, int]:
    """(flagged failure frames, flagged frames, failure frames)."""
    return int((o.lost & o.failure).sum()), int(o.lost.sum()), int(o.failure.sum())


def roc_auc(score: np.ndarray, failure: np.ndarray) -> float | None:
    """P(a failure frame scores lower than a non-failure frame) + half the ties; None if undefined."""
    if np.isnan(score).any():
        return None
    bad, good = np.sort(score[failure]), np.sort(score[~failure])
    if not len(bad) or not len(good):
        return None
    above = len(good) - np.searchsorted(good, bad, side="right")
    ties = np.searchsorted(good, bad, side="right") - np.searchsorted(good, bad, side="left")
    return float((above.sum() + 0.5 * ties.sum()) / (len(bad) * len(good)))


def thresholds(scores: np.ndarray, resolution: int = RESOLUTION) -> np.ndarray:
    """VOT toolkit thresholds: +inf, then ``resolution - 2`` evenly spaced scores of the descending order
    (all of them when fewer), then -inf."""
    s = np.sort(scores[~np.isnan(scores)])[::-1]
    if len(s) > resolution - 2:
        delta = len(s) // (resolution - 2)
        s = s[np.round(np.linspace(delta, len(s) - delta, resolution - 2)).astype(int)]
    return np.concatenate([[math.inf], s, [-math.inf]])


def pr_curves(o: Outcome, taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tracking precision and recall of one sequence at every threshold (module doc)."""
    predicted = o.score[None, :] >= taus[:, None]
    count = predicted.sum(axis=1)
    total = (predicted * o.overlap[None, :]).sum(axis=1)
    precision = np.where(count > 0, total / np.maximum(count, 1), 1.0)
    recall = total / o.present.sum() if o.present.any() else np.zeros(len(taus))
    return precision, recall


def best_f(precision: np.ndarray, recall: np.ndarray, taus: np.ndarray) -> dict[str, float]:
    """The threshold with the highest F (the first of equals, i.e. the highest τ) and its Pr, Re, F."""
    total = precision + recall
    f = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
    i = int(np.argmax(f))
    return {"lt_precision": float(precision[i]), "lt_recall": float(recall[i]), "lt_f": float(f[i]),
            "lt_threshold": float(taus[i])}


LT_KEYS = ("lt_precision", "lt_recall", "lt_f", "lt_threshold")


def _lt(outcomes: list[Outcome]) -> dict[str, float | None]:
    if not outcomes or any(np.isnan(o.score).any() for o in outcomes):
        return dict.fromkeys(LT_KEYS)
    taus = thresholds(np.concatenate([o.score for o in outcomes]))
    curves = [pr_curves(o, taus) for o in outcomes]
    return best_f(np.mean([c[0] for c in curves], axis=0), np.mean([c[1] for c in curves], axis=0), taus)


def _report(outcomes: list[Outcome]) -> dict[str, float | int | None]:
    hit, flagged, failures = (sum(c) for c in zip(*(flag_counts(o) for o in outcomes))) if outcomes else (0, 0, 0)
    scores = np.concatenate([o.score for o in outcomes]) if outcomes else np.zeros(0)
    failure = np.concatenate([o.failure for o in outcomes]) if outcomes else np.zeros(0, bool)
    return {"failure_frames": failures, "lost_frames": flagged, "lost_precision": _ratio(hit, flagged),
            "lost_recall": _ratio(hit, failures), "score_roc_auc": roc_auc(scores, failure), **_lt(outcomes)}


def sequence_report(o: Outcome) -> dict[str, float | int | None]:
    """results.json's lost-flag and confidence keys of one sequence."""
    return _report([o])


def dataset_report(outcomes: Iterable[Outcome]) -> dict[str, float | int | None]:
    """The same keys over a dataset: counts and ROC pooled, Pr/Re averaged over sequences (module doc)."""
    return _report(list(outcomes))
