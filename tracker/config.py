"""Dataclass configs: one place for every tunable number, with the paper's defaults."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


def _from_dict(cls, data: dict[str, Any]):
    """Build a dataclass from a dict, refusing unknown keys so typos never pass silently."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return cls(**data)


@dataclass
class ModelConfig:
    """Architecture of a Siamese network; stored inside every checkpoint so it can be rebuilt."""

    backbone: str = "alexnet"
    width: float = 1.0          # channel multiplier (0.3 -> 28/76/114/114/76 channels)
    head: str = "xcorr"          # xcorr | cosine | euclidean | manhattan
    out_scale: float | None = None  # response scale; None -> the head's default
    dropout: float = 0.0         # dropout rate (training only)
    dropout_after: int = 0       # index of the backbone stage (1..4) followed by dropout; 0 = none
    input_order: str = "rgb"     # channel order the weights expect for 0-255 input

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, data)


@dataclass
class TrackerConfig:
    """SiamFC tracking-loop hyperparameters (Bertinetto et al. 2016 defaults)."""

    exemplar_size: int = 127
    instance_size: int = 255
    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    response_size: int = 0       # 0 = derived: (instance_size - exemplar_size) / total_stride + 1 (17 for 255/127/8)
    response_up: int = 16
    total_stride: int = 8
    window_influence: float = 0.176
    min_scale: float = 0.2       # search size clamp, relative to its initial value
    max_scale: float = 5.0
    lost_threshold: float = 0.0  # confidence below which the target is reported lost (0 = never)
    lost_patience: int = 1       # consecutive low-confidence frames before entering the lost state
    recover_threshold: float = 0.0  # confidence a re-detection needs to end the lost state (>= lost_threshold)
    confidence_rate: float = 0.1  # how fast the confidence reference follows the peak of confident frames
    redetect_growth: float = 1.5  # search-region growth per lost frame (up to the whole frame)

    def __post_init__(self) -> None:
        if self.scale_num < 1:
            raise ValueError(f"scale_num must be >= 1, got {self.scale_num}")
        span = self.instance_size - self.exemplar_size
        if span < 0 or span % self.total_stride:
            raise ValueError(f"instance_size - exemplar_size must be a non-negative multiple of total_stride "
                             f"({self.total_stride}); got {self.instance_size} - {self.exemplar_size}, e.g. use "
                             f"instance_size={self.exemplar_size + max(span // self.total_stride, 0) * self.total_stride}")
        derived = span // self.total_stride + 1
        if self.response_size == 0:
            self.response_size = derived
        elif self.response_size != derived:
            raise ValueError(f"response_size {self.response_size} does not match instance_size {self.instance_size} "
                             f"(the network gives {derived}x{derived}); leave response_size out to derive it")
        if self.response_up < 1:
            raise ValueError(f"response_up must be >= 1, got {self.response_up}")
        if not 0.0 <= self.window_influence <= 1.0:
            raise ValueError(f"window_influence must be in [0, 1], got {self.window_influence}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrackerConfig":
        return _from_dict(cls, data)

    @property
    def upscale_size(self) -> int:
        return self.response_size * self.response_up

    @property
    def scale_factors(self) -> list[float]:
        half = (self.scale_num - 1) / 2
        return [self.scale_step ** (i - half) for i in range(self.scale_num)]
