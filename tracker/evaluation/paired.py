"""Paired per-sequence differences between two trackers, with a bootstrap 95 % interval over sequences.

Why paired: sequences differ far more from each other than good trackers do, so the spread of one
tracker's scores says little about whether it beats another; the per-sequence differences on the same
sequences do. Why a bootstrap over sequences: the sequences are the sample (frames of one sequence are
not independent), and the percentile interval needs no normal assumption for 10-40 sequences.

Method: d_i = candidate_i - reference_i over the sequences both scored; resample the n differences with
replacement ``resamples`` times (numpy ``default_rng(seed)``), take each resample's mean, and report the
2.5th and 97.5th percentiles of those means (numpy's linear interpolation) around the mean of d.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

RESAMPLES = 10_000
SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class PairedDifference:
    """Mean of candidate - reference over ``n`` common sequences, its interval [lo, hi], and how many
    sequences the candidate won (d > 0) and lost (d < 0)."""

    mean: float
    lo: float
    hi: float
    n: int
    wins: int
    losses: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def cells(self) -> tuple[str, str]:
        """('+0.012', '[-0.003, +0.027]'): the mean and the interval as report tables print them."""
        return f"{self.mean:+.3f}", f"[{self.lo:+.3f}, {self.hi:+.3f}]"


def paired_difference(candidate: Mapping[str, float], reference: Mapping[str, float], resamples: int = RESAMPLES,
                      seed: int = SEED, level: float = LEVEL) -> PairedDifference:
    """Paired difference of two ``{sequence: score}`` maps on the sequences both hold (see the module doc);
    the result does not depend on the maps' order. No common sequence is a ValueError."""
    common = sorted(set(candidate) & set(reference))
    if not common:
        raise ValueError("no sequence was scored by both trackers; a paired difference needs at least one")
    d = np.array([candidate[s] - reference[s] for s in common], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return PairedDifference(float(d.mean()), float(lo), float(hi), len(d), int((d > 0).sum()), int((d < 0).sum()))


def tracker_scores(entry: Mapping[str, Any], metric: str = "auc") -> dict[str, float]:
    """``{sequence: metric}`` of one tracker's results.json entry, over the sequences it scored."""
    return {seq: e[metric] for seq, e in entry.get("sequences", {}).items() if e.get(metric) is not None}


def sequence_scores(results: Mapping[str, Any] | str | os.PathLike, tracker: str | None = None,
                    metric: str = "auc") -> dict[str, float]:
    """``{sequence: metric}`` of ``tracker`` (default: the first listed) in a results.json (path or dict)."""
    doc = json.loads(Path(results).read_text()) if isinstance(results, (str, os.PathLike)) else results
    trackers = doc["trackers"]
    name = tracker if tracker is not None else next(iter(trackers))
    if name not in trackers:
        raise KeyError(f"tracker {name!r} is not in these results; they hold {', '.join(trackers)}")
    return tracker_scores(trackers[name], metric)


def compare_results(candidate: Mapping[str, Any] | str | os.PathLike, reference: Mapping[str, Any] | str | os.PathLike,
                    candidate_tracker: str | None = None, reference_tracker: str | None = None,
                    metric: str = "auc", resamples: int = RESAMPLES, seed: int = SEED) -> PairedDifference:
    """Paired ``metric`` difference of a tracker in one results.json against a tracker in another (or the same)."""
    return paired_difference(sequence_scores(candidate, candidate_tracker, metric),
                             sequence_scores(reference, reference_tracker, metric), resamples, seed)
