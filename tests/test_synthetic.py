"""Generated clips: deterministic pixels, exact truth, exact hidden stretches."""
import numpy as np
import pytest

from tracker.synthetic import Cover, Key, Pose, SyntheticClip, demo_clip, gap_clip, stream


def _centre(box):
    return box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2


def test_same_seed_same_pixels_other_seed_other_pixels():
    a, b, c = demo_clip(seed=3, n_frames=20), demo_clip(seed=3, n_frames=20), demo_clip(seed=4, n_frames=20)
    assert np.array_equal(a.render(11)[0], b.render(11)[0])
    assert np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.render(11)[0], c.render(11)[0])


def test_frames_are_bgr_uint8_of_the_requested_size():
    clip = demo_clip(n_frames=5, width=200, height=100)
    frames = list(clip)
    assert len(frames) == len(clip) == 5
    assert all(f.shape == (100, 200, 3) and f.dtype == np.uint8 for f in frames)


def test_truth_box_is_centred_on_the_pose_and_scales_with_it():
    keys = [Key(0, Pose(100.0, 80.0)), Key(10, Pose(140.0, 60.0, scale=1.5))]
    clip = SyntheticClip(240, 160, keys, object_size=40, smooth=False)
    box0, box10 = clip.truth(0), clip.truth(10)
    assert _centre(box0) == pytest.approx((100.0, 80.0), abs=0.6)
    assert _centre(box10) == pytest.approx((140.0, 60.0), abs=0.6)
    # ellipse with semi-axes 19 x 15 px: about 39 x 31 px at scale 1, 1.5x that at scale 1.5
    assert box0[2:] == pytest.approx((39, 31), abs=1.5)
    assert box10[2:] == pytest.approx((58.5, 46.5), abs=1.5)
    # constant speed: halfway in time is halfway in space
    assert _centre(clip.truth(5)) == pytest.approx((120.0, 70.0), abs=0.6)


def test_the_object_pixels_are_inside_the_truth_box():
    clip = SyntheticClip(160, 120, [Key(0, Pose(80.0, 60.0, angle=30.0))], seed=1, object_size=36)
    frame, (x, y, w, h) = clip.render(0)
    changed = np.any(frame != np.round(clip.background).astype(np.uint8), axis=2)
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    assert (cols[0], rows[0]) == pytest.approx((x, y), abs=1)
    assert (cols[-1], rows[-1]) == pytest.approx((x + w - 1, y + h - 1), abs=1)


@pytest.mark.parametrize("kind", ["leave", "occlude"])
@pytest.mark.parametrize("gap", [1, 7, 15])
def test_gap_clips_hide_the_object_for_exactly_gap_frames(kind, gap):
    clip = gap_clip(kind, gap=gap, speed=4.0, width=200, height=150)
    hidden = np.flatnonzero(np.isnan(clip.boxes[:, 0]))
    assert len(hidden) == gap and hidden[-1] - hidden[0] == gap - 1
    assert hidden[0] > 10 and len(clip) - hidden[-1] > 20  # seen before and long after
    assert clip.truth(hidden[0] - 1) is not None and clip.truth(hidden[-1] + 1) is not None


def test_leave_clip_returns_to_where_it_started():
    clip = gap_clip("leave", gap=5)
    assert clip.truth(0) == clip.truth(len(clip) - 1)
    assert clip.truth(0)[0] == pytest.approx(160 - 19.5 - 4, abs=2)  # centred in the 320 px frame


def test_occluder_slides_in_then_covers_then_leaves():
    cover = Cover((10, 0, 50, 20), start=5, stop=8, slide=3)
    assert cover.span(1) is None and cover.span(11) is None
    assert cover.span(2) == (10, 20) and cover.span(4) == (10, 40)
    assert [cover.span(t) for t in (5, 6, 7)] == [(10, 50)] * 3
    assert cover.span(8) == (20, 50) and cover.span(10) == (40, 50)


def test_demo_clip_moves_turns_scales_and_is_partly_occluded():
    clip = demo_clip(seed=0)
    poses = [clip.pose(t) for t in range(len(clip))]
    angles, scales = [p.angle for p in poses], [p.scale for p in poses]
    assert max(angles) - min(angles) > 20 and max(scales) / min(scales) > 1.3
    boxes = clip.boxes
    assert not np.isnan(boxes).any()  # partly, never fully, occluded
    (cover,) = clip.covers
    t = (cover.start + cover.stop) // 2
    x0, _, x1, _ = cover.rect
    bx, _, bw, _ = boxes[t]
    assert bx < x1 < bx + bw  # the occluder edge cuts through the object


def test_stream_is_periodic_and_the_object_leaves_each_period():
    clip = stream(1000, size=64, period=200)
    assert len(clip) == 1000
    assert np.array_equal(clip.render(17)[0], clip.render(817)[0])
    hidden = [t for t in range(200) if clip.truth(t) is None]
    assert 10 <= len(hidden) <= 50 and min(hidden) > 100  # away during the second half of the period
    assert clip.render(0)[0].shape == (64, 64, 3)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="kind must be 'leave' or 'occlude'"):
        gap_clip("vanish")
    with pytest.raises(ValueError, match="does not fit"):
        gap_clip("occlude", gap=60, speed=8.0)
    with pytest.raises(ValueError, match="keys must start at t=0"):
        SyntheticClip(64, 64, [Key(3, Pose(1, 1))])
