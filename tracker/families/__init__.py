"""Model families: what differs between them is the network and the step that turns its outputs into a box.

Each family module holds a *step* class (search crops per target, the frame's proposal from the
network outputs, the lost-state relocation); the lifecycle that calls it (init/update, lost state,
batching, backends) is written once in :mod:`tracker.tracking`. A new family adds its network under
``tracker/models``, its post-processing under ``tracker/postprocess`` and its step here.
"""
from __future__ import annotations

from typing import Any, Union

from ..config import BoxTrackerConfig, LoopConfig, TrackerConfig
from .box import BoxStep
from .siamfc import SiamFCStep

Step = Union[SiamFCStep, BoxStep]
LOOPS: dict[str, tuple[type, type]] = {"siamfc": (TrackerConfig, SiamFCStep), "box": (BoxTrackerConfig, BoxStep)}


def loop_config(family: str, overrides: dict[str, Any]) -> LoopConfig:
    """The family's tracking-loop config with ``overrides`` (unknown keys: ValueError naming the valid ones)."""
    return LOOPS[family][0].from_dict(overrides)


def build_step(family: str, config: LoopConfig) -> Step:
    return LOOPS[family][1](config)
