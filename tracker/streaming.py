"""Streaming API: ``for result in track(frames, box): ...`` over any source of frames."""
from __future__ import annotations

import os
from typing import Any, Iterable, Iterator

import numpy as np

from .errors import VideoError
from .inputs import parse_box
from .io import open_source
from .tracking import SiamTracker, TrackResult


def frames_of(source: Any) -> Iterable[np.ndarray]:
    """Frames from anything with OpenCV's ``read() -> (ok, frame)`` (a ``cv2.VideoCapture`` you opened,
    left open), or from what :func:`tracker.io.open_source` takes: a list or generator of frames, a
    video path, a folder of images, a webcam index. Sources are opened here, so a bad one fails at once."""
    if callable(getattr(source, "read", None)) and not isinstance(source, (str, os.PathLike)):
        if callable(getattr(source, "isOpened", None)) and not source.isOpened():
            raise VideoError("the video capture passed in is not open; check its source")
        return _read(source)
    return open_source(source)


def _read(capture: Any) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def track(frames: Any, box: Any, **tracker_args: Any) -> Iterator[TrackResult]:
    """Track the object in ``box`` (x, y, w, h on the first frame); one TrackResult per frame.

    The first result is the initial box (score 1). ``tracker_args`` go to :class:`SiamTracker`
    (weights, device, backend, threads, config fields); the box is checked, the source opened and
    the model loaded here, before the first frame is read, so mistakes surface at the call.
    """
    box = parse_box(box)
    source = iter(frames_of(frames))
    return _results(SiamTracker(**tracker_args), source, box)


def _results(tracker: SiamTracker, frames: Iterator[np.ndarray], box: tuple[float, ...]) -> Iterator[TrackResult]:
    for i, frame in enumerate(frames):
        if i == 0:
            tracker.init(frame, box)
            yield TrackResult(tracker.box, 1.0, False)
        else:
            yield tracker.update(frame)
