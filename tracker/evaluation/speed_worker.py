"""One speed measurement, run inside a fresh process of its own (tracker/evaluation/speed.py starts it).

A fresh process per tracker and thread regime is the instrument's point: no library setting (OpenCV's
or torch's thread count, ONNX Runtime's pools, warm caches) can leak from one row into the next. The
process records the settings it found on entry, so the report can show that every row started clean.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

from ..datasets import Sequence, load_dataset
from ..tracking import MultiTracker, SiamTracker
from .peers import PeerOptions, parse_trackers

STAGES = ("crop", "backbone", "head", "graphs", "post", "update")  # graphs: the frame's whole network call
REGIMES = ("1", "2", "default")  # threads each library gets; "default": whatever it picks by itself


def regime_threads(regime: str) -> int | None:
    """The thread count of a regime, None for each library's own default."""
    if regime == "default":
        return None
    if not regime.isdigit() or int(regime) < 1:
        raise ValueError(f"unknown thread regime {regime!r}; use a positive count or 'default'")
    return int(regime)


@dataclass(frozen=True)
class Job:
    """What one fresh process measures: ``tracker`` (a `siamtrack bench` name) on ``backend`` (siamtrack
    only) under a thread ``regime``, with ``targets`` objects at once (1: the single-target API)."""

    tracker: str
    regime: str
    sequence: Path
    frames: int
    passes: int
    peers: PeerOptions
    backend: str | None = None
    targets: int = 1
    stage_repeats: int = 0
    memory_frames: int = 0
    end_to_end: bool = True


@dataclass
class Timing:
    """Median wall-clock and CPU milliseconds of one measured call."""

    wall_ms: float
    cpu_ms: float


def settings() -> dict[str, int]:
    """The process-wide settings a tracker could leak: OpenCV's and torch's thread counts."""
    return {"cv2_threads": cv2.getNumThreads(), "torch_threads": torch.get_num_threads()}


def load_frames(path: Path, frames: int) -> tuple[Sequence, list[np.ndarray]]:
    seq = load_dataset(path.parent, names=[path.name])[0]
    decoded = []
    for frame in seq.frames():
        decoded.append(frame)
        if len(decoded) >= frames:
            break
    return seq, decoded


def grid_boxes(n: int, box: tuple[float, ...], shape: tuple[int, ...]) -> list[tuple[float, float, float, float]]:
    """The first box, then n - 1 boxes of its size spread over the frame (MultiTracker rows)."""
    height, width = shape[:2]
    w, h = min(box[2], width / 4), min(box[3], height / 4)
    cols = int(np.ceil(np.sqrt(n * width / height)))
    rows = int(np.ceil(n / cols))
    xs, ys = np.linspace(w / 2, width - 1.5 * w, cols), np.linspace(h / 2, height - 1.5 * h, rows)
    grid = [(float(xs[i % cols]), float(ys[i // cols]), float(w), float(h)) for i in range(n - 1)]
    return [tuple(float(v) for v in box[:4])] + grid


class _Group:
    """``n`` independent instances of a peer behind one init/update (what a user without batching runs)."""

    def __init__(self, factory: Callable[[], Any], n: int) -> None:
        self.trackers = [factory() for _ in range(n)]

    def init(self, frame: np.ndarray, boxes: list[tuple[float, ...]]) -> None:
        for tracker, box in zip(self.trackers, boxes):
            tracker.init(frame, box)

    def update(self, frame: np.ndarray) -> None:
        for tracker in self.trackers:
            tracker.update(frame)


class _Batched:
    """A MultiTracker re-initialised with the same boxes for every pass."""

    def __init__(self, multi: MultiTracker) -> None:
        self.multi = multi

    def init(self, frame: np.ndarray, boxes: list[tuple[float, ...]]) -> None:
        for tid in self.multi.ids:
            self.multi.remove(tid)
        for box in boxes:
            self.multi.add(frame, box)

    def update(self, frame: np.ndarray) -> None:
        self.multi.update(frame)


def build(job: Job) -> tuple[Any, Callable[[], Any] | None]:
    """(the object to time, the single-target factory when it is siamtrack, for the stage profile)."""
    spec = parse_trackers([job.tracker], job.peers)[0]
    if spec.factory is None:
        raise RuntimeError(spec.error or "not run")
    factory = spec.factory
    is_siamtrack = isinstance(factory, functools.partial) and factory.func is SiamTracker
    if is_siamtrack:
        factory = functools.partial(factory, backend=job.backend or "auto", threads=regime_threads(job.regime))
    elif isinstance(factory, functools.partial) and "threads" in factory.keywords:  # ONNX Runtime peers
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        factory = functools.partial(factory, threads=regime_threads(job.regime) or cores)  # default: ORT's, all cores
    if job.targets == 1:
        return _Group(factory, 1), factory if is_siamtrack else None
    if is_siamtrack:  # lost_threshold 0: every target takes the batched path (no re-detection crops)
        return _Batched(MultiTracker(*factory.args, **{**factory.keywords, "lost_threshold": 0.0})), None
    return _Group(factory, job.targets), None


def time_passes(tracker: Any, frames: list[np.ndarray], boxes: list[tuple[float, ...]], passes: int) -> list[tuple[float, float]]:
    """(wall s, CPU s) of the updates of each pass over ``frames``; a short untimed pass warms up first."""
    out = []
    for p in range(passes + 1):
        tracker.init(frames[0], boxes)
        todo = frames[1:] if p else frames[1:min(len(frames), 21)]
        w0, c0 = time.perf_counter(), time.process_time()
        for frame in todo:
            tracker.update(frame)
        if p:
            out.append((time.perf_counter() - w0, time.process_time() - c0))
    return out


def _timed(fn: Callable[[], Any]) -> Timing:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return Timing(1000 * (time.perf_counter() - w0), 1000 * (time.process_time() - c0))


def time_stages(tracker: SiamTracker, frame: np.ndarray, repeats: int) -> dict[str, Timing]:
    """Each stage of one update on the same frame and target state, stages interleaved per repeat.
    On CUDA each stage ends with a synchronize: kernels run asynchronously, so the launch alone says nothing."""
    multi = tracker._multi  # a profiler reaches inside on purpose: these are the hot-path pieces
    tid = tracker._id
    target = multi._targets[tid]
    step = multi.step
    size = step.search_size(target)  # the crop size the target's state asks for now
    buf = multi._search_buffer(multi.config.searches_per_target, size)
    kernels = multi._kernels_for((tid,))
    step.search_into(target, frame, buf)
    engine = multi.engine
    feats = engine.features(buf)
    outputs = engine.scores(kernels, feats)
    calls = {"crop": lambda: step.search_into(target, frame, buf), "backbone": lambda: engine.features(buf),
             "head": lambda: engine.scores(kernels, feats), "graphs": lambda: engine.respond(kernels, buf),
             "post": lambda: step.propose(target, outputs, size), "update": lambda: tracker.update(frame)}
    if engine.device.type == "cuda":
        calls = {k: (lambda fn=fn: (fn(), torch.cuda.synchronize(engine.device))) for k, fn in calls.items()}
    for fn in calls.values():
        fn()
    samples: dict[str, list[Timing]] = {k: [] for k in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            samples[name].append(_timed(fn))
    return {k: Timing(float(np.median([t.wall_ms for t in v])), float(np.median([t.cpu_ms for t in v])))
            for k, v in samples.items()}


def end_to_end_fps(tracker: Any, seq: Sequence, frames: int, boxes: list[tuple[float, ...]]) -> float:
    """Decode + init + track + draw fps over the first ``frames`` frames."""
    t0 = time.perf_counter()
    n = 0
    for n, frame in enumerate(seq.frames(), start=1):
        if n == 1:
            tracker.init(frame, boxes)
        else:
            tracker.update(frame)
            x, y, w, h = boxes[0]
            cv2.rectangle(frame, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 2)
        if n >= frames:
            break
    return n / (time.perf_counter() - t0)


def memory_run(factory: Callable[[], Any], frames: list[np.ndarray], box: tuple[float, ...], count: int,
               samples: int = 20) -> list[tuple[int, float]]:
    """RSS (MB) every count/samples updates over ``count`` frames played forwards and backwards."""
    import psutil
    proc = psutil.Process()
    tracker = factory()
    tracker.init(frames[0], box)
    period = max(1, count // samples)
    cycle = list(range(1, len(frames))) + list(range(len(frames) - 2, 0, -1))
    rss = []
    for i in range(1, count + 1):
        tracker.update(frames[cycle[i % len(cycle)]])
        if i % period == 0:
            rss.append((i, proc.memory_info().rss / 2 ** 20))
    return rss


def run_job(job: Job) -> dict[str, Any]:
    """Measure ``job`` in this (fresh) process; every failure comes back as ``error``, never raises."""
    record: dict[str, Any] = {"pid": os.getpid(), "on_entry": settings()}
    try:
        threads = regime_threads(job.regime)
        if threads is not None:  # this process is the row's own: setting its pools leaks into no other row
            cv2.setNumThreads(threads)
            torch.set_num_threads(threads)
        seq, frames = load_frames(Path(job.sequence), job.frames)
        boxes = grid_boxes(job.targets, seq.init_box, frames[0].shape)
        tracker, single = build(job)
        record["while_timed"] = settings()
        record["passes"] = time_passes(tracker, frames, boxes, job.passes)
        if single is not None:  # the timed tracker's own choice (a probe built now would see its pool still busy)
            record["engine_threads"] = tracker.trackers[0]._multi.engine.threads
        if single is not None and job.stage_repeats:
            probe = single()
            probe.init(frames[0], seq.init_box)
            probe.update(frames[1])
            record["stages"] = time_stages(probe, frames[1], job.stage_repeats)
        if job.end_to_end:
            record["end_to_end_fps"] = end_to_end_fps(tracker, seq, len(frames), boxes)
        if single is not None and job.memory_frames:
            record["memory"] = memory_run(single, frames, seq.init_box, job.memory_frames)
        record["after"] = settings()
    except Exception as exc:  # a broken tracker is reported, never stops the others
        record["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return record
