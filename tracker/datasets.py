"""Benchmark dataset readers: our sequence layout, OTB and GOT-10k folders, all into one Sequence type.

Layouts (autodetected from a root folder, never downloaded):

- ``sequences``: ``<Name>/video.mp4`` + ``groundtruth.txt`` (x,y,w,h per frame, ``nan`` rows = absent);
  ``--split NAME`` picks names from ``tracker/splits.json`` (see tracker/splits.py), across folders when
  the split spans several (``validation`` = val + val2 below ``../shared/data``).
- ``otb``: ``<Seq>/img/0001.jpg`` + ``groundtruth_rect.txt`` (comma/space/tab separated), with the
  got10k toolkit's frame ranges for David, Football1, Freeman3, Freeman4 and Diving honoured.
- ``got10k``: ``<seq>/00000001.jpg`` + ``groundtruth.txt`` + optional ``absence.label`` (1 = absent),
  optionally below ``<root>/<split>/``.

A ground truth may have fewer rows than the sequence has frames: only the first box (the GOT-10k test
layout, or your own clip) is tracked without metrics; more rows but not all (``partial``) are refused
unless the caller allows them (see :func:`check_ground_truth`).
"""
from __future__ import annotations

import io
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from .errors import DatasetError, VideoError
from .splits import load_splits

LAYOUTS = ("sequences", "otb", "got10k")

# got10k.datasets.OTB special cases: (first, last) 1-based image indices the annotation covers.
OTB_FRAME_RANGES = {"david": (300, 770), "football1": (1, 74), "freeman3": (1, 460),
                    "freeman4": (1, 283), "diving": (1, 215)}


@dataclass(frozen=True)
class Sequence:
    """One sequence: ``boxes`` is (M, 4) float64 x,y,w,h (0-based) ground truth with NaN rows where absent,
    for the first M of its ``len()`` frames (``n_frames``; None = one frame per box).

    Frames come from ``video`` (a video file) or ``frame_files`` (images), decoded as HxWx3 uint8 BGR.
    ``truth_file`` is where the boxes were read from (named in errors).
    """

    name: str
    boxes: np.ndarray
    video: Path | None = None
    frame_files: tuple[Path, ...] = ()
    n_frames: int | None = None
    truth_file: Path | None = None

    def __len__(self) -> int:
        return len(self.boxes) if self.n_frames is None else self.n_frames

    @property
    def ground_truth(self) -> str:
        """'full' (a box for every frame), 'first-box' (only the initial box: nothing to score) or 'partial'."""
        if len(self.boxes) >= len(self):
            return "full"
        return "first-box" if len(self.boxes) == 1 else "partial"

    @property
    def init_box(self) -> tuple[float, float, float, float]:
        return tuple(float(v) for v in self.boxes[0])  # type: ignore[return-value]

    def frames(self) -> Iterator[np.ndarray]:
        """Yield exactly ``len(self)`` decoded frames; a short or unreadable source is a VideoError."""
        if self.video is not None:
            yield from _video_frames(self.video, len(self))
            return
        for path in self.frame_files:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise VideoError(f"cannot read image {path}; check the file is a valid image")
            yield frame


def _video_frames(path: Path, count: int) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"cannot open video {path}; check the file exists and is a readable video")
    try:
        for i in range(count):
            ok, frame = cap.read()
            if not ok:
                raise VideoError(f"{path} has only {i} decodable frames but its groundtruth has {count} rows; "
                                 "fix the video or the annotation")
            yield frame
    finally:
        cap.release()


def _video_frame_count(path: Path, boxes: int) -> int:
    """Frames of the video at ``path``, counted by decoding only when its header claims more than ``boxes``
    (a header count is an estimate); never less than ``boxes``, so a short video fails while decoding."""
    cap = cv2.VideoCapture(str(path))
    try:
        if cap.get(cv2.CAP_PROP_FRAME_COUNT) <= boxes:
            return boxes
        count = 0
        while cap.grab():
            count += 1
        return max(count, boxes)
    finally:
        cap.release()


def check_ground_truth(sequences: Iterable[Sequence], allow_partial: bool = False) -> None:
    """Refuse a partial ground truth (more than the first box, fewer than the frames) unless ``allow_partial``:
    scoring only the annotated frames must be asked for, never silently done."""
    if allow_partial:
        return
    for seq in sequences:
        if seq.ground_truth == "partial":
            where = seq.truth_file or "its ground truth"
            raise DatasetError(f"{seq.name}: {where} has {len(seq.boxes)} boxes but the sequence has {len(seq)} frames; "
                               "give a box for every frame (or only the first box: tracked, no metrics), or pass "
                               f"--allow-partial (Python: allow_partial=True) to score the first {len(seq.boxes)} frames")


def read_boxes(path: Path) -> np.ndarray:
    """Read x,y,w,h rows separated by commas, spaces or tabs; ``nan`` rows mark absent targets."""
    if not path.is_file():
        raise DatasetError(f"annotation file {path} not found; every sequence needs one")
    text = path.read_text().replace(",", " ").replace("\t", " ")
    try:
        boxes = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DatasetError(f"cannot parse {path} ({exc}); expected x,y,w,h numbers per line") from None
    if boxes.shape[1] != 4 or len(boxes) == 0:
        raise DatasetError(f"{path} has {boxes.shape[1]} columns; expected 4 (x,y,w,h) per line")
    return boxes


def write_sequence(folder: str | os.PathLike, frames: Iterable[np.ndarray], boxes: np.ndarray, fps: float = 30.0) -> Path:
    """Save frames and truth boxes as a benchmark sequence (``video.mp4`` + ``groundtruth.txt``, NaN = absent).

    The video is lossy (mp4v), so trackers see the decoded frames, as with any video dataset.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    writer = None
    count = 0
    try:
        for frame in frames:
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(folder / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            writer.write(frame)
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count != len(boxes):
        raise DatasetError(f"{count} frames but {len(boxes)} boxes for {folder.name}; give one box per frame")
    np.savetxt(folder / "groundtruth.txt", np.asarray(boxes, dtype=np.float64), fmt="%.2f", delimiter=",")
    return folder


def split_names(split: str) -> list[str]:
    """Sequence names of ``split`` (a split or group of tracker/splits.json), in file order."""
    return [n for block in load_splits().resolve(split) for n in block.names]


def _layout_of(root: Path) -> str | None:
    """The layout of ``root``'s first sequence folder, or None when it holds none."""
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if (d / "video.mp4").is_file() and (d / "groundtruth.txt").is_file():
            return "sequences"
        if (d / "img").is_dir() and any(d.glob("groundtruth*.txt")):
            return "otb"
        if (d / "groundtruth.txt").is_file() and any(d.glob("*.jpg")):
            return "got10k"
    return None


def detect_layout(root: Path) -> str:
    """Name the layout of ``root`` ('sequences', 'otb' or 'got10k') from its first sequence folder."""
    layout = _layout_of(root)
    if layout is None:
        raise DatasetError(f"{root} holds no sequence folders of a known layout "
                           "(<Name>/video.mp4+groundtruth.txt, OTB <Seq>/img/, or GOT-10k <seq>/*.jpg+groundtruth.txt)")
    return layout


def _read_sequence(d: Path) -> Sequence:
    truth, video = d / "groundtruth.txt", d / "video.mp4"
    boxes = read_boxes(truth)
    return Sequence(d.name, boxes, video=video, n_frames=_video_frame_count(video, len(boxes)), truth_file=truth)


def _read_otb(d: Path) -> Sequence:
    anno = sorted(p for p in d.glob("groundtruth*.txt") if p.read_text().strip())
    if not anno:
        raise DatasetError(f"{d} has no non-empty groundtruth_rect.txt")
    files = sorted((d / "img").glob("*.jpg"))
    first, last = OTB_FRAME_RANGES.get(d.name.lower(), (1, len(files)))
    files = files[first - 1:last]
    boxes = read_boxes(anno[0])
    if len(files) < len(boxes):
        raise DatasetError(f"{d.name}: {len(files)} images but {len(boxes)} boxes in {anno[0].name}; fix the folder")
    return Sequence(d.name, boxes, frame_files=tuple(files), n_frames=len(files), truth_file=anno[0])


def _read_got10k(d: Path) -> Sequence:
    truth = d / "groundtruth.txt"
    boxes = read_boxes(truth)
    absence = d / "absence.label"
    if absence.is_file():
        flags = np.loadtxt(absence, dtype=np.int64, ndmin=1)
        if len(flags) != len(boxes):
            raise DatasetError(f"{d.name}: absence.label has {len(flags)} rows but groundtruth.txt has {len(boxes)}")
        boxes = boxes.copy()
        boxes[flags.astype(bool)] = np.nan
    files = sorted(d.glob("*.jpg"))
    if len(files) < len(boxes):
        raise DatasetError(f"{d.name}: {len(files)} images but {len(boxes)} boxes; fix the folder")
    return Sequence(d.name, boxes, frame_files=tuple(files), n_frames=len(files), truth_file=truth)


READERS = {"sequences": _read_sequence, "otb": _read_otb, "got10k": _read_got10k}


def load_dataset(root: str | os.PathLike, split: str | None = None, names: list[str] | None = None,
                 layout: str | None = None) -> list[Sequence]:
    """Read every sequence under ``root`` (sorted by name; a folder of dataset folders, as ../shared/data, folder
    by folder), optionally restricted to ``split`` / ``names``.

    ``split`` selects names from tracker/splits.json for our layout (see :func:`_load_split`) and the
    ``<root>/<split>`` subfolder for GOT-10k. Nothing is ever downloaded: a missing folder is a DatasetError.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} not found; pass the path of a local dataset (nothing is downloaded)")
    if split is not None and (root / split).is_dir() and not (root / split / "video.mp4").exists():
        root, split = root / split, None
    if split is not None:
        return _load_split(root, split, names, layout)
    wanted = set(names) if names else None
    found = layout or _layout_of(root)  # detected once; _load_folder raises the layout error for an empty folder
    parts = [] if found else _dataset_folders(root)
    return _load_collection(root, parts, wanted, layout) if parts else _load_folder(root, wanted, found)


def _dataset_folders(root: Path) -> list[Path]:
    """The dataset folders inside ``root`` when it is a folder of datasets (as ../shared/data: sequences/,
    more_sequences/), sorted by name; empty when it is not."""
    return sorted((d for d in root.iterdir() if d.is_dir() and _layout_of(d) is not None), key=lambda d: d.name)


def _load_collection(root: Path, parts: list[Path], wanted: set[str] | None, layout: str | None) -> list[Sequence]:
    """Every dataset folder's sequences (restricted to ``wanted``), folder by folder; a name in two folders is
    refused, since a sequence is named by its folder's name alone."""
    found = {part: {d.name for d in part.iterdir() if d.is_dir()} for part in parts}
    twice = sorted({n for a, b in itertools.combinations(parts, 2) for n in found[a] & found[b]})
    if twice:
        raise DatasetError(f"sequence(s) {', '.join(twice[:5])} are in more than one folder of {root}; "
                           f"pass one of {', '.join(p.name for p in parts)}")
    if wanted is not None:
        missing = sorted(wanted - set().union(*found.values()))
        if missing:
            raise DatasetError(f"sequence(s) {', '.join(missing[:5])} not found in {root} "
                               f"(its dataset folders {', '.join(p.name for p in parts)})")
    seqs: list[Sequence] = []
    for part in parts:
        chosen = None if wanted is None else found[part] & wanted
        if chosen is None or chosen:
            seqs += _load_folder(part, chosen, layout)
    return seqs


def _load_split(root: Path, split: str, names: list[str] | None, layout: str | None) -> list[Sequence]:
    """The sequences of ``split`` (restricted to ``names``), block by block in file order, each block sorted.

    A block of folder F is read from ``root/F`` when ``root`` holds it (``root`` is the common parent),
    else from ``root`` itself; a split spanning several folders needs the parent.
    """
    blocks = load_splits().resolve(split)
    folders = list(dict.fromkeys(b.folder for b in blocks))
    seqs: list[Sequence] = []
    for block in blocks:
        where = root / block.folder
        if not where.is_dir():
            if len(folders) > 1:
                raise DatasetError(f"split {split!r} spans the folders {', '.join(folders)}; pass the folder that "
                                   f"holds them (e.g. ../shared/data), not {root}")
            where = root
        chosen = {n for n in block.names if not names or n in names}
        if chosen:
            seqs += _load_folder(where, chosen, layout)
    if not seqs:
        raise DatasetError(f"none of the sequences {', '.join(names or [])} is in split {split!r}")
    return seqs


def _load_folder(root: Path, wanted: set[str] | None, layout: str | None) -> list[Sequence]:
    layout = layout or detect_layout(root)
    if layout not in READERS:
        raise DatasetError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    dirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
    if wanted is not None:
        missing = sorted(wanted - {d.name for d in dirs})
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise DatasetError(f"sequence(s) {', '.join(missing[:5])}{more} not found in {root}")
        dirs = [d for d in dirs if d.name in wanted]
    probe = {"sequences": "video.mp4", "otb": "img", "got10k": "groundtruth.txt"}[layout]
    seqs = [READERS[layout](d) for d in dirs if (d / probe).exists()]
    if not seqs:
        raise DatasetError(f"no {layout} sequences found in {root}")
    return seqs
