"""Run trackers over sequences: each frame is decoded once and handed to every tracker of the run.

A tracker is anything with ``init(frame, box)`` and ``update(frame)`` returning a TrackResult
(or a bare x,y,w,h box). Sequences run in worker processes (spawned, one thread each); every
run pins one thread, so a parallel run gives exactly the boxes of a serial one.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from ..datasets import Sequence
from .metrics import Scores, score_sequence

TrackerFactory = Callable[[], Any]


@dataclass
class SequenceRun:
    """What one tracker did on one sequence: boxes (N, 4) (row 0 = the initial box), per-frame
    confidence (NaN where the tracker gives none), lost flags and timings in seconds."""

    boxes: np.ndarray
    scores: np.ndarray
    lost: np.ndarray
    init_time: float = 0.0
    update_time: float = 0.0
    decode_time: float = 0.0
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def tracker_fps(self) -> float:
        """Frames per second of ``update`` alone (frame 0's init excluded)."""
        n = len(self.boxes) - 1
        return n / self.update_time if self.update_time > 0 and n > 0 else 0.0

    @property
    def end_to_end_fps(self) -> float:
        """Frames per second including decoding, init and every update."""
        total = self.decode_time + self.init_time + self.update_time
        return len(self.boxes) / total if total > 0 else 0.0

    @property
    def lost_count(self) -> int:
        return int(self.lost.sum())


def set_single_thread() -> None:
    """One compute thread per process: fair timing between workers and bit-identical results."""
    import cv2
    import torch
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _unpack(result: Any) -> tuple[np.ndarray, float, bool]:
    box = getattr(result, "box", result)
    score = getattr(result, "score", np.nan)
    return np.asarray(box, dtype=np.float64).reshape(4), float(score), bool(getattr(result, "lost", False))


def track_sequence(trackers: Mapping[str, Any], seq: Sequence, frames: Iterable[np.ndarray] | None = None,
                   progress: bool = False) -> dict[str, SequenceRun]:
    """Track ``seq`` with every tracker in ``trackers`` on the same decoded frames.

    A tracker that raises is stopped and reported in ``SequenceRun.error`` (its remaining boxes NaN);
    the others carry on.
    """
    n = len(seq)
    runs = {name: SequenceRun(np.full((n, 4), np.nan), np.full(n, np.nan), np.zeros(n, bool)) for name in trackers}
    for run in runs.values():
        run.boxes[0] = seq.boxes[0]
    it: Iterator[np.ndarray] = iter(frames if frames is not None else seq.frames())
    decode = 0.0
    bar = _frame_bar(seq, progress)
    for f in range(n):
        t0 = time.perf_counter()
        frame = next(it)
        decode += time.perf_counter() - t0
        for name, tracker in trackers.items():
            run = runs[name]
            if run.error is not None:
                continue
            t0 = time.perf_counter()
            try:
                if f == 0:
                    tracker.init(frame, seq.init_box)
                    run.init_time = time.perf_counter() - t0
                    continue
                result = tracker.update(frame)
                run.update_time += time.perf_counter() - t0
                run.boxes[f], run.scores[f], run.lost[f] = _unpack(result)
            except Exception as exc:  # a peer failing must be reported, never crash the benchmark
                run.error = f"frame {f}: {type(exc).__name__}: {exc}".splitlines()[0]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for run in runs.values():
        run.decode_time = decode
    return runs


def _frame_bar(seq: Sequence, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=len(seq), desc=seq.name, unit="frame", leave=False)


def _score_job(job: tuple[TrackerFactory, Sequence, bool]) -> tuple[str, Scores]:
    factory, seq, got10k_compat = job
    set_single_thread()
    run = track_sequence({"t": factory()}, seq)["t"]
    if run.error is not None:
        raise RuntimeError(f"{seq.name}: {run.error}")
    return seq.name, score_sequence(run.boxes, seq.boxes, got10k_compat)


def parallel_map(fn: Callable, jobs: list, workers: int) -> Iterator:
    """``map(fn, jobs)`` in order; in ``workers`` spawned processes when workers > 1."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    with mp.get_context("spawn").Pool(min(workers, len(jobs)), initializer=set_single_thread) as pool:
        yield from pool.imap(fn, jobs)


def evaluate(factory: TrackerFactory, sequences: list[Sequence], workers: int = 1,
             got10k_compat: bool = False) -> dict[str, Scores]:
    """Per-sequence scores of the tracker ``factory()`` builds (one fresh tracker per sequence).

    With ``workers > 1`` the factory must be picklable (e.g. ``functools.partial(SiamTracker, weights=p)``).
    Summarise with :func:`tracker.evaluation.metrics.summarise`.
    """
    jobs = [(factory, seq, got10k_compat) for seq in sequences]
    return dict(parallel_map(_score_job, jobs, workers))
