"""Teacher-labelled targets: regions other than the annotated object that a strong tracker (the teacher)
follows confidently forwards and then back to where it started, written as short pseudo-sequences that
``--extra-sequences`` trains on like any other.

Why: distillation needs no human box, so anything in the training videos that the teacher can track is a
target; the annotated object is one of many things in each frame. The forward-backward check (the box
tracked back to the window's first frame must land on the proposal) and a score floor on every frame keep
the labels the teacher is sure of; a proposal on a flat region is never tried.

Proposals are random boxes of a typical target's size and shape that overlap neither the annotated
target nor each other; every sequence gets its own seeded generator, so a run is reproducible.
"""
from __future__ import annotations

import json
import os
import zlib
from functools import partial
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..datasets import Sequence, write_sequence
from ..evaluation.metrics import iou as iou_rows
from ..evaluation.runner import parallel_map
from .data import PIECE_SEPARATOR
from .options import opt

# a MultiTracker-like factory: () -> object with add(frame, box) -> id and update(frame) -> {id: result}
TrackerFactory = Callable[[], Any]


@dataclass(frozen=True)
class MiningConfig:
    """Where to look, what to propose and what the teacher must do for a proposal to become a target."""

    windows: int = opt(2, "windows per sequence, spread evenly over its frames")
    length: int = opt(20, "frames per window: tracked forwards, then back to the first")
    proposals: int = opt(6, "candidate boxes per window")
    min_side: float = opt(0.06, "smallest proposal sqrt(w h), as a fraction of the frame's shorter side")
    max_side: float = opt(0.3, "largest proposal sqrt(w h), as a fraction of the frame's shorter side")
    max_aspect: float = opt(2.0, "largest long/short side ratio of a proposal")
    min_contrast: float = opt(15.0, "smallest grey-level standard deviation inside a proposal (flat regions "
                                    "track anywhere)")
    max_overlap: float = opt(0.1, "largest IoU of a proposal with the annotated target or another proposal")
    min_score: float = opt(0.5, "the teacher's score floor on every frame of the window")
    min_return_iou: float = opt(0.7, "smallest IoU between the proposal and the box tracked back to the first frame")
    seed: int = opt(0, "seed of the proposals (each sequence draws from (seed, its name))")

    def __post_init__(self) -> None:
        if self.windows < 1 or self.length < 2 or self.proposals < 1:
            raise ValueError("windows and proposals must be >= 1 and length >= 2")
        if not 0 < self.min_side <= self.max_side < 1:
            raise ValueError(f"need 0 < min_side <= max_side < 1; got {self.min_side}, {self.max_side}")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two x, y, w, h boxes (the bench's formula)."""
    return float(iou_rows(np.asarray(a, np.float64)[None], np.asarray(b, np.float64)[None])[0])


def propose(frame: np.ndarray, avoid: list[np.ndarray], rng: np.random.Generator, cfg: MiningConfig,
            tries: int = 200) -> list[np.ndarray]:
    """Up to ``cfg.proposals`` boxes (x, y, w, h) inside the frame, textured, overlapping no box of ``avoid``
    (the annotated target) nor each other by more than ``cfg.max_overlap``."""
    height, width = frame.shape[:2]
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    short = min(height, width)
    kept: list[np.ndarray] = []
    for _ in range(tries):
        if len(kept) == cfg.proposals:
            break
        side = short * np.exp(rng.uniform(np.log(cfg.min_side), np.log(cfg.max_side)))
        aspect = np.exp(rng.uniform(-np.log(cfg.max_aspect), np.log(cfg.max_aspect)))
        w, h = side * np.sqrt(aspect), side / np.sqrt(aspect)
        if w >= width - 1 or h >= height - 1:
            continue
        box = np.array([rng.uniform(0, width - w), rng.uniform(0, height - h), w, h])
        x0, y0 = int(box[0]), int(box[1])
        if grey[y0:y0 + int(h), x0:x0 + int(w)].std() < cfg.min_contrast:
            continue
        if any(np.all(np.isfinite(a)) and iou(box, a) > cfg.max_overlap for a in [*avoid, *kept]):
            continue
        kept.append(box)
    return kept


def _track(factory: TrackerFactory, frames: list[np.ndarray], boxes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (T, K, 4) and scores (T, K) of K targets started at ``boxes`` in frames[0] (score 1 there;
    a lost frame scores 0)."""
    tracker = factory()
    ids = [tracker.add(frames[0], tuple(float(v) for v in b)) for b in boxes]
    out, scores = [np.asarray(boxes, np.float64)], [np.ones(len(ids))]
    for frame in frames[1:]:
        results = tracker.update(frame)
        out.append(np.array([results[i].box for i in ids], np.float64))
        scores.append(np.array([0.0 if results[i].lost else results[i].score for i in ids]))
    return np.stack(out), np.stack(scores)


def mine_window(factory: TrackerFactory, frames: list[np.ndarray], proposals: list[np.ndarray],
                cfg: MiningConfig) -> list[np.ndarray]:
    """The (length, 4) box tracks of the proposals the teacher follows with score >= min_score on every
    frame and brings back to within min_return_iou of where they started."""
    if not proposals:
        return []
    forward, scores = _track(factory, frames, proposals)
    sure = [k for k in range(len(proposals)) if scores[1:, k].min() >= cfg.min_score]
    if not sure:
        return []
    back, _ = _track(factory, frames[::-1], [forward[-1, k] for k in sure])
    return [forward[:, k] for j, k in enumerate(sure) if iou(back[-1, j], proposals[k]) >= cfg.min_return_iou]


def window_starts(n_frames: int, cfg: MiningConfig) -> list[int]:
    """First frames of the windows, spread evenly (none when the sequence is shorter than one window)."""
    last = n_frames - cfg.length
    if last < 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, last, cfg.windows)})


def mine_sequence(seq: Sequence, factory: TrackerFactory, cfg: MiningConfig, out: str | os.PathLike) -> list[Path]:
    """Mine ``seq``'s windows; each kept track becomes ``out/<seq>~<first frame>~<k>`` (video.mp4 of its
    frames, groundtruth.txt of the teacher's boxes). Returns the folders written."""
    starts = window_starts(len(seq), cfg)
    rng = np.random.default_rng([cfg.seed, zlib.crc32(seq.name.encode())])
    wanted = {s + i for s in starts for i in range(cfg.length)}
    frames = {i: f for i, f in enumerate(seq.frames()) if i in wanted}
    written = []
    for start in starts:
        window = [frames[start + i] for i in range(cfg.length)]
        truth = [seq.boxes[start]] if start < len(seq.boxes) else []
        for k, track in enumerate(mine_window(factory, window, propose(window[0], truth, rng, cfg), cfg)):
            name = PIECE_SEPARATOR.join((seq.name, f"{start:05d}", str(k)))
            written.append(write_sequence(Path(out) / name, window, track))
    return written


def mine(sequences: list[Sequence], factory: TrackerFactory, cfg: MiningConfig, out: str | os.PathLike,
         teacher: str, workers: int = 1, log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Mine every sequence into ``out`` (in ``workers`` processes: ``factory`` must then pickle, a
    functools.partial of MultiTracker does) and write ``out/mined.json`` (the config, the teacher, the count
    per sequence): what the folders came from, for the model card."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    job = partial(mine_sequence, factory=factory, cfg=cfg, out=out)
    for seq, written in zip(sequences, parallel_map(job, sequences, workers)):
        counts[seq.name] = len(written)
        if log:
            log(f"{seq.name}: {counts[seq.name]} target(s)")
    summary = {"teacher": teacher, "config": asdict(cfg), "targets": counts, "total": sum(counts.values())}
    (out / "mined.json").write_text(json.dumps(summary, indent=1))
    return summary
