"""Generated clips with known truth: the demo needs no data, the tests need exact lost/return frames.

A textured elliptical object moves along key poses (centre, scale, angle) over a cluttered textured
background; an optional occluder slides over it. Frames are rendered on demand from the seed, so a
clip of any length costs no memory and the same seed always gives the same pixels. The truth box is
the object's extent inside the frame, NaN while nothing of it is visible (out of frame or covered).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class Pose:
    """Object centre (px), scale (x its texture size) and rotation (degrees, counter-clockwise)."""

    cx: float
    cy: float
    scale: float = 1.0
    angle: float = 0.0


@dataclass(frozen=True)
class Key:
    """The object is at ``pose`` on frame ``t``; poses between keys are interpolated."""

    t: int
    pose: Pose


@dataclass(frozen=True)
class Cover:
    """An opaque textured rectangle (x0, y0, x1, y1) that fully covers its area on frames [start, stop)
    and slides in from the left / out to the right over ``slide`` frames on either side."""

    rect: tuple[int, int, int, int]
    start: int
    stop: int
    slide: int = 3

    def span(self, t: int) -> tuple[int, int] | None:
        """Columns [a, b) of the rectangle drawn on frame ``t``, or None when it is not in view."""
        x0, _, x1, _ = self.rect
        if self.start <= t < self.stop:
            return x0, x1
        width = x1 - x0
        if self.start - self.slide <= t < self.start:
            return x0, x1 - width * (self.start - t) // (self.slide + 1)
        if self.stop <= t < self.stop + self.slide:
            return x0 + width * (t - self.stop + 1) // (self.slide + 1), x1
        return None


class SyntheticClip:
    """A deterministic clip; iterate it for BGR frames, ``truth(t)`` / ``boxes`` for the known boxes."""

    def __init__(self, width: int, height: int, keys: Sequence[Key], seed: int = 0, object_size: int = 48,
                 covers: Sequence[Cover] = (), n_frames: int | None = None, period: int | None = None,
                 smooth: bool = True) -> None:
        if len(keys) < 1 or keys[0].t != 0 or any(b.t < a.t for a, b in zip(keys, keys[1:])):
            raise ValueError("keys must start at t=0 and be in time order")
        self.width, self.height = width, height
        self.keys = list(keys)
        self.covers = list(covers)
        self.period = period
        self.smooth = smooth
        self.n_frames = n_frames if n_frames is not None else self.keys[-1].t + 1
        rng = np.random.default_rng(seed)
        self.background = _clutter(rng, width, height)
        self.texture, self.mask = _object(rng, object_size)
        self.cover_texture = _clutter(rng, width, height, shapes=0)

    def __len__(self) -> int:
        return self.n_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        for t in range(self.n_frames):
            yield self.render(t)[0]

    def pose(self, t: int) -> Pose:
        """Interpolated pose on frame ``t`` (cosine easing when ``smooth``, else constant speed)."""
        if self.period:
            t %= self.period
        keys = self.keys
        if t >= keys[-1].t:
            return keys[-1].pose
        i = next(k for k in range(1, len(keys)) if keys[k].t > t)
        a, b = keys[i - 1], keys[i]
        u = (t - a.t) / (b.t - a.t)
        if self.smooth:
            u = (1 - math.cos(math.pi * u)) / 2
        pa, pb = a.pose, b.pose
        return Pose(*(va + u * (vb - va) for va, vb in
                      zip((pa.cx, pa.cy, pa.scale, pa.angle), (pb.cx, pb.cy, pb.scale, pb.angle))))

    def render(self, t: int) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
        """Frame ``t`` (HxWx3 uint8 BGR) and its truth box (x, y, w, h), None when the object is unseen."""
        pose = self.pose(t)
        size = self.texture.shape[0]
        m = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), pose.angle, pose.scale)
        m[:, 2] += (pose.cx - (size - 1) / 2, pose.cy - (size - 1) / 2)
        dsize = (self.width, self.height)
        obj = cv2.warpAffine(self.texture, m, dsize, flags=cv2.INTER_LINEAR, borderValue=0)
        alpha = cv2.warpAffine(self.mask, m, dsize, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        frame = (self.background * (1 - alpha) + obj * alpha + 0.5).astype(np.uint8)
        inside = alpha[..., 0] >= 0.5
        seen = inside.copy()
        for cover in self.covers:
            span = cover.span(t)
            if span is not None:
                (a, b), (_, y0, _, y1) = span, cover.rect
                frame[y0:y1, a:b] = self.cover_texture[y0:y1, a:b]
                seen[y0:y1, a:b] = False
        if not seen.any():
            return frame, None
        rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
        box = (float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1))
        return frame, box

    def truth(self, t: int) -> tuple[float, float, float, float] | None:
        return self.render(t)[1]

    @property
    def boxes(self) -> np.ndarray:
        """(n_frames, 4) truth boxes, NaN rows where the object is not visible."""
        return np.array([b if b is not None else (np.nan,) * 4 for b in map(self.truth, range(self.n_frames))])


def _clutter(rng: np.random.Generator, width: int, height: int, shapes: int | None = None) -> np.ndarray:
    """Multi-scale colour noise plus ``shapes`` random shapes (default: one per 2500 px): texture
    everywhere, so a tracker cannot cheat."""
    img = np.zeros((height, width, 3), np.float32)
    for cell, weight in ((32, 0.5), (8, 0.3), (2, 0.2)):
        small = rng.uniform(0, 255, (max(height // cell, 2), max(width // cell, 2), 3)).astype(np.float32)
        img += weight * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(max(width * height // 2500, 4) if shapes is None else shapes):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(2, max(min(width, height) // 8, 3)))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x - r, y - r // 2), (x + r, y + r // 2), colour, -1)
        else:
            cv2.line(img, (x, y), (x + int(rng.integers(-3 * r, 3 * r)), y + int(rng.integers(-3 * r, 3 * r))), colour, 2)
    return img.astype(np.float32)


def _object(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A saturated stripes-and-blobs texture inside a 4:3 ellipse; returns (texture, alpha mask)."""
    tex = np.zeros((size, size, 3), np.uint8)
    colours = rng.integers(0, 256, (6, 3))
    colours[np.arange(6), rng.integers(0, 3, 6)] = 255  # saturated, so it stands out from the clutter
    band = max(size // 6, 2)
    for i in range(0, size, band):
        tex[i:i + band] = colours[(i // band) % 3]
    for k in range(6):
        centre = tuple(int(v) for v in rng.integers(size // 5, size - size // 5, 2))
        cv2.circle(tex, centre, int(rng.integers(size // 12 + 1, size // 5 + 2)), tuple(int(c) for c in colours[3 + k % 3]), -1)
    mask = np.zeros((size, size), np.float32)
    c = round((size - 1) / 2 * 16)  # exact centre, in 1/16 px (shift=4), so the pose centre is the box centre
    cv2.ellipse(mask, (c, c), ((size // 2 - 1) * 16, (size * 3) // 8 * 16), 0, 0, 360, 1.0, -1, cv2.LINE_8, 4)
    return tex.astype(np.float32), mask


def _wander(rng: np.random.Generator, width: int, height: int, n_frames: int, every: int, scale: tuple[float, float],
            turn: float) -> list[Key]:
    """Random key poses every ``every`` frames, keeping the object inside the frame."""
    keys = []
    for t in list(range(0, n_frames - 1, every)) + [n_frames - 1]:
        margin = 0.3 * min(width, height)
        pose = Pose(float(rng.uniform(margin, width - margin)), float(rng.uniform(margin, height - margin)),
                    float(rng.uniform(*scale)), float(rng.uniform(-turn, turn)))
        keys.append(Key(t, pose))
    return keys


def demo_clip(seed: int = 0, n_frames: int = 150, width: int = 320, height: int = 240) -> SyntheticClip:
    """The `siamtrack demo` clip: moving, turning (+-30 deg), scaling (0.75-1.35x), and a partial
    occlusion (a pole over about 40 % of the object) for 8 frames in the middle."""
    rng = np.random.default_rng(seed)
    size = min(width, height) // 5
    keys = _wander(rng, width, height, n_frames, every=30, scale=(0.75, 1.35), turn=30.0)
    clip = SyntheticClip(width, height, keys, seed=seed, object_size=size, n_frames=n_frames)
    t = n_frames // 2
    pose = clip.pose(t)
    x0 = int(pose.cx - size * pose.scale)
    x1 = int(pose.cx - 0.1 * size * pose.scale)  # covers the left 40 % of the object at frame t
    clip.covers = [Cover((max(x0, 0), 0, max(x1, 1), height), t - 4, t + 4)]
    return clip


def gap_clip(kind: str, gap: int = 10, seed: int = 0, width: int = 320, height: int = 240, speed: float = 6.0,
             lead: int = 10, tail: int = 20) -> SyntheticClip:
    """A clip where the object is unseen for exactly ``gap`` frames, then returns (see ``hidden``).

    ``kind='leave'``: it moves right at ``speed`` px/frame from the centre, leaves the frame, waits,
    and comes back to the centre. ``kind='occlude'``: it moves right behind a wall that covers it
    for ``gap`` frames and stops a few frames after it has come out. It is still for ``lead`` frames
    first and for ``tail`` frames at the end.
    """
    if kind not in ("leave", "occlude"):
        raise ValueError(f"kind must be 'leave' or 'occlude', got {kind!r}")
    size = min(width, height) // 5
    half = size / 2 + 2  # half-width of the texture square, plus anti-aliasing
    cy, start = height / 2, width / 2
    if kind == "leave":
        reach = size // 2 - 1  # the ellipse's half-width
        t_last = lead + int((width + reach - 3 - start) // speed)  # >= 3 px of it still in view
        seen = start + speed * (t_last - lead)
        out = max(seen + speed, width + reach + 3)  # nothing in view from here on
        t_back = t_last + gap + 1 + (t_last - lead)
        keys = [Key(0, Pose(start, cy)), Key(lead, Pose(start, cy)), Key(t_last, Pose(seen, cy)),
                Key(t_last + 1, Pose(out, cy)), Key(t_last + gap, Pose(out, cy)), Key(t_last + gap + 1, Pose(seen, cy)),
                Key(t_back, Pose(start, cy)), Key(t_back + tail, Pose(start, cy))]
        return SyntheticClip(width, height, keys, seed=seed, object_size=size, smooth=False)
    start = half + 4
    t_hide = lead + 3  # the wall slides in over the 3 frames before
    x_hide = start + speed * (t_hide - lead)
    x_show = x_hide + speed * (gap - 1)
    t_stop = t_hide + gap + 6
    x_stop = start + speed * (t_stop - lead)
    if x_stop + half > width:
        raise ValueError(f"a {gap}-frame occlusion at {speed:g} px/frame does not fit in {width} px; lower speed")
    keys = [Key(0, Pose(start, cy)), Key(lead, Pose(start, cy)), Key(t_stop, Pose(x_stop, cy)),
            Key(t_stop + tail, Pose(x_stop, cy))]
    wall = (int(x_hide - half), int(cy - half), int(math.ceil(x_show + half)), int(math.ceil(cy + half)))
    return SyntheticClip(width, height, keys, seed=seed, object_size=size, smooth=False,
                         covers=[Cover(wall, t_hide, t_hide + gap)])


def stream(n_frames: int, seed: int = 0, size: int = 64, period: int = 200) -> SyntheticClip:
    """An endless-style clip of tiny frames for long-run tests: the object wanders for half of each
    ``period``, then leaves the frame for a while and returns, so lost-state code runs too."""
    rng = np.random.default_rng(seed)
    obj = size // 4
    keys = _wander(rng, size, size, period // 2, every=25, scale=(0.8, 1.2), turn=20.0)
    p = keys[-1].pose
    out = Pose(size + obj, p.cy)
    keys += [Key(period // 2 + period // 8, out), Key(period // 2 + period // 4, out), Key(period - 1, keys[0].pose)]
    return SyntheticClip(size, size, keys, seed=seed, object_size=obj, n_frames=n_frames, period=period)
