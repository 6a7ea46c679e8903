"""SiamTracker / MultiTracker contract and tracking on a generated moving target."""
import numpy as np
import pytest

from tracker import FrameError, SiamTracker, TrackResult
from tracker.config import TrackerConfig


def _scene(n=40, size=(240, 320), seed=0):
    """A textured 40x30 patch moving diagonally over a textured background; returns frames and truth."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    background = np.kron(background, np.ones((8, 8, 1), np.uint8))
    target = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    target = np.kron(target[::5, ::5], np.ones((5, 5, 1), np.uint8))[:30, :40]
    frames, boxes = [], []
    for i in range(n):
        x, y = 60 + 3 * i, 50 + 2 * i
        f = background.copy()
        f[y:y + 30, x:x + 40] = target
        frames.append(f)
        boxes.append((x, y, 40, 30))
    return frames, np.array(boxes, float)


def _iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_follows_a_moving_textured_target(weights, device):
    frames, truth = _scene()
    tracker = SiamTracker(weights, device=device)
    tracker.init(frames[0], truth[0])
    ious = []
    for frame, box in zip(frames[1:], truth[1:]):
        result = tracker.update(frame)
        assert isinstance(result, TrackResult) and len(result.box) == 4
        assert all(isinstance(v, float) for v in result.box) and 0.0 <= result.score <= 1.0
        ious.append(_iou(result.box, box))
    assert np.mean(ious) > 0.6 and min(ious) > 0.3


def test_config_overrides_and_errors(weights):
    tracker = SiamTracker(weights, device="cpu", scale_num=5, window_influence=0.3)
    assert tracker.config.scale_num == 5 and tracker.config.window_influence == 0.3
    with pytest.raises(ValueError, match="unknown TrackerConfig option\\(s\\): scale_nums"):
        SiamTracker(weights, device="cpu", scale_nums=5)
    with pytest.raises(RuntimeError, match="call init"):
        tracker.update(np.zeros((64, 64, 3), np.uint8))


def test_frame_size_change_is_refused(weights):
    frames, truth = _scene(n=2)
    tracker = SiamTracker(weights, device="cpu")
    tracker.init(frames[0], truth[0])
    with pytest.raises(FrameError, match="frame size changed from 320x240 to 160x120 mid-stream"):
        tracker.update(frames[1][::2, ::2])


def test_paper_defaults():
    c = TrackerConfig()
    assert (c.exemplar_size, c.instance_size, c.context, c.scale_num) == (127, 255, 0.5, 3)
    assert (c.scale_step, c.scale_penalty, c.scale_lr, c.response_size) == (1.0375, 0.9745, 0.59, 17)
    assert (c.response_up, c.window_influence, c.min_scale, c.max_scale) == (16, 0.176, 0.2, 5.0)
    assert c.scale_factors == pytest.approx([1 / 1.0375, 1.0, 1.0375])


def test_response_size_follows_the_search_crop_and_mismatches_are_refused():
    """A smaller search crop gives a smaller map; a stale response_size would silently shift every box."""
    assert TrackerConfig(instance_size=223).response_size == 13
    assert TrackerConfig(instance_size=191).response_size == 9
    with pytest.raises(ValueError, match="response_size 17 does not match instance_size 223"):
        TrackerConfig(instance_size=223, response_size=17)
    with pytest.raises(ValueError, match="multiple of total_stride"):
        TrackerConfig(instance_size=224)


def test_template_refresh_mixes_a_confident_exemplar_into_the_first(weights):
    """template_weight w: every template_every confident frames the kernel becomes (1-w) first + w latest."""
    from tracker.synthetic import demo_clip
    clip = demo_clip(n_frames=8)
    frames = list(clip)
    tracker = SiamTracker(weights, device="cpu", template_weight=0.25, template_every=3, template_gate=0.0)
    tracker.init(frames[0], clip.truth(0))
    multi, tid = tracker._multi, tracker._id
    first = np.array(multi._first_kernels[tid])
    kernels = []
    for frame in frames[1:7]:
        tracker.update(frame)
        kernels.append(np.array(multi._kernels[tid]))
    assert [np.array_equal(k, first) for k in kernels] == [True, True, False, False, False, False]
    assert np.array_equal(kernels[3], kernels[2]) and not np.array_equal(kernels[5], kernels[4])
    target = multi._targets[tid]
    target.exemplar_into(frames[6], multi._exemplar[0])
    latest = np.array(multi.engine.embed(multi._exemplar))
    np.testing.assert_allclose(kernels[5], 0.75 * first + 0.25 * latest, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="template_weight must be in \\[0, 1\\)"):
        SiamTracker(weights, device="cpu", template_weight=1.0)
