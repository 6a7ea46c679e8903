"""Run trackers over sequences: each frame is decoded once and handed to every tracker of the run.

A tracker is anything with ``init(frame, box)`` and ``update(frame)`` returning a TrackResult
(or a bare x,y,w,h box). Sequences run in worker processes (spawned, one thread each) or, with
``ray=``, as Ray tasks (one thread each, see ray_engine); every run pins one thread, so a parallel
run gives exactly the boxes of a serial one.
"""
from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing as mp
import os
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from ..datasets import Sequence, check_ground_truth
from .metrics import Scores, score_sequence
from .peers import TrackerSpec

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
    unreadable: str | None = None  # why the sequence's frames could not be read (then ``error`` too)

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
    """One compute thread per worker process: fair timing between workers and bit-identical results."""
    import cv2
    import torch
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """One compute thread while a benchmark runs in the caller's own process, then the caller's settings
    again (a Python caller's OpenCV and torch thread counts are theirs)."""
    import cv2
    import torch
    before = cv2.getNumThreads(), torch.get_num_threads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before[0])
        torch.set_num_threads(before[1])


def _unpack(result: Any) -> tuple[np.ndarray, float, bool]:
    box = getattr(result, "box", result)
    score = getattr(result, "score", np.nan)
    return np.asarray(box, dtype=np.float64).reshape(4), float(score), bool(getattr(result, "lost", False))


def track_sequence(trackers: Mapping[str, Any], seq: Sequence, frames: Iterable[np.ndarray] | None = None,
                   on_frame: Callable[[], None] | None = None) -> dict[str, SequenceRun]:
    """Track ``seq`` with every tracker in ``trackers`` on the same decoded frames.

    A tracker that raises is stopped and reported in ``SequenceRun.error`` (its remaining boxes NaN);
    the others carry on. Frames that cannot be read (a video that does not open, a decode failure) end
    the sequence for every tracker, with the reason in ``SequenceRun.unreadable``: a bad sequence is
    reported, it does not stop a benchmark. ``on_frame`` is called after each frame (progress bars).
    """
    n = len(seq)
    runs = {name: SequenceRun(np.full((n, 4), np.nan), np.full(n, np.nan), np.zeros(n, bool)) for name in trackers}
    for run in runs.values():
        run.boxes[0] = seq.boxes[0]
    it: Iterator[np.ndarray] = iter(frames if frames is not None else seq.frames())
    decode = 0.0
    for f in range(n):
        t0 = time.perf_counter()
        try:
            frame = next(it)
        except Exception as exc:  # noqa: BLE001 - any reader failure makes the sequence unreadable
            reason = f"{exc}".splitlines()[0] if str(exc) else type(exc).__name__
            for run in runs.values():
                run.unreadable = reason
                run.error = run.error or f"frame {f}: sequence unreadable: {reason}"
            break
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
        if on_frame is not None:
            on_frame()
    for run in runs.values():
        run.decode_time = decode
    return runs


def score_tracked(boxes: np.ndarray, seq: Sequence, got10k_compat: bool = False) -> Scores:
    """Scores of boxes for every frame of ``seq`` on the frames it has ground truth for (a partial
    ground truth covers the first ones)."""
    return score_sequence(boxes[:len(seq.boxes)], seq.boxes, got10k_compat)


def _score_job(job: tuple[TrackerFactory, Sequence, bool]) -> tuple[str, Scores]:
    factory, seq, got10k_compat = job
    run = track_sequence({"t": factory()}, seq, on_frame=_tick)["t"]
    if run.error is not None:
        raise RuntimeError(f"{seq.name}: {run.error}")
    return seq.name, score_tracked(run.boxes, seq, got10k_compat)


_ticker: Callable[[], None] | None = None  # per-frame progress hook of this process


def _init_worker(queue: Any) -> None:
    global _ticker
    _ticker = functools.partial(queue.put, 1)
    set_single_thread()


def _tick() -> None:
    if _ticker is not None:
        _ticker()


def parallel_map(fn: Callable, jobs: list, workers: int, on_frame: Callable[[], None] | None = None) -> Iterator:
    """``map(fn, jobs)`` in order; in ``workers`` spawned processes when workers > 1.

    Jobs call :func:`_tick` per frame; the ticks reach ``on_frame`` in this process.
    """
    global _ticker
    if workers <= 1 or len(jobs) <= 1:
        _ticker = on_frame
        try:
            with single_thread():
                yield from map(fn, jobs)
        finally:
            _ticker = None
        return
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    drain = threading.Thread(target=_drain, args=(queue, on_frame), daemon=True)
    drain.start()
    try:
        with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker, initargs=(queue,)) as pool:
            yield from pool.imap(fn, jobs)
    finally:
        queue.put(None)
        drain.join(timeout=5)


def _drain(queue: Any, on_frame: Callable[[], None] | None) -> None:
    while queue.get() is not None:
        if on_frame is not None:
            on_frame()


def evaluate(factory: TrackerFactory, sequences: list[Sequence], workers: int = 1,
             got10k_compat: bool = False, allow_partial: bool = False, ray: str | None = None) -> dict[str, Scores]:
    """Per-sequence scores of the tracker ``factory()`` builds (one fresh tracker per sequence).

    With ``workers > 1`` the factory must be picklable (e.g. ``functools.partial(SiamTracker, weights=p)``).
    ``ray``: run each sequence as a Ray task instead, on the cluster at that address (``auto``, host:port) or
    on a local Ray (``local``); a Ray this process already initialised is used as it is.
    Summarise with :func:`tracker.evaluation.metrics.summarise`. A sequence with only its first box has
    nothing to score and is left out (not run); a partial ground truth is a DatasetError unless
    ``allow_partial``, then it is tracked to the end and scored on its annotated frames.
    """
    check_ground_truth(sequences, allow_partial)
    jobs = [(factory, absolute(seq) if ray is not None else seq, got10k_compat)
            for seq in sequences if seq.ground_truth != "first-box"]
    if ray is None:
        return dict(parallel_map(_score_job, jobs, workers))
    from .ray_engine import describe, ray_map
    scores: dict[str, Scores] = {}
    for (_, seq, _), outcome in ray_map(_score_job, jobs, ray, [source(job[1]) for job in jobs]):
        if isinstance(outcome, Exception):
            raise RuntimeError(f"{seq.name}: {describe(outcome)}")
        scores[seq.name] = outcome[1]
    return {seq.name: scores[seq.name] for _, seq, _ in jobs}


def absolute(seq: Sequence) -> Sequence:
    """``seq`` with absolute file paths: a Ray task runs in another folder, often on another machine."""
    return replace(seq, video=seq.video and seq.video.absolute(),
                   frame_files=tuple(p.absolute() for p in seq.frame_files),
                   truth_file=seq.truth_file and seq.truth_file.absolute())


def source(seq: Sequence) -> Path:
    """The file a task reads first: ``seq``'s video or its first frame."""
    return seq.video if seq.video is not None else seq.frame_files[0]


# ---------------------------------------------------------------- benchmark runs with box files

BOX_FORMAT = "%.4f"


def safe_name(name: str) -> str:
    """A tracker name as a folder name."""
    return re.sub(r"[^A-Za-z0-9._@=+-]", "_", name)


def box_paths(out: Path, tracker: str, seq: str) -> tuple[Path, Path]:
    """(boxes .txt in got10k's x,y,w,h comma format, run record .json) of one tracker on one sequence."""
    d = out / "boxes" / safe_name(tracker)
    return d / f"{seq}.txt", d / f"{seq}.json"


def score_path(out: Path, tracker: str, seq: str) -> Path:
    """Per-frame ``score,lost`` of one tracker on one sequence (score ``nan`` on frame 0 and for trackers
    without a confidence): what the lost-flag and confidence metrics are computed from."""
    return box_paths(out, tracker, seq)[0].with_suffix(".score.txt")


def save_run(out: Path, tracker: str, seq: str, run: SequenceRun, identity: str = "") -> None:
    """Write the box and score files, then the record (written last and atomically: its presence means done)."""
    txt, rec = box_paths(out, tracker, seq)
    txt.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(txt, run.boxes, fmt=BOX_FORMAT, delimiter=",")
    np.savetxt(score_path(out, tracker, seq), np.column_stack([run.scores, run.lost]), fmt=("%.6f", "%d"),
               delimiter=",")
    record = {"frames": len(run.boxes), "init_time": run.init_time, "update_time": run.update_time,
              "decode_time": run.decode_time, "tracker_fps": run.tracker_fps, "end_to_end_fps": run.end_to_end_fps,
              "lost": run.lost_count, "error": run.error, "unreadable": run.unreadable, "identity": identity}
    tmp = rec.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(rec)


def is_done(out: Path, spec: TrackerSpec, seq: str) -> bool:
    """Results exist and were made by exactly this tracker (same weights, config, model files); a sequence
    that could not be read is tried again (its video may have been fixed)."""
    txt, rec = box_paths(out, spec.name, seq)
    if not (txt.is_file() and rec.is_file() and score_path(out, spec.name, seq).is_file()):
        return False
    try:
        record = json.loads(rec.read_text())
    except (OSError, ValueError):
        return False
    return record.get("identity") == spec.identity and not record.get("unreadable")


def _failed_run(seq: Sequence, error: str) -> SequenceRun:
    """A run that tracked nothing: the initial box, NaN after it, and why."""
    run = SequenceRun(np.full((len(seq), 4), np.nan), np.full(len(seq), np.nan), np.zeros(len(seq), bool), error=error)
    run.boxes[0] = seq.boxes[0]
    return run


def _bench_job(job: tuple[Sequence, list[TrackerSpec]]) -> dict[str, SequenceRun]:
    seq, specs = job
    trackers: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for spec in specs:
        try:
            trackers[spec.name] = spec.factory()  # type: ignore[misc]
        except Exception as exc:  # reported like any other failure
            failed[spec.name] = f"cannot build: {type(exc).__name__}: {exc}".splitlines()[0]
    runs = track_sequence(trackers, seq, on_frame=_tick)
    runs.update({name: _failed_run(seq, error) for name, error in failed.items()})
    return runs


def run_benchmark(specs: list[TrackerSpec], sequences: list[Sequence], out: Path, workers: int = 1,
                  resume: bool = False, progress: bool = True, ray: str | None = None) -> None:
    """Run every runnable tracker on every sequence, saving per-sequence box files under ``out/boxes``.

    With ``resume``, (tracker, sequence) pairs whose files exist and were made by the same
    tracker identity are skipped. ``ray``: each sequence is a Ray task (see :func:`evaluate`); one that
    fails after Ray's retries is saved with its reason and no identity, so ``resume`` runs it again.
    """
    runnable = [s for s in specs if s.factory is not None]
    jobs = []
    for seq in sequences:
        todo = [s for s in runnable if not (resume and is_done(out, s, seq.name))]
        if todo:
            jobs.append((absolute(seq) if ray is not None else seq, todo))
    if not jobs:
        return
    seq_bar = frame_bar = None
    if progress:
        from tqdm import tqdm
        seq_bar = tqdm(total=len(jobs), desc="sequences", unit="seq", position=0)
        frame_bar = tqdm(total=sum(len(j[0]) for j in jobs), desc="frames", unit="frame", position=1, leave=False)
    try:
        if ray is None:
            finished = zip(jobs, parallel_map(_bench_job, jobs, workers,
                                              frame_bar.update if frame_bar is not None else None))
        else:
            from .ray_engine import describe, ray_map
            finished = ray_map(_bench_job, jobs, ray, [source(seq) for seq, _ in jobs])
        for (seq, todo), runs in finished:
            if isinstance(runs, Exception):
                reason = describe(runs)
                for spec in todo:
                    save_run(out, spec.name, seq.name, _failed_run(seq, reason))
            else:
                for spec in todo:
                    save_run(out, spec.name, seq.name, runs[spec.name], spec.identity)
            if ray is not None and frame_bar is not None:
                frame_bar.update(len(seq))  # a task's frames count when it finishes
            if seq_bar is not None:
                seq_bar.update(1)
    finally:
        for bar in (frame_bar, seq_bar):
            if bar is not None:
                bar.close()
