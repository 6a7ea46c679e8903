"""tools/lost_signals.py: its replay of recorded frames reproduces the tracker's own lost flags, and its threshold
choice (in-sample and leave-one-sequence-out) on hand-made recordings."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from tracker.datasets import load_dataset, write_sequence
from tracker.synthetic import gap_clip

TOOL = Path(__file__).resolve().parents[1] / "tools" / "lost_signals.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("lost_signals", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_replay_reproduces_the_flags_the_tracker_reported(tool, tmp_path):
    clip = gap_clip("leave", gap=12, width=240, height=180)
    write_sequence(tmp_path / "leave", list(clip), clip.boxes)
    seq = load_dataset(tmp_path)[0]
    rec = tool.record(None, seq, doubt_threshold=0.3, spread_threshold=0.45)
    doubt, lost, _ = tool.replay(rec, "doubt", 0.05)  # the shipped doubt_rate
    spread, _, failure = tool.replay(rec, "spread", 0.5)
    flag = rec["flag"][1:]
    assert flag.any() and not flag.all() and failure.any()
    np.testing.assert_array_equal(flag, lost | (doubt >= 0.3) | (spread >= 0.45))


def _recording(good: list[bool], absent: list[bool]) -> dict[str, np.ndarray]:
    """Frames 0..n: the box always on the ground truth where present; a one-cell map on ``good`` frames (spread 0),
    a flat one elsewhere (spread 1)."""
    n = len(good) + 1
    maps = np.zeros((n, 4, 4), np.float32)
    maps[:, 1, 2] = 1.0
    for t, g in enumerate(good, 1):
        if not g:
            maps[t] = 0.5
    boxes = np.tile([10.0, 10.0, 20.0, 20.0], (n, 1))
    gt = boxes.copy()
    gt[1:][np.array(absent)] = np.nan
    return {"maps": maps, "confidence": np.ones(n), "boxes": boxes, "lost_state": np.zeros(n, bool),
            "radius": np.ones(n, np.int32), "gt": gt}


def test_the_threshold_is_the_lowest_with_the_best_recall_at_the_precision_and_held_out_counts_pool(tool, tmp_path):
    # a: two good frames, then the target is absent for two frames and the map goes flat (both flagged right)
    np.savez(tmp_path / "a.npz", **_recording([True, True, False, False], [False, False, True, True]))
    # b: the target stays, one flat map: a false flag at any threshold
    np.savez(tmp_path / "b.npz", **_recording([True, True, True, False], [False] * 4))
    got = tool.choose(tmp_path, "spread", 1.0, 0.6)
    # every threshold in (0, 1] flags the 3 flat frames: precision 2/3, recall 2/2; 0.005 is the lowest of them
    assert got["threshold"] == 0.005 and got["precision"] == pytest.approx(2 / 3) and got["recall"] == 1.0
    # held out: b alone has no failure (no threshold reaches 0.6: the highest, 1.0, still flags a's flat frames);
    # a alone picks 0.005, which flags b's flat frame: 2 right of 3 flagged, both failures caught
    assert got["loso_precision"] == pytest.approx(2 / 3) and got["loso_recall"] == 1.0 and got["sequences"] == 2
    strict = tool.choose(tmp_path, "spread", 1.0, 0.9)  # out of reach: the highest threshold, nothing better
    assert strict["threshold"] == 1.0 and math.isclose(strict["precision"], 2 / 3)


def test_ceiling_splits_failures_by_kind_and_bounds_a_score_threshold_by_hand(tool, tmp_path):
    from tracker.datasets import Sequence
    target = [10.0, 10.0, 20.0, 20.0]
    gt = np.array([target] * 5 + [[np.nan] * 4])
    boxes = np.array([target, target, target,
                      [30.0, 10.0, 20.0, 20.0],    # touching the target: IoU 0, centres 1 target size apart (near)
                      [110.0, 10.0, 20.0, 20.0],   # 5 sizes away (far)
                      target])                     # the target is absent
    folder = tmp_path / "boxes" / "t"
    folder.mkdir(parents=True)
    np.savetxt(folder / "s.txt", boxes, delimiter=",")
    np.savetxt(folder / "s.score.txt", [[np.nan, 0], [0.9, 0], [0.3, 0], [0.2, 0], [0.4, 1], [0.1, 1]], delimiter=",")
    got = tool.ceiling(tmp_path, "t", [Sequence("s", gt)], 0.8)
    assert (got["failures"], got["frames"], got["absent"], got["near"], got["far"]) == (3, 5, 1, 1, 1)
    assert (got["score_good"], got["score_near"], got["score_far"]) == pytest.approx((0.6, 0.2, 0.4))
    assert got["flag_precision"] == 1.0 and got["flag_recall"] == pytest.approx(2 / 3)
    # scores ascending 0.1 F, 0.2 F, 0.3 good, 0.4 F, 0.9 good: at 0.8 the best cut flags two (2/3 of failures) ...
    assert got["score_bound_recall"] == pytest.approx(2 / 3)
    # ... at 0.75 the cut under 0.9 flags all three failures among four frames
    assert tool.ceiling(tmp_path, "t", [Sequence("s", gt)], 0.75)["score_bound_recall"] == 1.0
    # tied scores are flagged together: one failure and one good frame at 0.1 never reach 0.8
    assert tool.best_score_recall(np.array([0.1, 0.1]), np.array([True, False]), 0.8) == 0.0
    with pytest.raises(SystemExit, match="no saved boxes and scores of tracker 'u'"):
        tool.ceiling(tmp_path, "u", [Sequence("s", gt)], 0.8)
