"""Issue 7: bad frames/boxes/weights one by one, lost-and-recover on generated clips, property-based
tests over random inputs, and a long stream whose memory stays flat."""
import gc
import json
import math
import shutil
import tracemalloc
import warnings

import numpy as np
import psutil
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker import BoxError, DeviceError, FrameError, SiamTracker, WeightsError
from tracker.config import ModelConfig
from tracker.evaluation.metrics import iou
from tracker.models import SiameseNet, save_checkpoint
from tracker.models.checkpoints import file_sha256
from tracker.streaming import track
from tracker.synthetic import gap_clip, stream

# the lost-state settings recommended for the shipped models (confidence is relative, so model-independent)
LOST = {"lost_threshold": 0.5, "recover_threshold": 0.8}


def _one_line(exc_info):
    message = str(exc_info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.fixture(scope="module")
def scene():
    clip = gap_clip("leave", gap=2, width=160, height=120, lead=1, tail=0)
    return [clip.render(t)[0] for t in range(6)], clip.truth(0)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A random-init 15%-width checkpoint: enough for plumbing tests, which need no trained model."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random.pth"
    save_checkpoint(SiameseNet(ModelConfig(width=0.15)), path)
    return str(path)


@pytest.fixture(scope="module")
def random_tracker(random_weights):
    return SiamTracker(random_weights, device="cpu")


# ---------------------------------------------------------------- frames
def _track(tracker, frames, box):
    tracker.init(frames[0], box)
    return [tracker.update(f) for f in frames[1:]]


@pytest.mark.parametrize("convert", [
    pytest.param(lambda f: f.mean(axis=2).astype(np.uint8), id="gray HxW"),
    pytest.param(lambda f: f.mean(axis=2, keepdims=True).astype(np.uint8), id="gray HxWx1"),
])
def test_grayscale_frames_track_like_their_bgr_copy(random_tracker, scene, convert):
    frames, box = scene
    gray = [convert(f) for f in frames]
    as_bgr = [np.repeat(g.reshape(*g.shape[:2], 1), 3, axis=2) for g in gray]
    assert _track(random_tracker, gray, box) == _track(random_tracker, as_bgr, box)


@pytest.mark.parametrize("convert", [
    pytest.param(lambda f: np.dstack([f, np.full(f.shape[:2], 7, np.uint8)]), id="BGRA"),
    pytest.param(lambda f: f.astype(np.float32) / 255.0, id="float 0-1"),
    pytest.param(lambda f: f.astype(np.float64), id="float 0-255"),
    pytest.param(lambda f: f.astype(np.uint16) * 257, id="16-bit"),
    pytest.param(lambda f: np.asfortranarray(f), id="Fortran order"),
    pytest.param(lambda f: np.ascontiguousarray(np.pad(f, ((0, 0), (0, 0), (0, 1)))[..., :3]), id="padded view copy"),
    pytest.param(lambda f: np.pad(f, ((0, 0), (0, 0), (0, 1)))[..., :3], id="non-contiguous view"),
])
def test_unambiguous_frame_formats_track_exactly_like_bgr_uint8(random_tracker, scene, convert):
    frames, box = scene
    assert _track(random_tracker, [convert(f) for f in frames], box) == _track(random_tracker, frames, box)


@pytest.mark.parametrize("frame, message", [
    (np.zeros((4, 4, 3), np.uint8), "frame is 4x4 px; frames must be at least 8x8"),
    (np.zeros((32, 32, 2), np.uint8), r"frame has shape \(32, 32, 2\); expected HxW \(gray\), HxWx3 \(BGR\) or HxWx4"),
    (np.full((32, 32, 3), np.nan, np.float32), "frame contains NaN or infinite values; pass a finite image"),
    (np.full((32, 32, 3), 300.0), r"float frame has values in \[300, 300\]; expected \[0, 1\] or \[0, 255\]"),
    (np.zeros((32, 32, 3), np.int64), "frame dtype int64 is not supported; pass uint8, uint16 or float images"),
    ([[0, 1], [2, 3]], "frame must be a numpy array .* got list"),
])
def test_ambiguous_frames_are_refused_clearly(random_tracker, frame, message):
    with pytest.raises(FrameError, match=message) as info:
        random_tracker.init(frame, (1, 1, 4, 4))
    _one_line(info)


def test_tiny_frames_track(random_tracker):
    frames = [np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8) for i in range(3)]
    for result in _track(random_tracker, frames, (4, 4, 6, 6)):
        assert all(math.isfinite(v) for v in result.box) and result.box[2] > 0


def test_frame_size_change_midstream(random_tracker, scene):
    frames, box = scene
    random_tracker.init(frames[0], box)
    with pytest.raises(FrameError, match="frame size changed from 160x120 to 80x60 mid-stream") as info:
        random_tracker.update(frames[1][::2, ::2])
    _one_line(info)


# ---------------------------------------------------------------- boxes
@pytest.mark.parametrize("box, message", [
    ((1, 2, 3), r"box must have 4 values x,y,w,h; got 3"),
    ("1,2,x,4", "box values must be numbers x,y,w,h; got '1,2,x,4'"),
    (5, "box must be 4 numbers x,y,w,h; got 5"),
    ((1, 2, float("nan"), 4), "box values must be finite numbers"),
    ((1, 2, float("inf"), 4), "box values must be finite numbers"),
    ((10, 10, 0, 5), "box width and height must be positive; got w=0, h=5"),
    ((10, 10, 5, -5), "box width and height must be positive; got w=5, h=-5"),
    ((200, 10, 20, 20), "box 200,10,20,20 lies entirely outside the 160x120 frame; give a box on the target"),
    ((10, 10, 1.5, 20), "box 1.5x20 px is too small to track; draw a box at least 2 px on each side"),
    ((159, 10, 20, 20), "overlaps the 160x120 frame by less than 2 px"),
])
def test_bad_boxes_are_refused(random_tracker, scene, box, message):
    with pytest.raises(BoxError, match=message) as info:
        random_tracker.init(scene[0][0], box)
    _one_line(info)


@pytest.mark.parametrize("box, clipped", [((-10, 20, 40, 30), (0, 20, 30, 30)),
                                          ((-5, -5, 500, 500), (0, 0, 160, 120))])  # larger than the frame
def test_boxes_past_the_frame_are_clipped_with_a_warning(random_tracker, scene, box, clipped):
    with pytest.warns(UserWarning, match="extends past the 160x120 frame; clipped to " + ",".join(map(str, clipped))):
        random_tracker.init(scene[0][0], box)
    assert random_tracker.box == pytest.approx(clipped)


# ---------------------------------------------------------------- weights and device
def test_missing_and_corrupt_weights(tmp_path):
    with pytest.raises(WeightsError, match="checkpoint not found: .*none.pth") as info:
        SiamTracker(str(tmp_path / "none.pth"))
    _one_line(info)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(WeightsError, match="cannot read checkpoint .*bad.pth: corrupt, truncated") as info:
        SiamTracker(str(bad))
    _one_line(info)


def test_truncated_and_edited_checkpoints(tmp_path, random_weights):
    data = open(random_weights, "rb").read()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="corrupt, truncated"):
        SiamTracker(str(cut))
    obj = torch.load(random_weights, weights_only=True)
    obj["state_dict"]["head.bias"] += 1.0
    torch.save(obj, tmp_path / "edited.pth")
    with pytest.raises(WeightsError, match="weights do not match their stored sha256"):
        SiamTracker(str(tmp_path / "edited.pth"))


def test_checkpoint_of_another_architecture_lists_shapes(tmp_path, random_weights):
    obj = torch.load(random_weights, weights_only=True)
    obj["model_config"]["width"] = 0.3  # the weights are width 0.15
    torch.save(obj, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"does not fit the alexnet \(width 0.3\) architecture: shape mismatch "
                                           r"backbone.conv1.0.weight: expected \(28, 3, 11, 11\), found \(14, 3, 11, 11\)") as info:
        SiamTracker(str(tmp_path / "other.pth"))
    _one_line(info)


def test_shipped_model_with_a_wrong_sha256(tmp_path, monkeypatch, random_weights):
    shutil.copy(random_weights, tmp_path / "m.pth")
    registry = {"default": "m", "models": {"m": {"file": "m.pth", "sha256": "0" * 64, "description": "test"}}}
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"shipped model 'm' .* fails its sha256 check .*; reinstall siamtrack"):
        SiamTracker("m")
    registry["models"]["m"]["sha256"] = file_sha256(tmp_path / "m.pth")
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    assert SiamTracker(device="cpu").metadata["name"] == "m"  # the default resolves through the same registry


def test_cuda_without_a_gpu_is_an_error_and_auto_falls_back(random_weights):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceError, match="device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto"):
        SiamTracker(random_weights, device="cuda")
    assert SiamTracker(random_weights, device="auto")._multi.engine.device.type == "cpu"


# ---------------------------------------------------------------- lost target and recovery
def _run_clip(tracker, clip):
    truth = clip.boxes
    results = []
    for t, frame in enumerate(clip):
        if t == 0:
            tracker.init(frame, truth[0])
        else:
            results.append(tracker.update(frame))
    boxes = np.array([truth[0]] + [r.box for r in results])
    lost = np.array([False] + [r.lost for r in results])
    hidden = np.flatnonzero(np.isnan(truth[:, 0]))
    return boxes, lost, hidden, truth


@pytest.mark.parametrize("kind, gap, speed", [("leave", 12, 6.0), ("occlude", 10, 4.0)])
def test_lost_during_the_gap_and_back_on_target_after(weights, kind, gap, speed):
    clip = gap_clip(kind, gap=gap, speed=speed, width=240, height=180, tail=15)
    tracker = SiamTracker(weights, device="cpu", **LOST)
    boxes, lost, hidden, truth = _run_clip(tracker, clip)
    first, last = hidden[0], hidden[-1]
    assert not lost[:first - 4].any()  # tracking normally while fully in view
    assert lost[first:last + 1].all()  # reported lost throughout the gap
    # the box did not drift while lost: it stays where the target was last seen
    assert np.ptp(boxes[first + 1:last + 1, :2], axis=0).max() < 1e-9
    ious = iou(boxes[last + 1:], truth[last + 1:])
    back = int(np.argmax(ious > 0.5))
    assert ious[back] > 0.5 and back <= 6  # re-detected within a few frames of its return
    assert ious[back:].min() > 0.5 and not lost[last + 1 + back:].any()  # and stays on it


def test_without_a_threshold_the_tracker_never_reports_lost(weights):
    clip = gap_clip("leave", gap=8, width=240, height=180, tail=0)
    _, lost, _, _ = _run_clip(SiamTracker(weights, device="cpu", lost_threshold=0.0), clip)
    assert not lost.any()


# ---------------------------------------------------------------- property-based
frames_and_boxes = st.tuples(st.integers(8, 160), st.integers(8, 160), st.integers(0, 2 ** 32 - 1)).flatmap(
    lambda whs: st.tuples(st.just(whs), st.floats(0, whs[0] - 3), st.floats(0, whs[1] - 3),  # >= 2.5 px inside
                          st.floats(2.5, 2 * whs[0]), st.floats(2.5, 2 * whs[1]),
                          st.sampled_from(["noise", "flat", "gradient", "blocks"]), st.integers(1, 4)))


def _image(kind, w, h, rng):
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "flat":
        return np.full((h, w, 3), rng.integers(0, 256), np.uint8)
    if kind == "gradient":
        return np.broadcast_to(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, w, 3)).copy()
    small = rng.integers(0, 256, (-(-h // 8), -(-w // 8), 3), dtype=np.uint8)  # ceil: never smaller than h x w
    return np.ascontiguousarray(np.kron(small, np.ones((8, 8, 1), np.uint8))[:h, :w])


@pytest.fixture(scope="module")
def lost_tracker(random_weights):
    """Random weights with the lost state on: a random net is unsure of everything, so both the
    tracking and the re-detection paths run."""
    return SiamTracker(random_weights, device="cpu", **LOST)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames_and_boxes)
def test_never_raises_on_valid_input_and_boxes_stay_finite(lost_tracker, case):
    (w, h, seed), x, y, bw, bh, kind, n = case
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boxes reaching past the frame are clipped with a warning
        lost_tracker.init(_image(kind, w, h, rng), (x, y, bw, bh))
    for _ in range(n):
        result = lost_tracker.update(_image(kind, w, h, rng))
        assert all(math.isfinite(v) for v in result.box) and result.box[2] > 0 and result.box[3] > 0
        assert 0.0 <= result.score <= 1.0 and isinstance(result.lost, bool)


# ---------------------------------------------------------------- long streams
def test_long_stream_memory_is_flat(weights):
    """Three leave-and-return cycles through the streaming API: after the first (warm-up) cycle no
    cache grows and the process does not either (tools/long_run.py runs the same for 100,000 frames)."""
    period = 80
    clip = stream(4 * period, size=64, period=period)
    results = track(clip, clip.truth(0), weights=weights, device="cpu", scale_num=1, **LOST)
    lost, rss, traced = 0, [], []
    tracemalloc.start()
    try:
        for i, result in enumerate(results, 1):
            lost += result.lost
            assert all(math.isfinite(v) for v in result.box)
            if i % period == 0:
                gc.collect()
                rss.append(psutil.Process().memory_info().rss)
                traced.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert lost > 10  # the lost state ran each cycle
    assert abs(rss[-1] - rss[1]) / rss[1] < 0.05, [r / 2 ** 20 for r in rss]
    assert traced[-1] - traced[1] < 256 * 1024, traced  # Python objects: no per-frame growth
