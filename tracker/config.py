"""Dataclass configs: one place for every tunable number, with the paper's defaults."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar


def _from_dict(cls, data: dict[str, Any]):
    """Build a dataclass from a dict, refusing unknown keys so typos never pass silently."""
    defaults = {f.name: f.default for f in fields(cls)}
    unknown = sorted(set(data) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}; valid: {', '.join(sorted(defaults))}")
    return cls(**{key: _typed(cls.__name__, key, value, defaults[key]) for key, value in data.items()})


def _typed(owner: str, name: str, value: Any, default: Any) -> Any:
    """``value`` checked against the kind of the field's default (number, whole number, flag, text), so a typo such
    as ``size_rate=0.5;x`` is a one-line error naming the option rather than a failure deep inside a check."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = number and float(value).is_integer()
        value = int(value) if ok else value
    elif isinstance(default, float):
        ok = number
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        return value
    if not ok:
        kind = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[type(default)]
        raise ValueError(f"{owner} option {name} must be {kind}, got {value!r}")
    return value


@dataclass
class ModelConfig:
    """Architecture of a SiamFC network; stored inside every checkpoint so it can be rebuilt."""

    family: ClassVar[str] = "siamfc"
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


# MobileNetV3-small blocks of NanoTrack v1/v2 (total stride 16): kernel, hidden, out, SE width (0 = none),
# h-swish (else ReLU), stride.
NANOTRACK_BLOCKS = ((3, 16, 16, 8, False, 2), (3, 72, 24, 0, False, 2), (3, 88, 24, 0, False, 1),
                    (5, 96, 40, 24, True, 2), (5, 240, 40, 64, True, 1), (5, 240, 40, 64, True, 1),
                    (5, 120, 48, 32, True, 1), (5, 144, 48, 40, True, 1))


def _channel_scaler(width: float):
    """Channel count times ``width``, rounded to a multiple of 8 (MobileNet's rule: never 10 % below)."""
    if not 0.0 < width <= 4.0:
        raise ValueError(f"width multiplier must be in (0, 4], got {width}")

    def ch(c: int) -> int:
        if c == 0:
            return 0
        rounded = max(8, int(c * width + 4) // 8 * 8)
        return rounded + 8 if rounded < 0.9 * c * width else rounded

    return ch


def _scaled_blocks(blocks: tuple[tuple[Any, ...], ...], ch) -> tuple[tuple[Any, ...], ...]:
    return tuple((k, ch(hidden), ch(out), ch(se), hswish, stride) for k, hidden, out, se, hswish, stride in blocks)


def _check_blocks(blocks: tuple[tuple[Any, ...], ...]) -> None:
    for b in blocks:
        if len(b) != 6 or b[5] not in (1, 2):
            raise ValueError(f"each block is (kernel, hidden, out, se, hswish, stride 1|2), got {b}")


def mobilenet_v2_blocks(settings: tuple[tuple[int, int, int, int], ...], stem: int = 32) -> tuple[tuple[Any, ...], ...]:
    """MobileNetV2's (expansion t, channels c, repeats n, stride s) table as our block rows (3x3, ReLU6, no SE)."""
    rows, inp = [], stem
    for t, c, n, s in settings:
        for i in range(n):
            rows.append((3, int(round(inp * t)), c, 0, False, s if i == 0 else 1))
            inp = c
    return tuple(rows)


# LightFC's backbone: MobileNetV2 to stride 16 (its 'features' up to the 96-channel stage), 32-channel stem.
LIGHTFC_BLOCKS = mobilenet_v2_blocks(((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)))
CENTRE_HEADS = ("lightfc", "nanotrack")  # the centre family's heads (CentreModelConfig.head)


@dataclass
class BoxModelConfig:
    """Architecture of a box-regression Siamese network (NanoTrack / SiamBAN style); stored in checkpoints.

    backbone: a 3x3 stride-2 stem, then inverted residuals (``blocks``); optional 1x1 adjust (neck);
    ``relu6``: the stem and the blocks without h-swish use ReLU6 instead of h-swish / ReLU (the
    EfficientNet-Lite layout; False = MobileNetV3's, which NanoTrack uses);
    head: pixel-wise correlation (every exemplar cell against every search cell, channel attention),
    optionally plus a depth-wise correlation of the exemplar's centre; then cls and loc towers.
    """

    family: ClassVar[str] = "box"
    stem: int = 16
    blocks: tuple[tuple[Any, ...], ...] = NANOTRACK_BLOCKS + ((5, 288, 96, 72, True, 1),)
    relu6: bool = False             # stem and non-h-swish blocks: ReLU6 (EfficientNet-Lite) instead of h-swish / ReLU
    adjust: int = 0                 # neck: 1x1 conv + BN to this many channels; 0 = none
    depthwise: bool = True          # add the depth-wise correlation branch (NanoTrack v3)
    shared_correlation: bool = False  # one correlation feeds both towers (NanoTrack v1)
    project: bool = True            # 1x1 conv + BN on exemplar and search features before correlating
    exemplar_cells: int = 64        # exemplar feature cells (8 x 8 for a 127 crop): the attention width
    template_crop: int = 4          # centre crop of the exemplar map for the depth-wise branch
    cls_tower: tuple[int, ...] = (3, 3, 3, 3, 3, 3)  # depth-wise kernel of each tower block
    loc_tower: tuple[int, ...] = (3, 3, 3, 3, 3, 3)
    cls_channels: int = 96
    loc_channels: int = 96
    tower_block: str = "linear_pw"  # linear_pw: dw-BN-ReLU6-pw-BN (v3) | act_pw: dw-pw-BN-ReLU6 (v1/v2)
    input_order: str = "bgr"        # channel order the weights expect for 0-255 input

    def __post_init__(self) -> None:
        self.blocks = tuple(tuple(b) for b in self.blocks)  # JSON round trips give lists
        self.cls_tower, self.loc_tower = tuple(self.cls_tower), tuple(self.loc_tower)
        _check_blocks(self.blocks)
        if self.tower_block not in ("linear_pw", "act_pw"):
            raise ValueError(f"tower_block must be 'linear_pw' or 'act_pw', got {self.tower_block!r}")
        if self.input_order not in ("rgb", "bgr"):
            raise ValueError(f"input_order must be 'rgb' or 'bgr', got {self.input_order!r}")

    @property
    def channels(self) -> int:
        """Channels of the embedding the head sees."""
        return self.adjust or self.blocks[-1][2]

    def scaled(self, width: float) -> "BoxModelConfig":
        """This architecture with every channel count (stem, blocks, SE, adjust, towers) times ``width``.

        Kernels, strides and the exemplar grid stay, so a narrower student keeps the 16 px points of
        its teacher and learns from its maps point for point. Counts round to multiples of 8
        (MobileNet's rule) so depth-wise layers stay vector-friendly.
        """
        ch = _channel_scaler(width)
        return replace(self, stem=ch(self.stem), blocks=_scaled_blocks(self.blocks, ch), adjust=ch(self.adjust),
                       cls_channels=ch(self.cls_channels), loc_channels=ch(self.loc_channels))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BoxModelConfig":
        return _from_dict(cls, data)


@dataclass
class CentreModelConfig:
    """Architecture of a centre-head Siamese network (LightFC style); stored in checkpoints.

    One MobileNetV2-style backbone (ReLU6 inverted residuals, stride 16) embeds a ``template_size`` crop
    and a ``search_size`` crop; the fusion correlates every template cell with every search cell
    (pixel-wise), gates the cells (squeeze-excitation), mixes them spatially (depth-wise 1x1 + 3x3
    with a skip) and per position (a 2x inverted bottleneck with GELU), adjusts them to
    ``fusion_channels`` and concatenates the search features; three towers (score, size, offset) of a
    3x3 conv to ``head_channels``, squeeze-excitation, then ``head_depth`` 3x3 convs halving the
    width, then a 1x1 to the map. LightFC is the default of every field; a student is a config.
    """

    family: ClassVar[str] = "centre"
    stem: int = 32
    blocks: tuple[tuple[Any, ...], ...] = LIGHTFC_BLOCKS
    fusion_channels: int = 96       # the correlation's adjusted channels concatenated to the search features
    bottleneck: int = 2             # expansion of the fusion's per-position bottleneck
    head_channels: int = 256        # first conv of each tower; later ones halve it
    head_depth: int = 3             # 3x3 convs after the first, each halving the width
    head_reduction: int = 4         # squeeze-excitation reduction inside the towers
    template_size: int = 128        # template crop side (px); template_factor x the box's sqrt(w*h)
    search_size: int = 256          # search crop side (px); search_factor x the box's sqrt(w*h)
    template_factor: float = 2.0
    search_factor: float = 4.0
    input_order: str = "rgb"        # channel order the weights expect
    normalise: str = "imagenet"     # imagenet: (x / 255 - mean) / std before the stem (LightFC) | none: 0-255 in
                                    # (a stem with the normalisation folded in: the EfficientNet-Lite0 start)
    relu6: bool = True              # stem and non-h-swish blocks: ReLU6 (MobileNetV2, LightFC) | False: h-swish stem
                                    # and ReLU blocks (MobileNetV3's layout: a box-family backbone taken over)
    head: str = "lightfc"           # lightfc: the fusion and towers above | nanotrack: NanoTrack-v3's pixel-wise +
                                    # depth-wise correlations and head_depth depth-wise separable blocks of
                                    # head_channels per tower (fusion_channels, bottleneck, head_reduction unused),
                                    # 1x1 convs to the three maps; its even kernels put the maps half a cell off

    def __post_init__(self) -> None:
        if self.head not in CENTRE_HEADS:
            raise ValueError(f"head must be one of {', '.join(CENTRE_HEADS)}, got {self.head!r}")
        if self.normalise not in ("imagenet", "none"):
            raise ValueError(f"normalise must be 'imagenet' or 'none', got {self.normalise!r}")
        self.blocks = tuple(tuple(b) for b in self.blocks)
        _check_blocks(self.blocks)
        stride = 2
        for b in self.blocks:
            stride *= b[5]
        if stride != 16:
            raise ValueError(f"the centre family's cells are 16 px apart; these blocks give total stride {stride}")
        for name in ("template_size", "search_size"):
            if getattr(self, name) % 16 or getattr(self, name) < 16:
                raise ValueError(f"{name} must be a positive multiple of 16, got {getattr(self, name)}")
        if self.head_channels >> self.head_depth < 1 or self.head_depth < 0:
            raise ValueError(f"head_channels {self.head_channels} cannot be halved {self.head_depth} times")
        if self.input_order not in ("rgb", "bgr"):
            raise ValueError(f"input_order must be 'rgb' or 'bgr', got {self.input_order!r}")

    @property
    def template_cells(self) -> int:
        """Template feature cells (8 x 8 for a 128 px template): the correlation's channels."""
        return (self.template_size // 16) ** 2

    @property
    def map_origin(self) -> float:
        """Search-crop px where the maps' first cell begins. LightFC's n x n cells tile the crop (0); the
        nanotrack head's 2x2 refinement and 4x4 depth-wise kernels centre output j between feature cells j and
        j + 1, so its (n - 1) x (n - 1) cells begin half a cell in (8 px)."""
        return 8.0 if self.head == "nanotrack" else 0.0

    @property
    def channels(self) -> int:
        """Channels of the backbone's embedding (what feature distillation compares)."""
        return self.blocks[-1][2]

    def scaled(self, width: float) -> "CentreModelConfig":
        """The backbone's channels times ``width`` (rounded to multiples of 8); fusion and head stay."""
        ch = _channel_scaler(width)
        return replace(self, stem=ch(self.stem), blocks=_scaled_blocks(self.blocks, ch))

    def loop_overrides(self) -> dict[str, Any]:
        """The crop geometry a tracking loop runs with by default (a smaller search crop may be asked for)."""
        return {"exemplar_size": self.template_size, "instance_size": self.search_size,
                "template_factor": self.template_factor, "search_factor": self.search_factor}

    def map_geometry(self) -> dict[str, float]:
        """How the step reads this network's maps, whatever the loop asks: where their first cell begins in the
        search crop, and the crop side (the trained search size) the size map's fractions are of."""
        return {"map_origin": self.map_origin, "size_reference": float(self.search_size)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CentreModelConfig":
        return _from_dict(cls, data)


@dataclass
class LoopConfig:
    """What every family's tracking loop shares: crop geometry, window weight, lost state, re-detection."""

    exemplar_size: int = 127
    instance_size: int = 255
    context: float = 0.5
    total_stride: int = 8
    window_influence: float = 0.176
    lost_threshold: float = 0.0  # confidence below which the target is reported lost (0 = never)
    lost_patience: int = 1       # consecutive low-confidence frames before entering the lost state
    recover_threshold: float = 0.0  # confidence a re-detection needs to end the lost state (>= lost_threshold)
    confidence_rate: float = 0.1  # how fast the confidence reference follows the peak of confident frames
    doubt_rate: float = 0.05      # how fast the doubt follows the score map's rivalry (a running mean)
    doubt_threshold: float = 2.0  # doubt from which the target is reported lost (box kept moving); > 1 = never
    spread_rate: float = 0.5      # how fast the spread follows the score map's normalised entropy (a running mean)
    spread_threshold: float = 2.0  # spread from which the target is reported lost (box kept moving); > 1 = never
    redetect_growth: float = 1.5  # search-region growth per lost frame (up to the whole frame)
    template_weight: float = 0.0  # share of a recent confident exemplar in the template (0 = the first only)
    template_every: int = 10      # frames between template refreshes
    template_gate: float = 0.9    # confidence a frame needs to refresh the template

    def _check_window(self) -> None:
        if not 0.0 <= self.window_influence <= 1.0:
            raise ValueError(f"window_influence must be in [0, 1], got {self.window_influence}")
        if not 0.0 <= self.template_weight < 1.0 or self.template_every < 1:
            raise ValueError(f"template_weight must be in [0, 1) and template_every >= 1, got "
                             f"{self.template_weight}, {self.template_every}")
        for name in ("doubt", "spread"):
            rate, threshold = getattr(self, f"{name}_rate"), getattr(self, f"{name}_threshold")
            if not 0.0 < rate <= 1.0 or threshold < 0.0:
                raise ValueError(f"{name}_rate must be in (0, 1] and {name}_threshold >= 0 (above 1: never flag), got "
                                 f"{rate}, {threshold}")

    @property
    def frame_sizes(self) -> tuple[int, ...]:
        """Search-crop sizes a normal (not lost) frame may use; the first is ``instance_size``."""
        return (self.instance_size,)

    def extents(self, w: float, h: float) -> tuple[float, float]:
        """(exemplar, search) crop sides in frame px for a w x h target: SiamFC's context rule."""
        ctx = self.context * (w + h)
        z_sz = math.sqrt((w + ctx) * (h + ctx))
        return z_sz, z_sz * self.instance_size / self.exemplar_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return _from_dict(cls, data)


@dataclass
class TrackerConfig(LoopConfig):
    """SiamFC tracking-loop hyperparameters (Bertinetto et al. 2016 defaults)."""

    scale_num: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    response_size: int = 0       # 0 = derived: (instance_size - exemplar_size) / total_stride + 1 (17 for 255/127/8)
    response_up: int = 16
    min_scale: float = 0.2       # search size clamp, relative to its initial value
    max_scale: float = 5.0

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
        self._check_window()

    @property
    def searches_per_target(self) -> int:
        return self.scale_num

    @property
    def upscale_size(self) -> int:
        return self.response_size * self.response_up

    @property
    def scale_factors(self) -> list[float]:
        half = (self.scale_num - 1) / 2
        return [self.scale_step ** (i - half) for i in range(self.scale_num)]


@dataclass
class BoxTrackerConfig(LoopConfig):
    """Box-regression loop (NanoTrack / SiamBAN): scale/aspect-change penalty, cosine window, size smoothing.

    Defaults are NanoTrack-v3's published ones; imported checkpoints carry their own version's values.
    """

    total_stride: int = 16
    window_influence: float = 0.455
    penalty_k: float = 0.138     # weight of the scale/aspect-change penalty exp(-(r_c * s_c - 1) * penalty_k)
    lr: float = 0.348            # size smoothing: lr = penalty * score * this
    min_size: float = 10.0       # smallest box side in pixels (the clip of the published loop)
    reference_search: int = 255  # search crop at which the model's grid points are -(n // 2) * stride (training)
    confident_size: int = 0      # search crop while the last frame's score >= confident_score (0 = always instance_size)
    confident_score: float = 0.9
    doubt_threshold: float = 0.5  # README, "What score and lost mean": the spread flags more, less precisely

    searches_per_target: ClassVar[int] = 1

    @property
    def frame_sizes(self) -> tuple[int, ...]:
        """Search-crop sizes of normal frames: the full one, and the smaller one of confident frames."""
        return (self.instance_size, self.confident_size) if self.confident_size else (self.instance_size,)

    def __post_init__(self) -> None:
        self._check_window()
        if self.exemplar_size < self.total_stride or self.instance_size < self.exemplar_size:
            raise ValueError(f"need total_stride <= exemplar_size <= instance_size, got {self.total_stride}, "
                             f"{self.exemplar_size}, {self.instance_size}")
        if not 0.0 <= self.lr <= 1.0:
            raise ValueError(f"lr must be in [0, 1], got {self.lr}")
        if (self.instance_size - self.reference_search) % self.total_stride:
            raise ValueError(f"instance_size must differ from reference_search ({self.reference_search}) by a multiple of "
                             f"total_stride ({self.total_stride}), got {self.instance_size}; e.g. 223, 239, 255, 271")
        if self.penalty_k < 0:
            raise ValueError(f"penalty_k must be >= 0, got {self.penalty_k}")
        if self.confident_size and not (self.exemplar_size <= self.confident_size <= self.instance_size
                                        and (self.confident_size - self.reference_search) % self.total_stride == 0):
            raise ValueError(f"confident_size must be 0 or between exemplar_size ({self.exemplar_size}) and instance_size "
                             f"({self.instance_size}), differing from reference_search by a multiple of "
                             f"{self.total_stride}; got {self.confident_size}")


@dataclass
class CentreTrackerConfig(LoopConfig):
    """Centre-head loop (LightFC): crops of ``factor`` x sqrt(w*h), the score map times a Hann window
    (``window_influence`` is its exponent: 1 = LightFC, 0 = no window), the best cell's size and
    offset taken as they are, the box clipped to the frame. ``size_rate`` < 1 smooths the size and
    ``penalty_k`` > 0 penalises cells whose box changes scale or aspect (both off = LightFC's loop)."""

    exemplar_size: int = 128
    instance_size: int = 256
    total_stride: int = 16
    window_influence: float = 1.0
    template_factor: float = 2.0
    search_factor: float = 4.0
    clip_margin: float = 2.0     # smallest box side and distance from the far frame edges (LightFC's clip_box)
    size_rate: float = 1.0       # share of the new size taken each frame (1 = LightFC: as it is; lower = smoothed)
    penalty_k: float = 0.0       # scale/aspect change penalty on each cell's score (SiamRPN's; 0 = LightFC: none)

    searches_per_target: ClassVar[int] = 1

    def __post_init__(self) -> None:
        self._check_window()
        for name in ("exemplar_size", "instance_size"):
            if getattr(self, name) % self.total_stride:
                raise ValueError(f"{name} must be a multiple of total_stride ({self.total_stride}), got {getattr(self, name)}")
        if self.template_factor <= 0 or self.search_factor <= 0:
            raise ValueError(f"template_factor and search_factor must be > 0, got {self.template_factor}, {self.search_factor}")
        if not 0.0 < self.size_rate <= 1.0:
            raise ValueError(f"size_rate must be in (0, 1] (1 = take each frame's size as it is), got {self.size_rate}")
        if self.penalty_k < 0:
            raise ValueError(f"penalty_k must be >= 0 (0 = no size-change penalty), got {self.penalty_k}")

    def extents(self, w: float, h: float) -> tuple[float, float]:
        """(template, search) crop sides before LightFC's ceil: factor x sqrt(w*h)."""
        side = math.sqrt(w * h)
        return side * self.template_factor, side * self.search_factor
