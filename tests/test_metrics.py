"""Metrics on hand-computed cases (see the module docstring of tracker.evaluation.metrics)."""
import math

import numpy as np
import pytest

from tracker.evaluation.metrics import (centre_error, evaluated_frames, iou, normalised_centre_error, score_sequence,
                                        summarise)

NAN4 = [np.nan] * 4


def test_iou_hand_cases():
    gt = np.array([[0, 0, 10, 10]] * 4, float)
    pred = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 10, 10], NAN4], float)
    out = iou(pred, gt)
    assert out[0] == pytest.approx(1.0, abs=1e-12)
    assert out[1] == pytest.approx(50 / 150)
    assert out[2] == 0.0
    assert out[3] == 0.0  # no prediction counts as a miss


def test_centre_errors():
    gt = np.array([[0, 0, 10, 20], [0, 0, 10, 20]], float)
    pred = np.array([[3, 4, 10, 20], NAN4], float)
    assert centre_error(pred, gt)[0] == pytest.approx(5.0)
    assert math.isinf(centre_error(pred, gt)[1])
    assert normalised_centre_error(pred, gt)[0] == pytest.approx(math.hypot(0.3, 0.2))


# Evaluated frames 1-4 (frame 0 is the init box, frame 5 has absent ground truth):
#   IoU  : 1, 45/155 = 0.2903, 0, 0.685          centre error : 0, 5.5, 28.28, 1.575 px
#   normalised centre error : 0, 0.55, 2.83, 0.1575
GT = np.array([[0, 0, 10, 10]] * 5 + [NAN4], float)
PRED = np.array([[90, 90, 5, 5], [0, 0, 10, 10], [5.5, 0, 10, 10], [20, 20, 10, 10], [0, 0, 10, 6.85], [50, 50, 3, 3]])


def test_score_sequence_hand_computed():
    s = score_sequence(PRED, GT)
    assert s.frames == 4
    # success: IoU > t holds for 3 frames at t = 0..0.25 (6 thresholds), 2 at 0.30..0.65 (8), 1 at 0.70..0.95 (6), 0 at 1
    expected_curve = [0.75] * 6 + [0.5] * 8 + [0.25] * 6 + [0.0]
    assert s.success_curve == pytest.approx(expected_curve)
    assert s.auc == pytest.approx(10 / 21)
    assert s.precision == pytest.approx(0.75)
    assert s.precision_curve[0] == pytest.approx(0.25) and s.precision_curve[2] == pytest.approx(0.5)
    assert s.precision_curve[6] == pytest.approx(0.75) and s.precision_curve[29] == pytest.approx(1.0)
    # normalised: error <= t for 1 frame at t = 0..0.15 (16 thresholds), 2 at 0.16..0.50 (35)
    assert s.norm_precision == pytest.approx((16 * 0.25 + 35 * 0.5) / 51)
    assert s.ao == pytest.approx((1 + 45 / 155 + 0 + 0.685) / 4)
    assert (s.sr50, s.sr75) == (0.5, 0.25)


def test_got10k_compat_counts_frame0_as_ground_truth():
    s = score_sequence(PRED, GT, got10k_compat=True)
    assert s.frames == 5
    assert s.success_curve == pytest.approx([0.8] * 6 + [0.6] * 8 + [0.4] * 6 + [0.0])
    assert s.precision == pytest.approx(0.8)
    assert s.ao == pytest.approx((2 + 45 / 155 + 0.685) / 5)


def test_evaluated_frames_excludes_frame0_and_absent():
    assert evaluated_frames(GT).tolist() == [False, True, True, True, True, False]
    assert evaluated_frames(GT, skip_first=False).tolist() == [True] * 5 + [False]


def test_score_sequence_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="must both be"):
        score_sequence(PRED[:3], GT)


def test_summarise_means_curves_over_sequences_and_pools_ao_over_frames():
    gt = np.array([[0, 0, 10, 10]] * 4, float)
    perfect = score_sequence(gt[:2], gt[:2])                         # 1 frame, IoU 1
    missed = score_sequence(np.array([[0, 0, 10, 10]] + [[50, 50, 10, 10]] * 3, float), gt)  # 3 frames, IoU 0
    total = summarise([perfect, missed])
    assert total.auc == pytest.approx((20 / 21 + 0) / 2)      # mean over sequences
    assert total.precision == pytest.approx(0.5)
    assert total.ao == pytest.approx(0.25)                    # pooled: 1 of 4 frames
    assert total.sr50 == pytest.approx(0.25)
    assert total.frames == 4
