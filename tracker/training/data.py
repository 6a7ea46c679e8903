"""Training data: which sequences may be trained on, still-image reader, a patch cache of pre-cropped
targets, and pair sampling (both families).

Decoding video for every sample is far too slow on a small CPU, so (as SiamFC does with its 511
crops) every usable frame is cropped ONCE around its target into a ``patch_size`` square at the
scale of a 255 search crop (1 patch px = 1 px of the network's search input) and stored in one
flat uint8 file. Pairs are then cut from the cache with a single warpAffine each (augment.py).
Cache size = patches x patch_size^2 x 3 bytes (default 319 px: 305 kB per patch, about 1.5 GB for
the ~5,000 patches of the development train split at frame_step 2).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from ..crops import crop, mean_colour
from ..datasets import Sequence, load_dataset
from ..errors import DatasetError
from ..splits import load_splits
from .augment import AugmentConfig, augment_pair
from .options import opt

VIDEO, IMAGE = "video", "image"
# a piece cut from sequence NAME (training.mining) is named NAME + PIECE_SEPARATOR + ...: it counts as NAME
PIECE_SEPARATOR = "~"


@dataclass(frozen=True)
class CacheConfig:
    """How patches are cut; part of the cache key, so changing any field rebuilds the cache."""

    patch_size: int = opt(319, "stored side; the 255 search crop plus +-32 px of shift room")
    frame_step: int = opt(2, "cache every k-th frame of a video")
    exemplar_size: int = opt(127, "exemplar crop side fed to the network, pixels")
    instance_size: int = opt(255, "search crop side fed to the network, pixels (patches are stored at this scale)")
    context: float = opt(0.5, "context margin around the box, as in the tracker (crop 'context')")
    crop: str = opt("context", "crop geometry: context (SiamFC's: search side sqrt((w+p)(h+p)) x instance/exemplar, "
                               "p = context (w+h), mean-colour border; the siamfc and box families) | area (LightFC's: "
                               "search side search_factor x sqrt(w h), zero border; the centre family)")
    search_factor: float = opt(4.0, "crop 'area': search side over sqrt(w h); the exemplar shows exemplar/instance "
                                    "of it (128/256: 2 x sqrt(w h), LightFC's template)")
    min_size: float = opt(4.0, "box filter: smallest side in frame pixels")
    max_aspect: float = opt(6.0, "box filter: largest long/short side ratio")
    max_area: float = opt(0.9, "box filter: largest fraction of the frame area")

    def __post_init__(self) -> None:
        if self.crop not in ("context", "area"):
            raise ValueError(f"crop must be 'context' or 'area', got {self.crop!r}")


def training_sequences(folder: str, split: str, extra_folders: Iterable[str] = (),
                       log: Callable[[str], None] | None = print) -> list[Sequence]:
    """``folder``'s sequences of ``split`` ('' = all) plus every sequence of ``extra_folders``, minus every
    validation sequence of tracker/splits.json by name, whatever folder holds it, and every piece of one
    (``NAME~...``, as training.mining names what it cuts from NAME): a validation score means something only
    on sequences never trained on. A validation ``split`` is refused."""
    splits = load_splits()
    if split and splits.is_validation(split):
        allowed = [s for s in splits.names if not splits.is_validation(s)]
        raise DatasetError(f"--split {split} holds validation sequences, which are never trained on; choose "
                           f"{', '.join(allowed)} or ''")
    seqs = load_dataset(folder, split=split or None) if folder else []
    seqs += [s for extra in extra_folders if extra for s in load_dataset(extra)]
    kept = [s for s in seqs if s.name.split(PIECE_SEPARATOR)[0] not in splits.validation_names]
    if log is not None and seqs:
        log(f"training data: {len(seqs) - len(kept)} validation sequence(s) of tracker/splits.json left out, "
            f"{len(kept)} sequence(s) kept")
    return kept


def read_image_boxes(root: str | os.PathLike) -> list[tuple[Path, tuple[float, float, float, float]]]:
    """Read ``root/boxes.csv`` (header ``file,x,y,w,h``; x,y 0-based top-left) of a still-image set."""
    root = Path(root)
    table = root / "boxes.csv"
    if not table.is_file():
        raise DatasetError(f"{table} not found; a still-image set needs boxes.csv with columns file,x,y,w,h")
    out = []
    with table.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"file", "x", "y", "w", "h"} <= set(reader.fieldnames):
            raise DatasetError(f"{table}: header must be file,x,y,w,h (found {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            try:
                box = tuple(float(row[k]) for k in "xywh")
            except (TypeError, ValueError):
                raise DatasetError(f"{table} line {line}: x,y,w,h must be numbers") from None
            out.append((root / row["file"], box))
    if not out:
        raise DatasetError(f"{table} lists no images")
    return out


def box_ok(box: np.ndarray, frame_shape: tuple[int, ...], cfg: CacheConfig) -> bool:
    """SiamFC-style sanity filter: drop absent, tiny, extremely thin or frame-filling boxes."""
    if not np.all(np.isfinite(box)):
        return False
    w, h = float(box[2]), float(box[3])
    if min(w, h) < cfg.min_size or max(w / h, h / w) > cfg.max_aspect:
        return False
    return w * h <= cfg.max_area * frame_shape[0] * frame_shape[1]


def search_side(w: float, h: float, cfg: CacheConfig) -> float:
    """Side in frame pixels of the search crop for a w x h target (the tracker's geometry)."""
    if cfg.crop == "area":
        return cfg.search_factor * math.sqrt(w * h)
    ctx = cfg.context * (w + h)
    return math.sqrt((w + ctx) * (h + ctx)) * cfg.instance_size / cfg.exemplar_size


def cut_patch(frame: np.ndarray, box: np.ndarray, cfg: CacheConfig) -> tuple[np.ndarray, tuple[float, float]]:
    """Crop the patch around ``box``; returns it and the target's (w, h) in patch pixels."""
    x, y, w, h = (float(v) for v in box)
    side = search_side(w, h, cfg)
    px_scale = cfg.instance_size / side
    border = mean_colour(frame) if cfg.crop == "context" else (0.0, 0.0, 0.0)
    patch = crop(frame, x + (w - 1) / 2, y + (h - 1) / 2, side * cfg.patch_size / cfg.instance_size,
                 cfg.patch_size, border)
    return patch, (w * px_scale, h * px_scale)


@dataclass(frozen=True)
class Source:
    """A run of cache entries from one sequence (or one still image): entries first..first+count-1."""

    name: str
    kind: str
    first: int
    count: int


class PatchCache:
    """Read side of the cache: ``patches`` (N, P, P, 3) uint8 BGR memmap + per-entry frame and size."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        info = json.loads((self.folder / "info.json").read_text())
        self.config = CacheConfig(**info["config"])
        self.sources = [Source(**s) for s in info["sources"]]
        index = np.load(self.folder / "index.npz")
        self.frame, self.size = index["frame"], index["size"]
        p = self.config.patch_size
        self.patches = np.memmap(self.folder / "patches.u8", np.uint8, "r", shape=(len(self.frame), p, p, 3))
        self.key = info["key"]

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def nbytes(self) -> int:
        return int(self.patches.size)


def cache_key(sequences: list[Sequence], images: list[tuple[Path, tuple]], cfg: CacheConfig) -> str:
    """Changes when the config, the source list or any annotation changes."""
    h = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    for s in sequences:
        h.update(s.name.encode())
        h.update(np.ascontiguousarray(s.boxes, np.float64).tobytes())
    for path, box in images:
        h.update(f"{path.name}{box}".encode())
    return h.hexdigest()[:16]


def _video_entries(seq: Sequence, cfg: CacheConfig) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    for i, (box, frame) in enumerate(zip(seq.boxes, seq.frames())):  # frames past the ground truth teach nothing
        if i % cfg.frame_step == 0 and box_ok(box, frame.shape, cfg):
            yield i, frame, box


def _image_entries(path: Path, box: tuple) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise DatasetError(f"cannot read image {path}; check boxes.csv lists existing image files")
    yield 0, frame, np.asarray(box, np.float64)


def build_cache(folder: str | os.PathLike, sequences: list[Sequence],
                images: list[tuple[Path, tuple]] = (), cfg: CacheConfig = CacheConfig(),
                progress: bool = True) -> PatchCache:
    """Cut every usable frame once (reused when ``folder`` already holds a cache with the same key)."""
    folder = Path(folder)
    images = list(images)
    key = cache_key(sequences, images, cfg)
    info_path = folder / "info.json"
    if info_path.is_file() and json.loads(info_path.read_text()).get("key") == key:
        return PatchCache(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info_path.unlink(missing_ok=True)  # a half-built cache must never look complete
    jobs: list[tuple[str, str, Iterable]] = [(s.name, VIDEO, _video_entries(s, cfg)) for s in sequences]
    jobs += [(p.stem, IMAGE, _image_entries(p, b)) for p, b in images]
    total = sum(len(s.boxes) for s in sequences) // cfg.frame_step + len(images)
    from tqdm import tqdm
    bar = tqdm(total=total, desc="caching patches", unit="patch", disable=not progress)
    frames, sizes, sources = [], [], []
    with open(folder / "patches.u8", "wb") as out:
        for name, kind, entries in jobs:
            first = len(frames)
            for i, frame, box in entries:
                patch, size = cut_patch(frame, box, cfg)
                out.write(patch.tobytes())
                frames.append(i)
                sizes.append(size)
                bar.update(1)
            if len(frames) > first:
                sources.append(Source(name, kind, first, len(frames) - first))
    bar.close()
    if not frames:
        raise DatasetError("no usable training frames: every box is absent or fails the size/aspect filters")
    np.savez(folder / "index.npz", frame=np.asarray(frames, np.int32), size=np.asarray(sizes, np.float32))
    info = {"key": key, "config": asdict(cfg), "sources": [asdict(s) for s in sources],
            "bytes": len(frames) * cfg.patch_size ** 2 * 3}
    tmp = info_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, info_path)
    return PatchCache(folder)


@dataclass(frozen=True)
class PairConfig:
    """Pair sampling (either family): positives at most ``max_gap`` frames apart, a share of negatives."""

    max_gap: int = opt(100, "largest frame distance between exemplar and search (T)")
    neg_ratio: float = opt(0.2, "share of pairs whose search crop shows another object")
    image_ratio: float = opt(0.2, "share of exemplars drawn from still images (when any are cached)")


class PairDataset:
    """Deterministic pairs: sample ``(epoch, i)`` always gives the same crops (exact resume, DDP).

    Each item is (exemplar uint8 BGR 127x127x3, search uint8 BGR 255x255x3, the search crop's target
    box (cx, cy, w, h) in pixels from the crop centre, is_positive). A negative's box is that of the
    other object it shows.
    """

    def __init__(self, cache: PatchCache, pairs: PairConfig = PairConfig(),
                 augment: AugmentConfig = AugmentConfig(), seed: int = 0, length: int = 10000) -> None:
        self.cache, self.pairs, self.augment = cache, pairs, augment
        self.seed, self.length, self.epoch = seed, length, 0
        self.videos = [s for s in cache.sources if s.kind == VIDEO]
        self.images = [s for s in cache.sources if s.kind == IMAGE]
        w = np.sqrt([s.count for s in self.videos]) if self.videos else np.zeros(0)
        self.video_p = w / w.sum() if len(w) else w
        if not self.videos and not self.images:
            raise DatasetError("the patch cache is empty")

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _source(self, rng: np.random.Generator, exclude: Source | None = None) -> Source:
        for _ in range(100):
            use_image = self.images and (not self.videos or rng.random() < self.pairs.image_ratio)
            src = self.images[rng.integers(len(self.images))] if use_image else \
                self.videos[rng.choice(len(self.videos), p=self.video_p)]
            if src != exclude:
                return src
        raise DatasetError("negative pairs need at least two cached sequences or images")

    def _partner(self, rng: np.random.Generator, src: Source, entry: int) -> int:
        frames = self.cache.frame[src.first:src.first + src.count]
        near = np.flatnonzero(np.abs(frames - frames[entry - src.first]) <= self.pairs.max_gap)
        return src.first + int(near[rng.integers(len(near))])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        src = self._source(rng)
        z = src.first + int(rng.integers(src.count))
        positive = not (rng.random() < self.pairs.neg_ratio and len(self.cache.sources) > 1)
        if positive:
            x = self._partner(rng, src, z)
        else:
            other = self._source(rng, exclude=src)
            x = other.first + int(rng.integers(other.count))
        patches = self.cache.patches
        still = src.kind == IMAGE and x == z
        sizes = (self.cache.config.exemplar_size, self.cache.config.instance_size)
        ez, sx, box = augment_pair(patches[z], patches[x], self.cache.size[x], rng, self.augment, sizes, still=still)
        return ez, sx, box, positive


def collate(items: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]):
    """Stack items into uint8 NHWC arrays + boxes (N, 4) + positive flags (N,)."""
    z = np.stack([it[0] for it in items])
    x = np.stack([it[1] for it in items])
    boxes = np.stack([it[2] for it in items]).astype(np.float32)
    pos = np.asarray([it[3] for it in items], bool)
    return z, x, boxes, pos
