"""Streaming API: ``for result in track(frames, box): ...`` over any source of frames."""
from __future__ import annotations

import os
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from .errors import VideoError
from .inputs import parse_box
from .tracking import SiamTracker, TrackResult

FrameSource = Iterable[np.ndarray] | cv2.VideoCapture | str | os.PathLike


def iter_frames(source: FrameSource) -> Iterator[np.ndarray]:
    """Frames from an iterable, anything with OpenCV's ``read() -> (ok, frame)``, or a video path.

    Not a generator itself, so an unopenable source fails here rather than at the first frame.
    """
    if isinstance(source, (str, os.PathLike)):
        capture = cv2.VideoCapture(os.fspath(source))
        if not capture.isOpened():
            raise VideoError(f"cannot open video {os.fspath(source)!r}; check the path and that it is a video file")
        return _read(capture, release=True)
    if callable(getattr(source, "read", None)):
        if callable(getattr(source, "isOpened", None)) and not source.isOpened():
            raise VideoError("the video capture passed in is not open; check its source")
        return _read(source, release=False)
    try:
        return iter(source)
    except TypeError:
        raise VideoError(f"frames must be an iterable of HxWx3 arrays, a cv2.VideoCapture or a video path; "
                         f"got {type(source).__name__}") from None


def _read(capture: Any, release: bool) -> Iterator[np.ndarray]:
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        if release:
            capture.release()


def track(frames: FrameSource, box: Any, **tracker_args: Any) -> Iterator[TrackResult]:
    """Track the object in ``box`` (x, y, w, h on the first frame); one TrackResult per frame.

    The first result is the initial box (score 1). ``tracker_args`` go to :class:`SiamTracker`
    (weights, device, backend, threads, config fields); the model loads and the box is checked
    here, before the first frame is read, so mistakes surface at the call.
    """
    box = parse_box(box)
    source = iter_frames(frames)
    return _results(SiamTracker(**tracker_args), source, box)


def _results(tracker: SiamTracker, frames: Iterator[np.ndarray], box: tuple[float, ...]) -> Iterator[TrackResult]:
    for i, frame in enumerate(frames):
        if i == 0:
            tracker.init(frame, box)
            yield TrackResult(tracker.box, 1.0, False)
        else:
            yield tracker.update(frame)
