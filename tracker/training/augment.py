"""Pair augmentation: one warpAffine per crop (shift, scale, stretch, flip), photometric jitter and
optional occluding patches.

Cache patches are centred on the target at search-crop scale, so the target's box in a crop follows
from the affine map alone: the returned box is the target's centre relative to the search crop's
centre and its size, in search-crop pixels (the training labels of both families are built from it).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .options import opt

_FLAGS = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; every probability is per pair, every jitter uniform in +-value."""

    search_shift: float = opt(32.0, "target displacement from the search centre, pixels")
    search_scale: float = opt(0.15, "log scale jitter of the search crop")
    exemplar_shift: float = opt(4.0, "exemplar centre jitter, pixels")
    exemplar_scale: float = opt(0.05, "log scale jitter of the exemplar crop")
    stretch: float = opt(0.05, "independent log jitter per axis (aspect change)")
    still_scale: float = opt(0.3, "log scale jitter for still-image pairs (synthetic motion)")
    flip: float = opt(0.5, "probability of a horizontal flip of both crops")
    gray: float = opt(0.1, "probability of turning both crops grayscale")
    blur: float = opt(0.15, "probability of motion blur on the search crop")
    brightness: float = opt(0.1, "additive brightness jitter, fraction of 255")
    contrast: float = opt(0.2, "multiplicative contrast jitter")
    colour: float = opt(0.08, "per-channel colour gain jitter")
    occlude: float = opt(0.0, "probability of pasting an occluding patch (texture copied from elsewhere in the "
                              "crop) over part of the search target")
    occlude_size: float = opt(0.5, "largest occluder side, fraction of the target's side (smallest: 0.2)")


def affine(size: int, centre: tuple[float, float], scale_xy: tuple[float, float], flip: bool) -> np.ndarray:
    """Inverse map (output px -> patch px) of a ``size`` crop whose pixels are ``scale_xy`` patch px."""
    ax = -scale_xy[0] if flip else scale_xy[0]
    ay = scale_xy[1]
    o = (size - 1) / 2
    return np.array([[ax, 0.0, centre[0] - ax * o], [0.0, ay, centre[1] - ay * o]])


def _warp(patch: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(patch, m, (size, size), flags=_FLAGS, borderMode=cv2.BORDER_REPLICATE)


def _scales(rng: np.random.Generator, scale: float, stretch: float) -> tuple[float, float]:
    s = float(np.exp(rng.uniform(-scale, scale)))
    return s * float(np.exp(rng.uniform(-stretch, stretch))), s * float(np.exp(rng.uniform(-stretch, stretch)))


def _photometric(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    gain = (1 + rng.uniform(-cfg.colour, cfg.colour, 3)) * (1 + rng.uniform(-cfg.contrast, cfg.contrast))
    shift = rng.uniform(-cfg.brightness, cfg.brightness) * 255
    return np.clip(img.astype(np.float32) * gain.astype(np.float32) + shift, 0, 255).astype(np.uint8)


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """Blur along a line of ``length`` px at ``angle`` degrees (camera or object motion)."""
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    return cv2.filter2D(img, -1, k / max(k.sum(), 1e-6))


def occlude(img: np.ndarray, box: np.ndarray, rng: np.random.Generator, largest: float) -> np.ndarray:
    """Cover a random part of ``box`` (cx, cy, w, h from the crop centre) with a same-sized patch
    copied from a random place of the crop: real texture, as another object passing in front."""
    size = img.shape[0]
    w, h = (max(1, int(round(box[2 + k] * rng.uniform(0.2, max(largest, 0.2))))) for k in range(2))
    w, h = min(w, size), min(h, size)
    cx, cy = ((size - 1) / 2 + box[k] + rng.uniform(-0.5, 0.5) * box[2 + k] for k in range(2))
    x0, y0 = (int(np.clip(round(c - d / 2), 0, size - d)) for c, d in ((cx, w), (cy, h)))
    sx, sy = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    out = img.copy()
    out[y0:y0 + h, x0:x0 + w] = img[sy:sy + h, sx:sx + w]
    return out


def augment_pair(patch_z: np.ndarray, patch_x: np.ndarray, size_x: tuple[float, float], rng: np.random.Generator,
                 cfg: AugmentConfig, sizes: tuple[int, int] = (127, 255),
                 still: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exemplar and search crops (``sizes`` = their sides) from two cache patches, plus the target's
    box (cx, cy, w, h) in the search crop; ``size_x`` = the target's (w, h) in ``patch_x`` pixels.

    ``still``: both come from the same still image, so the search crop gets the larger
    ``still_scale`` jitter to imitate the target's motion between frames.
    """
    c = (patch_z.shape[1] - 1) / 2
    flip = bool(rng.random() < cfg.flip)
    sz = _scales(rng, cfg.exemplar_scale, cfg.stretch)
    dz = rng.uniform(-cfg.exemplar_shift, cfg.exemplar_shift, 2)
    z_size, x_size = sizes
    z = _warp(patch_z, affine(z_size, (c + dz[0], c + dz[1]), sz, flip), z_size)
    sx = _scales(rng, cfg.still_scale if still else cfg.search_scale, cfg.stretch)
    dx = rng.uniform(-cfg.search_shift, cfg.search_shift, 2)
    x = _warp(patch_x, affine(x_size, (c + dx[0], c + dx[1]), sx, flip), x_size)
    box = np.array([-dx[0] / (-sx[0] if flip else sx[0]), -dx[1] / sx[1], size_x[0] / sx[0], size_x[1] / sx[1]])
    if rng.random() < cfg.gray:
        z = cv2.cvtColor(cv2.cvtColor(z, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        x = cv2.cvtColor(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < cfg.blur:
        x = motion_blur(x, int(rng.integers(3, 10)), float(rng.uniform(0, 180)))
    z, x = _photometric(z, rng, cfg), _photometric(x, rng, cfg)
    # Drawn last and only when enabled, so runs without occluders get the pairs they always got.
    if cfg.occlude and rng.random() < cfg.occlude:
        x = occlude(x, box, rng, cfg.occlude_size)
    return z, x, box
