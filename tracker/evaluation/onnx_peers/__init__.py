"""Bench peers ported from their upstream Python tracking loops onto ONNX graphs that siamtrack does not ship:
LightTrack-Mobile (``lighttrack``, ``lighttrack_vot``) and FEAR-XS (``fear``, ``fear_smooth``).

Each name maps to its tracker class, loop config and the PeerOptions field (= command-line option) that names
the folder holding its graph files.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import fear, lighttrack


@dataclass(frozen=True)
class OnnxPeer:
    """``tracker(folder, config, threads=...)`` builds the peer; ``field`` is the PeerOptions folder attribute."""

    tracker: Callable[..., Any]
    config: Any
    field: str
    files: str

    @property
    def option(self) -> str:
        return "--" + self.field.replace("_", "-")


ONNX_PEERS: dict[str, OnnxPeer] = {
    **{name: OnnxPeer(lighttrack.LightTrackPeer, cfg, "lighttrack_dir", lighttrack.FILES)
       for name, cfg in lighttrack.VARIANTS.items()},
    **{name: OnnxPeer(fear.FearPeer, cfg, "fear_dir", fear.FILES) for name, cfg in fear.VARIANTS.items()},
}
