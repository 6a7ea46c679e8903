"""The loop behind `siamtrack track` and `siamtrack demo`: source -> SiamTracker -> writers.

Cheap checks (box syntax, display, output paths, the source) come before the model loads, so a
mistake costs no time. However the run ends (last frame, Ctrl-C, SIGTERM, a bad frame) the CSV
and the video are closed and hold every frame tracked so far.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from .datasets import read_boxes
from .errors import BoxError, OutputError, SiamTrackError, VideoError
from .evaluation.metrics import iou
from .inputs import as_bgr, check_box, parse_box
from .io import VIDEO_FOURCC, CsvWriter, FrameSource, IterableSource, VideoWriter, annotate, check_output, open_source
from .synthetic import demo_clip
from .tracking import SiamTracker, TrackResult

Box = tuple[float, float, float, float]
ResultHook = Callable[[int, TrackResult], None]
WINDOW = "siamtrack"


@dataclass
class TrackOptions:
    """What `siamtrack track` was asked to do (mirrors its command-line options)."""

    input: str | int | Iterable[np.ndarray]
    box: object | None = None
    select: bool = False
    output: str | os.PathLike | None = None
    boxes: str | os.PathLike | None = None
    show: bool = False
    overwrite: bool = False
    max_frames: int | None = None
    weights: str | os.PathLike | None = None
    device: str = "auto"
    backend: str = "auto"
    threads: int | None = None
    progress: bool = True


@dataclass
class TrackSummary:
    frames: int = 0
    lost: int = 0
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        wrote = f"; wrote {', '.join(map(str, self.outputs))}" if self.outputs else ""
        return (f"tracked {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} frames/s), "
                f"target lost in {self.lost}{wrote}")


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show warnings (e.g. a clipped box) as one 'siamtrack: warning: ...' line, not Python's file:line form."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
        print(f"siamtrack: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def has_display() -> bool:
    """Whether windows can open: on Linux/BSD that needs an X11 or Wayland display."""
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _require_display(option: str, alternative: str) -> None:
    if not has_display():
        raise SiamTrackError(f"{option} needs a display but none was found ($DISPLAY is not set); {alternative}")


def select_box(frame: np.ndarray) -> Box:
    """Let the user drag a box on ``frame`` (cv2.selectROI); ENTER/SPACE confirms, c cancels."""
    try:
        x, y, w, h = cv2.selectROI(f"{WINDOW}: drag a box around the target, then press ENTER", frame, True, False)
        cv2.destroyAllWindows()
    except cv2.error:
        raise SiamTrackError("--select cannot open a window (OpenCV has no GUI support here); "
                             "pass --box x,y,w,h instead") from None
    if w <= 0 or h <= 0:
        raise BoxError("no box was selected (selection cancelled); drag a box and press ENTER, or pass --box x,y,w,h")
    return float(x), float(y), float(w), float(h)


class Outputs:
    """The CSV and annotated-video writers of one run; ``close`` is safe to call at any point."""

    def __init__(self, video: Path | None, csv: Path | None, fps: float) -> None:
        self.paths = [p for p in (video, csv) if p is not None]
        self.csv = CsvWriter(csv) if csv is not None else None
        self.video = VideoWriter(video, fps) if video is not None else None

    def write(self, index: int, frame: np.ndarray, result: TrackResult, fps: float | None) -> np.ndarray | None:
        if self.csv is not None:
            self.csv.write(index, result)
        if self.video is None:
            return None
        drawn = annotate(frame.copy(), result, fps)
        self.video.write(drawn)
        return drawn

    def close(self) -> None:
        """Close both writers, even when the first fails; then raise its error."""
        errors = []
        for writer in (self.csv, self.video):
            if writer is not None:
                try:
                    writer.close()
                except OutputError as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]


def check_outputs(output: str | os.PathLike | None, boxes: str | os.PathLike | None, overwrite: bool,
                  source: object = None) -> tuple[Path | None, Path | None]:
    """Validate both output paths up front; they must differ from each other and from the input."""
    video = check_output(output, overwrite, tuple(VIDEO_FOURCC)) if output is not None else None
    csv = check_output(boxes, overwrite) if boxes is not None else None
    given = [p.resolve() for p in (video, csv) if p is not None]
    if len(given) == 2 and given[0] == given[1]:
        raise OutputError(f"--output and --boxes are the same file {video}; give two different names")
    if isinstance(source, (str, os.PathLike)) and Path(source).resolve() in given:
        raise OutputError(f"output {source} is the input video; choose another output name")
    return video, csv


class _StopRequests:
    """Ctrl-C / SIGTERM during the loop ask it to stop after the current frame, so the CSV and the
    video always end on the same frame; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_StopRequests":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def first_frame(source: FrameSource, box: object | None, max_frames: int | None = None
                ) -> tuple[Iterator[np.ndarray], Box]:
    """Read the first frame and settle the box on it (checked, or selected when None) before any
    model loads, so an empty source or a box off the frame costs nothing. Returns all frames again."""
    frames = islice(source, max_frames)
    first = next(frames, None)
    if first is None:
        raise VideoError(f"{source.name} holds no frames; give a video, image folder or webcam with frames")
    box = select_box(first) if box is None else check_box(box, as_bgr(first).shape)
    return chain([first], frames), box


def run_track(frames: Iterable[np.ndarray], tracker: SiamTracker, box: Box, outputs: Outputs, show: bool = False,
              total: int | None = None, label: str = "", progress: bool = True,
              on_result: ResultHook | None = None) -> TrackSummary:
    """Track from ``box`` on the first frame on; every result goes to the writers (and ``on_result``)
    as soon as it exists. ``total`` and ``label`` are for the progress bar."""
    summary = TrackSummary(outputs=outputs.paths)
    bar = tqdm(total=total, unit="frame", desc=label, disable=None if progress else True, dynamic_ncols=True,
               leave=False)
    fps: float | None = None
    start = time.perf_counter()
    try:
        with _StopRequests() as stop:
            for index, frame in enumerate(frames):
                tick = time.perf_counter()
                if index == 0:
                    tracker.init(frame, box)
                    result = TrackResult(tracker.box, 1.0, False)
                else:
                    result = tracker.update(frame)
                    took = time.perf_counter() - tick
                    fps = 1.0 / took if fps is None else 0.9 * fps + 0.1 / max(took, 1e-9)
                summary.frames += 1
                summary.lost += result.lost
                if on_result is not None:
                    on_result(index, result)
                drawn = outputs.write(index, frame, result, fps)
                bar.update()
                if show and _shown_and_quit(frame if drawn is None else drawn, result, fps, drawn is None):
                    break
                if stop.requested:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        kept = f"; {', '.join(map(str, outputs.paths))} hold them" if outputs.paths else ""
        print(f"siamtrack: interrupted after {summary.frames} frames{kept}", file=sys.stderr)
        raise
    finally:
        summary.seconds = time.perf_counter() - start
        bar.close()
        outputs.close()
        if show:
            cv2.destroyAllWindows()
    return summary


def _shown_and_quit(frame: np.ndarray, result: TrackResult, fps: float | None, draw: bool) -> bool:
    """Show the frame; True when the user pressed q or Esc."""
    cv2.imshow(WINDOW, annotate(frame.copy(), result, fps) if draw else frame)
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)


def _total(source: FrameSource, max_frames: int | None) -> int | None:
    known = [n for n in (source.count, max_frames) if n]
    return min(known) if known else None


def track(options: TrackOptions, on_result: ResultHook | None = None) -> TrackSummary:
    """Everything `siamtrack track` does, checking what is cheap to check before loading anything."""
    if (options.box is None) == (not options.select):
        raise BoxError("give the target box with --box x,y,w,h or pick it with --select (one of the two)")
    box = parse_box(options.box) if options.box is not None else None
    if options.select:
        _require_display("--select", "pass --box x,y,w,h instead")
    if options.show:
        _require_display("--show", "drop --show and write --output video.mp4 instead")
    if options.max_frames is not None and options.max_frames < 1:
        raise SiamTrackError(f"--max-frames must be at least 1, got {options.max_frames}")
    video, csv = check_outputs(options.output, options.boxes, options.overwrite, options.input)
    with open_source(options.input) as source:
        frames, box = first_frame(source, box, options.max_frames)
        tracker = SiamTracker(options.weights, options.device, options.backend, options.threads)
        return run_track(frames, tracker, box, Outputs(video, csv, source.fps), options.show,
                         _total(source, options.max_frames), Path(source.name).name, options.progress, on_result)


@dataclass
class DemoOptions:
    """What `siamtrack demo` was asked to do: no input = the generated clip."""

    input: str | os.PathLike | None = None
    output: str | os.PathLike = "demo.mp4"
    overwrite: bool = False
    weights: str | os.PathLike | None = None
    device: str = "auto"
    seed: int = 0
    frames: int = 150
    show: bool = False
    progress: bool = True


def _demo_source(options: DemoOptions) -> tuple[FrameSource, np.ndarray]:
    """Frames and truth boxes: the generated clip, or a sequence folder (groundtruth.txt + video.mp4 or img/)."""
    if options.input is None:
        clip = demo_clip(options.seed, options.frames)
        return IterableSource(clip, f"generated clip (seed {options.seed})"), clip.boxes
    folder = Path(options.input)
    if not (folder / "groundtruth.txt").is_file():
        raise VideoError(f"demo input {folder} must be a sequence folder with groundtruth.txt and video.mp4 (or img/); "
                         "for other videos use: siamtrack track VIDEO --box x,y,w,h")
    truth = read_boxes(folder / "groundtruth.txt")
    frames = folder / "video.mp4" if (folder / "video.mp4").is_file() else folder / "img"
    return open_source(frames), truth


def demo(options: DemoOptions) -> tuple[TrackSummary, float]:
    """Track the demo clip (or a sequence folder) into an annotated video; returns the mean IoU vs truth
    over frames after the first where the target is visible."""
    video, _ = check_outputs(options.output, None, options.overwrite, options.input)
    if options.show:
        _require_display("--show", "drop --show and watch the written video instead")
    source, truth = _demo_source(options)
    with source:
        if np.isnan(truth[0]).any():
            raise BoxError(f"{source.name}: the first groundtruth row is not a box; the demo starts from it")
        frames, box = first_frame(source, truth[0], len(truth))
        tracker = SiamTracker(options.weights, options.device)
        boxes = np.full_like(truth, np.nan)

        def keep(index: int, result: TrackResult) -> None:
            boxes[index] = result.box

        summary = run_track(frames, tracker, box, Outputs(video, None, source.fps), options.show,
                            _total(source, len(truth)), source.name, options.progress, keep)
    scored = ~np.isnan(truth).any(axis=1)
    scored[0] = False
    scored[summary.frames:] = False
    mean_iou = float(np.mean(iou(boxes[scored], truth[scored]))) if scored.any() else float("nan")
    return summary, mean_iou
