"""Frame sources (video file, image folder, webcam, any iterable) and incremental result writers.

Sources fail with a one-line VideoError that names the file and the fix; a decode failure
mid-stream is raised after the frames before it were delivered, so callers keep those. Writers
flush every frame, so an interrupted run leaves a complete CSV so far, and are closed (the mp4
index written) however the run ends. Output paths are checked before any work starts.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, TextIO

import cv2
import numpy as np

from .errors import OutputError, VideoError
from .tracking import TrackResult

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}
DEFAULT_FPS = 30.0
CSV_HEADER = "frame,x,y,w,h,score,lost"


# FFmpeg's decoder chatter ("moov atom not found", ...) would bury our one-line errors. OpenCV reads
# this once, when it first uses FFmpeg, so it is set at import; a value the user set is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings (e.g. a missing camera) while opening or reading: our error says it."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


class FrameSource:
    """Iterable of HxWx3 uint8 BGR frames with a display ``name``, ``fps`` and ``count`` (None = unknown)."""

    name: str = "frames"
    fps: float = DEFAULT_FPS
    count: int | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; iterating to the end closes too."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _CaptureSource(FrameSource):
    """A cv2.VideoCapture (file or webcam): opened here, so a bad source fails before any work."""

    def __init__(self, target: str | int, name: str, what: str) -> None:
        self.name, self._what = name, what
        with _quiet_opencv():
            self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise VideoError(f"cannot open {what}")
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.count = count if count > 0 and isinstance(target, str) else None

    def __iter__(self) -> Iterator[np.ndarray]:
        i = 0
        try:
            while self.count is None or i < self.count:
                with _quiet_opencv():
                    ok, frame = self._capture.read()
                if not ok:
                    break
                yield frame
                i += 1
        finally:
            self.close()
        self._ended(i)

    def _ended(self, delivered: int) -> None:
        """Called when reading stops after ``delivered`` frames: raise if that is short."""
        if delivered == 0:
            raise VideoError(f"{self.name} contains no decodable frames (empty or corrupt); check the file")
        if self.count is not None and delivered < self.count:
            raise VideoError(f"{self.name}: frame {delivered} of {self.count} could not be decoded (file truncated "
                             f"or corrupt); frames 0-{delivered - 1} were processed, frames {delivered}-{self.count - 1} "
                             "are missing")

    def close(self) -> None:
        self._capture.release()


class VideoFileSource(_CaptureSource):
    def __init__(self, path: Path) -> None:
        super().__init__(str(path), str(path), f"video {path}: not a video OpenCV/FFmpeg can decode (corrupt, "
                         "truncated or unsupported); re-encode it as mp4 or give a folder of images")


class WebcamSource(_CaptureSource):
    """A camera never ends on its own: running out of frames means it failed."""

    def __init__(self, index: int) -> None:
        super().__init__(index, f"webcam {index}", f"webcam {index}; check the index (0 is the first camera), "
                         "that it is connected and not in use by another program")

    def _ended(self, delivered: int) -> None:
        if delivered == 0:
            raise VideoError(f"{self.name} opened but delivered no frames; check the camera")
        raise VideoError(f"{self.name} stopped delivering frames after frame {delivered - 1} (disconnected?); "
                         f"frames 0-{delivered - 1} were processed")


def _natural_key(path: Path) -> list[object]:
    """'img2' sorts before 'img10', as frame numbers are meant."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class FolderSource(FrameSource):
    """Images of a folder in natural name order; all must decode and share the first one's size."""

    def __init__(self, folder: Path) -> None:
        self.name = str(folder)
        self.files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                            key=_natural_key)
        if not self.files:
            raise VideoError(f"folder {folder} contains no images ({', '.join(IMAGE_SUFFIXES)}); "
                             "give a folder of frames or a video file")
        self.count = len(self.files)

    def __iter__(self) -> Iterator[np.ndarray]:
        shape = None
        for i, path in enumerate(self.files):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            done = f"frames 0-{i - 1} were processed" if i else "no frame was processed"
            if frame is None:
                raise VideoError(f"image {path} (frame {i} of {self.count}) could not be decoded; {done}; "
                                 "fix or remove the file")
            if shape is not None and frame.shape != shape:
                raise VideoError(f"image {path} is {frame.shape[1]}x{frame.shape[0]} but the first image is "
                                 f"{shape[1]}x{shape[0]}; {done}; all frames of a folder must have one size")
            shape = frame.shape
            yield frame


class IterableSource(FrameSource):
    """Any iterable of frames (a list, a generator, a SyntheticClip); frames are validated by the tracker."""

    def __init__(self, frames: Iterable[np.ndarray], name: str = "frames", fps: float = DEFAULT_FPS) -> None:
        self._frames, self.name, self.fps = frames, name, fps
        self.count = len(frames) if hasattr(frames, "__len__") else None  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self._frames)


def open_source(spec: str | int | os.PathLike | Iterable[np.ndarray]) -> FrameSource:
    """A video path, an image folder, a webcam index (int or digits), or an iterable of frames."""
    if isinstance(spec, FrameSource):
        return spec
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return WebcamSource(int(spec))
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if path.is_dir():
            return FolderSource(path)
        if path.is_file():
            return VideoFileSource(path)
        raise VideoError(f"input {path} does not exist; give a video file, a folder of images or a webcam index")
    try:
        iter(spec)
    except TypeError:
        raise VideoError(f"input must be a path, a webcam index or an iterable of frames; got {type(spec).__name__}") from None
    return IterableSource(spec)


def check_output(path: str | os.PathLike, overwrite: bool, suffixes: tuple[str, ...] = ()) -> Path:
    """Refuse an output we could not or should not write, before any work is done.

    Writability is probed by creating (then removing) the file: permission bits say nothing to root
    or on read-only mounts.
    """
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(f"output {path} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise OutputError(f"output {path} is a folder; give a file name inside it")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist; create it first")
    existed = path.exists()
    if existed and not overwrite:
        raise OutputError(f"{path} already exists; pass --overwrite to replace it")
    try:
        with open(path, "ab" if existed else "xb"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose another location") from None
    if not existed:
        path.unlink()
    return path


def check_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create the output folder ``path`` and probe that a file can be written in it, before any work."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write into {option} {path} ({exc.strerror or exc}); choose a writable folder") from None
    return path


class CsvWriter:
    """``frame,x,y,w,h,score,lost`` rows, flushed one by one so a crash loses nothing written. A failed write
    (disk full, a vanished folder) is an OutputError saying how many rows the file keeps."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.rows = 0
        self._failed = False
        self._file: TextIO = open(self.path, "w", newline="", encoding="utf-8")
        self._put(CSV_HEADER + "\n")

    def _put(self, line: str) -> None:
        try:
            self._file.write(line)
            self._file.flush()
        except OSError as exc:
            self._failed = True
            kept = f"the rows of frames 0-{self.rows - 1} are kept" if self.rows else "no row was written"
            raise OutputError(f"cannot write {self.path} ({exc.strerror or exc}); {kept}; free space or choose "
                              "another location") from None

    def write(self, index: int, result: TrackResult) -> None:
        x, y, w, h = result.box
        self._put(f"{index},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{result.score:.4f},{int(result.lost)}\n")
        self.rows += 1

    def close(self) -> None:
        """Close the file; after a failed write the unwritten rest is dropped (that error was already raised)."""
        try:
            self._file.close()
        except OSError:
            if not self._failed:
                raise


def annotate(frame: np.ndarray, result: TrackResult, fps: float | None) -> np.ndarray:
    """Draw the box (green, red when lost), its score and the tracking speed onto ``frame`` in place."""
    x, y, w, h = (int(round(v)) for v in result.box)
    colour = (0, 0, 255) if result.lost else (0, 220, 0)
    cv2.rectangle(frame, (x, y), (x + w - 1, y + h - 1), colour, 2)
    label = f"{'LOST ' if result.lost else ''}{result.score:.2f}"
    cv2.putText(frame, label, (x, max(y - 5, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    if fps is not None:
        cv2.putText(frame, f"{fps:.1f} fps", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


class VideoWriter:
    """Annotated video; opened on the first frame (its size), released on close so the file plays."""

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path, self.fps = Path(path), fps
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
            with _quiet_opencv():
                self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (frame.shape[1], frame.shape[0]))
            if not self._writer.isOpened():
                raise OutputError(f"cannot write video {self.path}: OpenCV has no encoder for it; try an .avi output")
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        """Release the file; OpenCV reports no write error, so a video left empty after frames is one."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            if self.frames and (not self.path.is_file() or self.path.stat().st_size == 0):
                raise OutputError(f"cannot write video {self.path}: it is empty after {self.frames} frames (disk full "
                                  "or the folder vanished?); free space or choose another location")
