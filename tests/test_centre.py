"""The centre-head family (LightFC style): its crop, decode, network, importers and lifecycle.

LightFC's own loop and layers are transcribed here from the official code (LiYunfengLYF/LightFC, MIT),
independently of the package, as the ground truth: sample_target (processing_utils.py 12-71), the
training-form network (ecm.py pwcorr_se_scf_sc_iab_sc_concat, erh.py repN33 + repn33_se_center_concat,
torchvision-layout MobileNetV2). Only the comparison with the stored reference boxes reads ../shared.
"""
from __future__ import annotations

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SHARED
from tracker import MultiTracker, SiamTracker
from tracker.config import CentreModelConfig, CentreTrackerConfig
from tracker.crops import sample_target_into
from tracker.errors import WeightsError
from tracker.evaluation.metrics import iou
from tracker.models import CentreSiameseNet, load_checkpoint, save_checkpoint
from tracker.postprocess.centre import decode_centre, decode_centre_reference, hann_window, locate_centre, size_penalty
from tracker.synthetic import demo_clip

LIGHTFC = SHARED / "reference" / "lightfc"
SMALL = CentreModelConfig(stem=16, blocks=CentreModelConfig().scaled(0.35).blocks, head_channels=32, head_depth=2,
                          template_size=96, search_size=192)
SMALL_HEADS = {"lightfc": SMALL, "nanotrack": dataclasses.replace(SMALL, head="nanotrack", head_channels=24)}


def upstream_sample_target(im, target_bb, factor, output_sz):
    """processing_utils.sample_target as written upstream (crash cases excepted)."""
    x, y, w, h = target_bb
    crop_sz = math.ceil(math.sqrt(w * h) * factor)
    x1 = round(x + 0.5 * w - crop_sz * 0.5)
    x2 = x1 + crop_sz
    y1 = round(y + 0.5 * h - crop_sz * 0.5)
    y2 = y1 + crop_sz
    x1_pad, x2_pad = max(0, -x1), max(x2 - im.shape[1] + 1, 0)
    y1_pad, y2_pad = max(0, -y1), max(y2 - im.shape[0] + 1, 0)
    im_crop = im[y1 + y1_pad:y2 - y2_pad, x1 + x1_pad:x2 - x2_pad, :]
    padded = cv2.copyMakeBorder(im_crop, y1_pad, y2_pad, x1_pad, x2_pad, cv2.BORDER_CONSTANT)
    return cv2.resize(padded, (output_sz, output_sz)), crop_sz


@pytest.mark.parametrize("box", [(100.0, 80.0, 40.0, 30.0),      # inside
                                 (290.0, 200.0, 25.0, 30.0),     # past the right and bottom edges (+1 quirk)
                                 (-10.0, -5.0, 30.0, 20.0),      # past the left and top edges
                                 (131.3, 57.8, 17.25, 41.5),     # fractional: Python's rounding of the corner
                                 (105.5, 80.0, 30.0, 30.0)])     # corner exactly at .5: ties to even
def test_the_crop_is_lightfc_sample_target(box):
    frame = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for factor, size in ((2.0, 128), (4.0, 256)):
        expected, side = upstream_sample_target(frame, box, factor, size)
        out = np.empty((size, size, 3), np.uint8)
        assert sample_target_into(frame, *box, factor, out) == side
        np.testing.assert_array_equal(out, expected)


def test_a_crop_wholly_outside_the_frame_is_zero_and_an_empty_box_is_refused():
    frame = np.full((50, 60, 3), 200, np.uint8)
    out = np.ones((32, 32, 3), np.uint8)
    sample_target_into(frame, 500.0, 500.0, 10.0, 10.0, 2.0, out)
    assert not out.any()
    with pytest.raises(ValueError, match="positive area"):
        sample_target_into(frame, 5.0, 5.0, 0.0, 10.0, 2.0, out)


def test_hann_window_is_lightfcs_k_over_n_plus_1():
    w = hann_window(16)
    one = torch.hann_window(18, periodic=False)[1:17]
    np.testing.assert_allclose(w, torch.outer(one, one).numpy(), rtol=0, atol=1e-7)
    assert w.min() > 0 and w.dtype == np.float32
    np.testing.assert_array_equal(hann_window(16, 0.0), np.ones((16, 16), np.float32))


@pytest.mark.parametrize("seed", range(6))
def test_numba_decode_equals_the_numpy_transcription(seed):
    rng = np.random.default_rng(seed)
    n = (16, 16, 12, 14, 16, 8)[seed]
    score = rng.random((n, n), dtype=np.float32)
    if seed == 1:
        score[3, 5] = score[9, 2] = 2.0  # a tie: the first maximum wins
    size, offset = rng.random((2, n, n), dtype=np.float32), rng.random((2, n, n), dtype=np.float32)
    window = hann_window(n)
    args = (n * 16, int(rng.integers(40, 400)), *rng.uniform(-30, 300, 2), *rng.uniform(2, 120, 2), 240, 320, 2.0)
    got = decode_centre(score, size, offset, window, *args, float(n), 0.0)
    want = decode_centre_reference(score, size, offset, window, *args)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_decode_by_hand():
    """One hot cell at row 2, column 5 of a 4 x 4 map... (n = 8, 128 px crop of 64 frame px)."""
    n = 8
    score = np.full((n, n), 0.1, np.float32)
    score[2, 5] = 0.9
    size = np.full((2, n, n), 0.25, np.float32)
    offset = np.full((2, n, n), 0.5, np.float32)
    # crop px: cx = (5 + 0.5) / 8 * 128 = 88, cy = (2 + 0.5) / 8 * 128 = 40, w = h = 32; frame px: / 2
    # previous box (100, 100, 20, 20): centre 110, crop half side 32 -> cx = 44 + 78 = 122, cy = 20 + 78 = 98
    raw, x, y, w, h = decode_centre(score, size, offset, np.ones((n, n), np.float32), 128, 64, 100.0, 100.0, 20.0, 20.0,
                                    240, 320, 2.0, 8.0, 0.0)
    assert (raw, x, y, w, h) == pytest.approx((0.9, 122 - 8, 98 - 8, 16, 16), abs=1e-5)
    # clipped: the same peak for a previous box near the right edge: x2 = 320 + ... -> W
    _, x, _, w, _ = decode_centre(score, size, offset, np.ones((n, n), np.float32), 128, 64, 300.0, 100.0, 20.0, 20.0,
                                  240, 320, 2.0, 8.0, 0.0)
    assert x == pytest.approx(314) and w == pytest.approx(6)
    raw, u, v = locate_centre(score, offset, 16.0, 0.0)
    assert (raw, u, v) == pytest.approx((0.9, 88.0, 40.0))


def test_decode_by_hand_with_maps_half_a_cell_in():
    """The nanotrack head's 7 x 7 maps on the 8 cells of a 128 px crop, beginning 8 px in: the same hot cell
    (row 2, column 5, offset 0.5) is at crop px (8 + 5.5 * 16, 8 + 2.5 * 16) = (96, 48), frame px / 2 from the
    crop's corner (110 - 32 = 78): centre (126, 102), 16 x 16."""
    score = np.full((7, 7), 0.1, np.float32)
    score[2, 5] = 0.9
    size, offset = np.full((2, 7, 7), 0.25, np.float32), np.full((2, 7, 7), 0.5, np.float32)
    raw, x, y, w, h = decode_centre(score, size, offset, np.ones((7, 7), np.float32), 128, 64, 100.0, 100.0, 20.0, 20.0,
                                    240, 320, 2.0, 8.0, 8.0)
    assert (raw, x, y, w, h) == pytest.approx((0.9, 126 - 8, 102 - 8, 16, 16), abs=1e-5)
    assert locate_centre(score, offset, 16.0, 8.0) == pytest.approx((0.9, 96.0, 48.0))


# ---------------------------------------------------------------------------------------------------------
# The official training-form network, transcribed, against ours after the importer


def _bn(state, prefix, c, rng):
    state[f"{prefix}.weight"] = torch.from_numpy(rng.uniform(0.5, 1.5, c).astype(np.float32))
    state[f"{prefix}.bias"] = torch.from_numpy(rng.normal(0, 0.1, c).astype(np.float32))
    state[f"{prefix}.running_mean"] = torch.from_numpy(rng.normal(0, 0.1, c).astype(np.float32))
    state[f"{prefix}.running_var"] = torch.from_numpy(rng.uniform(0.5, 2.0, c).astype(np.float32))
    state[f"{prefix}.num_batches_tracked"] = torch.tensor(7)


def _conv(state, prefix, out, inp, k, rng, bias=True):
    state[f"{prefix}.weight"] = torch.from_numpy(rng.normal(0, math.sqrt(1.0 / (inp * k * k)), (out, inp, k, k)).astype(np.float32))
    if bias:
        state[f"{prefix}.bias"] = torch.from_numpy(rng.normal(0, 0.05, out).astype(np.float32))


def official_state(seed=0):
    """A random state dict in the official layout (lightfc_ep0400.pth.tar's 'net')."""
    rng = np.random.default_rng(seed)
    s: dict[str, torch.Tensor] = {}
    _conv(s, "backbone.features.0.0", 32, 3, 3, rng, bias=False)
    _bn(s, "backbone.features.0.1", 32, rng)
    inp, i = 32, 1
    for t, c, n, _ in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)):
        for _ in range(n):
            hid, p = inp * t, f"backbone.features.{i}.conv"
            if t == 1:
                _conv(s, f"{p}.0.0", hid, 1, 3, rng, bias=False), _bn(s, f"{p}.0.1", hid, rng)
                _conv(s, f"{p}.1", c, hid, 1, rng, bias=False), _bn(s, f"{p}.2", c, rng)
            else:
                _conv(s, f"{p}.0.0", hid, inp, 1, rng, bias=False), _bn(s, f"{p}.0.1", hid, rng)
                _conv(s, f"{p}.1.0", hid, 1, 3, rng, bias=False), _bn(s, f"{p}.1.1", hid, rng)
                _conv(s, f"{p}.2", c, hid, 1, rng, bias=False), _bn(s, f"{p}.3", c, rng)
            inp, i = c, i + 1
    _conv(s, "fusion.ca.fc1", 64, 64, 1, rng), _conv(s, "fusion.ca.fc2", 64, 64, 1, rng)
    _conv(s, "fusion.conv33", 64, 1, 3, rng), _bn(s, "fusion.bn33", 64, rng)
    _conv(s, "fusion.conv11", 64, 1, 1, rng), _bn(s, "fusion.bn11", 64, rng)
    _conv(s, "fusion.conv_up", 128, 64, 1, rng), _bn(s, "fusion.bn_up", 128, rng)
    _conv(s, "fusion.conv_down", 64, 128, 1, rng), _bn(s, "fusion.bn_down", 64, rng)
    _conv(s, "fusion.adjust", 96, 64, 1, rng)
    for tower, outs in (("ctr", 1), ("offset", 2), ("size", 2)):
        for branch in ("rbr_dense", "rbr_3x3"):
            _conv(s, f"head.conv1_{tower}.{branch}.conv", 256, 192, 3, rng), _bn(s, f"head.conv1_{tower}.{branch}.bn", 256, rng)
        for j, (o, ii) in enumerate(((128, 256), (64, 128), (32, 64))):
            _conv(s, f"head.conv{j + 2}_{tower}.0", o, ii, 3, rng), _bn(s, f"head.conv{j + 2}_{tower}.1", o, rng)
        _conv(s, f"head.conv5_{tower}", outs, 32, 1, rng)
        _conv(s, f"head.se_{tower}.fc1", 64, 256, 1, rng), _conv(s, f"head.se_{tower}.fc2", 256, 64, 1, rng)
    return s


def _bn_f(x, s, p):
    return F.batch_norm(x, s[f"{p}.running_mean"], s[f"{p}.running_var"], s[f"{p}.weight"], s[f"{p}.bias"], False, 0.0, 1e-5)


def _conv_f(x, s, p, stride=1, groups=1):
    w = s[f"{p}.weight"]
    return F.conv2d(x, w, s.get(f"{p}.bias"), stride, w.shape[-1] // 2, 1, groups)


def official_forward(s, template, search):
    """LightFC's training-form forward (eval-mode BN) on RGB-normalised crops."""
    def backbone(x):
        x = F.relu6(_bn_f(_conv_f(x, s, "backbone.features.0.0", 2), s, "backbone.features.0.1"))
        i = 1
        while f"backbone.features.{i}.conv.1.weight" in s or f"backbone.features.{i}.conv.1.0.weight" in s:
            p = f"backbone.features.{i}.conv"
            y = x
            if f"{p}.3.weight" not in s:  # t == 1
                dw = s[f"{p}.0.0.weight"]
                y = F.relu6(_bn_f(_conv_f(y, s, f"{p}.0.0", 1, dw.shape[0]), s, f"{p}.0.1"))
                y = _bn_f(_conv_f(y, s, f"{p}.1"), s, f"{p}.2")
            else:
                y = F.relu6(_bn_f(_conv_f(y, s, f"{p}.0.0"), s, f"{p}.0.1"))
                stride = 2 if i in (2, 4, 7) else 1
                y = F.relu6(_bn_f(_conv_f(y, s, f"{p}.1.0", stride, y.shape[1]), s, f"{p}.1.1"))
                y = _bn_f(_conv_f(y, s, f"{p}.2"), s, f"{p}.3")
            x = x + y if y.shape == x.shape else y
            i += 1
        return x

    def se(x, p):
        g = torch.sigmoid(_conv_f(F.relu(_conv_f(x.mean((2, 3), keepdim=True), s, f"{p}.fc1")), s, f"{p}.fc2"))
        return x * g

    z, x = backbone(template), backbone(search)
    b, c, h, w = x.shape
    corr = torch.matmul(z.reshape(b, c, -1).transpose(1, 2), x.reshape(b, c, -1)).reshape(b, -1, h, w)
    corr = se(corr, "fusion.ca")
    corr = corr + _bn_f(_conv_f(corr, s, "fusion.conv11", 1, 64), s, "fusion.bn11") + \
        _bn_f(_conv_f(corr, s, "fusion.conv33", 1, 64), s, "fusion.bn33")
    up = F.gelu(_bn_f(_conv_f(corr, s, "fusion.conv_up"), s, "fusion.bn_up"))
    corr = corr + _bn_f(_conv_f(up, s, "fusion.conv_down"), s, "fusion.bn_down")
    fused = torch.cat((_conv_f(corr, s, "fusion.adjust"), x), 1)
    maps = {}
    for tower in ("ctr", "offset", "size"):
        y = sum(_bn_f(_conv_f(fused, s, f"head.conv1_{tower}.{br}.conv"), s, f"head.conv1_{tower}.{br}.bn")
                for br in ("rbr_dense", "rbr_3x3"))
        y = se(F.relu(y), f"head.se_{tower}")
        for j in range(2, 5):
            y = F.relu(_bn_f(_conv_f(y, s, f"head.conv{j}_{tower}.0"), s, f"head.conv{j}_{tower}.1"))
        maps[tower] = _conv_f(y, s, f"head.conv5_{tower}")
    clamp = lambda m: torch.clamp(torch.sigmoid(m), 1e-4, 1 - 1e-4)  # noqa: E731
    return clamp(maps["ctr"]), clamp(maps["size"]), maps["offset"]


def normalised_rgb(bgr):
    rgb = torch.from_numpy(bgr).permute(0, 3, 1, 2).float().flip(1) / 255
    return (rgb - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def test_the_official_checkpoint_layout_loads_re_parameterised(tmp_path):
    state = official_state()
    path = tmp_path / "lightfc_ep0400.pth.tar"
    torch.save({"net": state, "epoch": 400}, path)
    net, overrides, meta = load_checkpoint(path)
    assert isinstance(net, CentreSiameseNet) and meta["source"] == "lightfc-checkpoint"
    assert overrides["exemplar_size"] == 128 and overrides["instance_size"] == 256
    rng = np.random.default_rng(3)
    z = rng.integers(0, 255, (2, 128, 128, 3), dtype=np.uint8)
    x = rng.integers(0, 255, (2, 256, 256, 3), dtype=np.uint8)
    with torch.no_grad():
        want = official_forward(state, normalised_rgb(z), normalised_rgb(x))
        ours = net(torch.from_numpy(z).permute(0, 3, 1, 2).float().flip(1), torch.from_numpy(x).permute(0, 3, 1, 2).float().flip(1))
    for a, b in zip(ours, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-4)
    assert (want[0] - 0.5).abs().max() > 0.05  # the maps are not flat: the comparison means something


def test_a_broken_official_checkpoint_is_one_line(tmp_path):
    state = official_state()
    del state["head.conv5_size.weight"]
    path = tmp_path / "broken.pth.tar"
    torch.save({"net": state}, path)
    with pytest.raises(WeightsError, match="lacks head.conv5_size.weight") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------------------
# The family through the shared lifecycle, with a small random student (no ../shared needed)


def calibrated(net: CentreSiameseNet) -> CentreSiameseNet:
    """A random net whose BN statistics are those of random crops: at init every BN is the identity and
    the activations fade through the backbone, leaving flat maps whose argmax is decided by float noise."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a plain average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(4, 3, 96, 96) * 255, torch.rand(4, 3, 192, 192) * 255)
    return net.eval()


@pytest.fixture(scope="module", params=sorted(SMALL_HEADS))
def small_model(request, tmp_path_factory):
    torch.manual_seed(0)
    net = calibrated(CentreSiameseNet(SMALL_HEADS[request.param]))
    if request.param == "nanotrack":  # sizes near 0.2 of the crop, as trained: a random 1x1 conv grows the box to
        with torch.no_grad():         # the frame, where a 1e-7 difference in it moves the next crop by a rounded px
            net.head.size.weight.mul_(0.05)
            net.head.size.bias.fill_(-1.4)
    path = tmp_path_factory.mktemp("centre") / "small.pth"
    save_checkpoint(net, path, metadata={"name": "small"}, tracker_config={"clip_margin": 3.0})
    return net, path


def test_checkpoint_round_trip_carries_the_crop_geometry(small_model):
    net, path = small_model
    loaded, overrides, _ = load_checkpoint(path)
    assert loaded.config == net.config
    origin = 8.0 if net.config.head == "nanotrack" else 0.0  # its maps begin half a 16 px cell into the crop
    assert overrides == {"exemplar_size": 96, "instance_size": 192, "template_factor": 2.0, "search_factor": 4.0,
                         "clip_margin": 3.0}
    tracker = SiamTracker(str(path), device="cpu")
    assert tracker.family == "centre" and isinstance(tracker.config, CentreTrackerConfig)
    assert (tracker.config.exemplar_size, tracker.config.instance_size, tracker.config.clip_margin) == (96, 192, 3.0)
    step = tracker._multi.step  # the maps' geometry is the network's, whatever the loop asks
    assert (step.map_origin, step.size_reference) == (origin, 192)
    maps = loaded(torch.rand(1, 3, 96, 96) * 255, torch.rand(1, 3, 192, 192) * 255)
    n = 11 if net.config.head == "nanotrack" else 12
    assert [tuple(m.shape) for m in maps] == [(1, 1, n, n), (1, 2, n, n), (1, 2, n, n)]
    with pytest.raises(ValueError, match="unknown CentreTrackerConfig option\\(s\\): lr"):
        SiamTracker(str(path), device="cpu", lr=0.3)
    for fixed in ("map_origin", "size_reference"):  # the network fixes them: no loop setting can move them
        with pytest.raises(ValueError, match=f"unknown CentreTrackerConfig option\\(s\\): {fixed}"):
            SiamTracker(str(path), device="cpu", **{fixed: 0})


def test_checkpoints_that_stored_the_map_geometry_load_and_refuse_a_contradiction(small_model, tmp_path):
    """Checkpoints saved before the geometry moved to the network kept it among their loop settings (the shipped
    siamtrack_centre does): it agrees, so it is dropped; one that contradicts its network is malformed."""
    net, _ = small_model
    geometry = net.config.map_geometry()
    save_checkpoint(net, tmp_path / "old.pth", tracker_config={**geometry, "clip_margin": 3.0})
    assert load_checkpoint(tmp_path / "old.pth")[1]["clip_margin"] == 3.0
    assert "map_origin" not in load_checkpoint(tmp_path / "old.pth")[1]
    save_checkpoint(net, tmp_path / "bad.pth", tracker_config={**geometry, "map_origin": geometry["map_origin"] + 4})
    with pytest.raises(WeightsError, match="bad.pth: its stored map_origin .* contradicts its network's"):
        load_checkpoint(tmp_path / "bad.pth")


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_multi_target_batches_equal_single_trackers(small_model, backend):
    net, path = small_model
    # the nanotrack head's batched depth-wise correlation (a matmul) and a single target's (a conv) round apart:
    # 1e-5 px in the box can move the next crop's rounded corner by a pixel, which moves the score by ~1e-3
    score_tolerance = 2e-3 if net.config.head == "nanotrack" else 1e-5
    clip = demo_clip(n_frames=6)
    frames = list(clip)
    boxes = [clip.truth(0), (30.0, 40.0, 50.0, 40.0)]
    multi = MultiTracker(str(path), device="cpu", backend=backend)
    ids = [multi.add(frames[0], b) for b in boxes]
    singles = [SiamTracker(str(path), device="cpu", backend=backend) for _ in boxes]
    for s, b in zip(singles, boxes):
        s.init(frames[0], b)
    for frame in frames[1:]:
        together = multi.update(frame)
        for tid, single in zip(ids, singles):
            alone = single.update(frame)
            np.testing.assert_allclose(together[tid].box, alone.box, atol=1e-3)
            assert together[tid].score == pytest.approx(alone.score, abs=score_tolerance)
            assert 0 < alone.score < 1


def test_backends_agree_and_the_lost_state_relocates(small_model):
    _, path = small_model
    clip = demo_clip(n_frames=6)
    frames = list(clip)
    runs = {}
    for backend in ("torch", "onnxruntime"):
        tracker = SiamTracker(str(path), device="cpu", backend=backend, lost_threshold=0.99, recover_threshold=0.99)
        tracker.init(frames[0], clip.truth(0))
        runs[backend] = [tracker.update(f) for f in frames[1:]]
    assert all(r.lost for r in runs["torch"])  # a random net never reaches 0.99: lost at once, searching wider
    for a, b in zip(runs["torch"], runs["onnxruntime"]):
        np.testing.assert_allclose(a.box, b.box, atol=1e-3)
        assert a.score == pytest.approx(b.score, abs=1e-4)


def test_relocate_maps_the_peak_back_to_the_frame():
    from tracker.families.centre import CentreStep

    class Target:
        cx, cy = 100.0, 50.0
    step = CentreStep(CentreTrackerConfig())
    score = np.zeros((1, 1, 24, 24), np.float32)
    score[0, 0, 3, 20] = 0.8
    offset = np.full((1, 2, 24, 24), 0.5, np.float32)
    # crop px (20.5 * 16, 3.5 * 16) = (328, 56) of a 384 px crop over 768 frame px: 2 frame px per crop px
    raw, cx, cy = step.relocate(Target(), (score, None, offset), 768.0, 384)
    assert (raw, cx, cy) == pytest.approx((0.8, 100 + (328 - 192) * 2, 50 + (56 - 192) * 2))


def _propose_for_a_20px_target(**loop):
    """(step proposing for a 20 x 20 target at (100, 100) in a 320 x 240 frame: 64 frame px searched at 128 px,
    score (0.1, with 0.9 at decode_by_hand's peak: centre (122, 98)), size (16 x 16 everywhere), offset maps)."""
    from tracker.families.centre import CentreStep

    class Target:
        box = (100.0, 100.0, 20.0, 20.0)
        frame_shape = (240, 320)
    geometry = {k: loop.pop(k) for k in ("map_origin", "size_reference") if k in loop}
    step = CentreStep(CentreTrackerConfig(exemplar_size=64, instance_size=128, search_factor=3.2, window_influence=0.0,
                                          **loop), **geometry)
    score = np.full((1, 1, 8, 8), 0.1, np.float32)
    score[0, 0, 2, 5] = 0.9
    size, offset = np.full((1, 2, 8, 8), 0.25, np.float32), np.full((1, 2, 8, 8), 0.5, np.float32)
    return lambda: step.propose(Target(), (score, size, offset), 128), score, size


@pytest.mark.parametrize("rate", [1.0, 0.25])
def test_size_rate_smooths_the_size_and_keeps_the_centre(rate):
    """decode_by_hand's peak (centre (122, 98), 16 x 16) proposed for a 20 x 20 target at (100, 100)."""
    propose, _, _ = _propose_for_a_20px_target(size_rate=rate)
    raw, cx, cy, w, h = propose()
    side = 20 + rate * (16 - 20)  # LightFC (rate 1) takes 16 as it is
    assert (raw, cx, cy, w, h) == pytest.approx((0.9, 114 + 7.5, 90 + 7.5, side, side), abs=1e-4)


def test_sizes_stay_fractions_of_the_trained_crop_in_a_smaller_search_crop():
    """A network trained on 256 px search crops tracking with 128 px ones: its size map's 0.25 is 64 crop px, not
    32 (twice decode_by_hand's 16 x 16 frame px); the centre, read from the cells, stays (121.5, 97.5)."""
    for reference, side in ((0, 16), (128, 16), (256, 32)):
        propose, _, _ = _propose_for_a_20px_target(size_reference=reference)
        assert propose() == pytest.approx((0.9, 114 + 7.5, 90 + 7.5, side, side), abs=1e-4)
    with pytest.raises(ValueError, match="size_reference must be >= 0"):
        _propose_for_a_20px_target(size_reference=-1)


@pytest.mark.parametrize("bad", [0.0, 1.5, "0.5;window_influence=2"])
def test_size_rate_out_of_range_or_not_a_number_is_a_one_line_error(bad):
    with pytest.raises(ValueError, match="size_rate must be"):
        CentreTrackerConfig.from_dict({"size_rate": bad})


@pytest.mark.parametrize("k", [0.0, 0.5])
def test_penalty_k_prefers_the_peak_that_keeps_the_targets_size(k):
    """A 0.9 peak that shrinks the 20 x 20 target to 16 x 16 against a 0.8 one that keeps it: at k 0.5 the first
    is worth 0.9 exp(-0.5 (20/16 - 1)) = 0.794; LightFC's loop (k 0) takes it."""
    propose, score, size = _propose_for_a_20px_target(penalty_k=k)
    score[0, 0, 5, 2] = 0.8
    size[0, :, 5, 2] = 20 / 64  # shares of the 64 frame px crop
    penalty = size_penalty(size[0], 64.0, 20.0, 20.0, 0.5)
    assert penalty[2, 5] == pytest.approx(np.exp(-0.5 * 0.25)) and penalty[5, 2] == pytest.approx(1.0)
    got = propose()
    want = (0.9, 114 + 7.5, 90 + 7.5, 16, 16) if k == 0 else (0.9, 88 + 9.5, 112 + 9.5, 20, 20)  # raw: the map's peak
    assert got == pytest.approx(want, abs=1e-4)


def test_size_penalty_counts_scale_and_aspect_changes_by_hand():
    size = np.array([[[0.5]], [[0.125]]], np.float32)  # 32 x 8 of a 64 px crop for a 16 x 16 target: same area
    # s = sqrt(256) / 16 = 1, r = 4 / 1: exp(-k (4 - 1))
    assert size_penalty(size, 64.0, 16.0, 16.0, 0.2)[0, 0] == pytest.approx(np.exp(-0.6))
    with pytest.raises(ValueError, match="penalty_k must be >= 0"):
        CentreTrackerConfig(penalty_k=-0.1)


# ---------------------------------------------------------------------------------------------------------
# LightFC's own graphs (skip without ../shared)


def lightfc_dir():
    if not (LIGHTFC / "lightfc_track.onnx").is_file():
        pytest.skip(f"LightFC reference graphs not found in {LIGHTFC} (CI provides ../shared)")
    return LIGHTFC


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_lightfc_graphs_reproduce_the_reference_boxes(backend):
    folder = lightfc_dir()
    tracker = SiamTracker(str(folder), device="cpu", backend=backend, doubt_rate=1e-9)  # score = LightFC's raw score
    assert tracker.family == "centre" and tracker.metadata["name"] == "lightfc"
    for seq in ("Crossing", "Bolt2", "Deer"):
        ref = np.loadtxt(folder / "boxes" / f"{seq}.txt", delimiter=",")
        cap = cv2.VideoCapture(str(SHARED / "data" / "sequences" / seq / "video.mp4"))
        ok, frame = cap.read()
        tracker.init(frame, tuple(ref[0, :4]))
        for i in range(1, len(ref)):
            ok, frame = cap.read()
            assert ok
            result = tracker.update(frame)
            np.testing.assert_allclose(result.box, ref[i, :4], rtol=0, atol=1e-3, err_msg=f"{seq} frame {i}")
            assert result.score == pytest.approx(ref[i, 4], abs=1e-4) and not result.lost


def test_broken_lightfc_folders_are_one_line(tmp_path):
    (tmp_path / "lightfc_track.onnx").write_bytes(b"not a graph")
    with pytest.raises(WeightsError, match="lacks lightfc_template.onnx; pass the folder holding"):
        load_checkpoint(tmp_path)
    (tmp_path / "lightfc_template.onnx").write_bytes(b"nor this")
    with pytest.raises(WeightsError, match="cannot read .*lightfc_track.onnx as an ONNX model") as err:
        SiamTracker(str(tmp_path / "lightfc_track.onnx"), device="cpu")
    assert "\n" not in str(err.value)


def test_bench_runs_lightfc_as_a_peer(tmp_path, capsys):
    from itertools import islice

    from tracker.cli import main
    from tracker.datasets import load_dataset, write_sequence
    folder = lightfc_dir()
    (seq,) = load_dataset(SHARED / "data" / "sequences", names=["Crossing"])
    write_sequence(tmp_path / "seqs" / "clip", islice(seq.frames(), 10), seq.boxes[:10])
    out = tmp_path / "out"
    assert main(["bench", str(tmp_path / "seqs"), "--trackers", "lightfc,kcf", "--out", str(out), "--no-progress",
                 "--lightfc-dir", str(folder)]) == 0
    results = json.loads((out / "results.json").read_text())["trackers"]
    assert results["lightfc"]["status"] == "ok" and results["lightfc"]["auc"] > 0.6, results["lightfc"]
    boxes = np.loadtxt(out / "boxes" / "lightfc" / "clip.txt", delimiter=",", usecols=(0, 1, 2, 3))
    (clip,) = load_dataset(tmp_path / "seqs")  # the clip as written (re-encoded), tracked directly
    frames = list(clip.frames())
    tracker = SiamTracker(str(folder), device="cpu")
    tracker.init(frames[0], clip.boxes[0])
    direct = [clip.boxes[0]] + [tracker.update(f).box for f in frames[1:]]
    np.testing.assert_allclose(boxes, direct, atol=1e-3)
    assert main(["bench", str(tmp_path / "seqs"), "--trackers", "lightfc,kcf", "--out", str(tmp_path / "o2"),
                 "--no-progress"]) == 0
    assert "lightfc (not run: pass --lightfc-dir FOLDER (the folder with lightfc_template.onnx" in capsys.readouterr().out


class _Settings:
    """Stands for the settings object pytracking-style trainers pickle beside the weights."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this with plain pickle would create the marker file
        return (open, (self.marker, "w"))


def test_the_official_trainers_full_checkpoint_loads_and_runs_none_of_its_objects(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "lightfc_ep0400.pth.tar"
    torch.save({"epoch": 400, "net_type": "LightFC", "net": official_state(1), "settings": _Settings(str(marker)),
                "stats": {"train": {"Loss/total": _Settings(str(marker))}}, "optimizer": {"state": {}}}, path)
    with pytest.raises(Exception):  # what weights-only loading alone says about such a file
        torch.load(path, weights_only=True)
    torch.load(path, weights_only=False)  # what a plain load does: it runs the file's code
    assert marker.exists()
    marker.unlink()
    net, _, meta = load_checkpoint(path)
    assert meta["source"] == "lightfc-checkpoint" and isinstance(net, CentreSiameseNet)
    assert not marker.exists()
    torch.testing.assert_close(net.backbone.features[0][0].weight, official_state(1)["backbone.features.0.0.weight"])


def test_the_shipped_centre_model_tracks_the_demo_clip_on_both_backends():
    """siamtrack_centre (weights/, no ../shared): its registry entry, the nanotrack head's geometry and loop, and
    the synthetic clip tracked (mean IoU 0.82 when shipped) the same on ONNX Runtime and torch."""
    clip = demo_clip(n_frames=80)
    frames = list(clip)
    truth = np.array([clip.truth(t) for t in range(1, len(frames))], float)
    boxes = {}
    for backend in ("onnxruntime", "torch"):
        tracker = SiamTracker("siamtrack_centre", device="cpu", backend=backend)
        c = tracker.config
        step = tracker._multi.step
        assert (tracker.family, c.instance_size, step.map_origin, step.size_reference, c.size_rate, c.penalty_k) == (
            "centre", 256, 8.0, 256, 0.25, 0.5)
        tracker.init(frames[0], clip.truth(0))
        boxes[backend] = np.array([tracker.update(f).box for f in frames[1:]])
    assert iou(boxes["onnxruntime"], truth).mean() > 0.75
    np.testing.assert_allclose(boxes["onnxruntime"], boxes["torch"], atol=0.05)
