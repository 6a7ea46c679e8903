"""Model families: what differs between them is the network and the step that turns its outputs into a box.

Each family module holds a *step* class (the exemplar crop, search crops per target, the frame's proposal from the
network outputs, the lost-state relocation); the lifecycle that calls it (init/update, lost state,
batching, backends) is written once in :mod:`tracker.tracking`. A new family adds its network under
``tracker/models``, its post-processing under ``tracker/postprocess`` and its step here.
"""
from __future__ import annotations

from typing import Any, Union

from ..config import BoxTrackerConfig, CentreTrackerConfig, LoopConfig, TrackerConfig
from .box import BoxStep
from .centre import CentreStep
from .siamfc import SiamFCStep

Step = Union[SiamFCStep, BoxStep, CentreStep]
LOOPS: dict[str, tuple[type, type]] = {"siamfc": (TrackerConfig, SiamFCStep), "box": (BoxTrackerConfig, BoxStep),
                                       "centre": (CentreTrackerConfig, CentreStep)}


def loop_config(family: str, overrides: dict[str, Any]) -> LoopConfig:
    """The family's tracking-loop config with ``overrides`` (unknown keys: ValueError naming the valid ones)."""
    return LOOPS[family][0].from_dict(overrides)


def build_step(family: str, config: LoopConfig, model_config: Any = None) -> Step:
    """The family's step for ``config``, reading the maps of the network ``model_config`` describes."""
    return LOOPS[family][1](config, **network_map_geometry(model_config))


def network_map_geometry(model_config: Any) -> dict[str, float]:
    """How a step must read the network's maps (the centre family's origin and size reference); none for the others."""
    return _network_fixes(model_config, "map_geometry")


def model_loop_overrides(model_config: Any) -> dict[str, Any]:
    """Loop fields a network fixes (the centre family's crop sizes and factors); none for the others."""
    return _network_fixes(model_config, "loop_overrides")


def _network_fixes(model_config: Any, method: str) -> dict[str, Any]:
    """``model_config.method()`` where the family's config has it (the centre family's), else nothing."""
    fixed = getattr(model_config, method, None)
    return fixed() if fixed is not None else {}


def default_loop_config(model_config: Any) -> LoopConfig:
    """The loop config a network runs with when nothing else is asked for."""
    return loop_config(model_config.family, model_loop_overrides(model_config))
