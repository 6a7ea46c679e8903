"""Lost-flag precision/recall, the confidence's ROC AUC and VOT-LT tracking Pr/Re/F on hand-computed cases
(see the module docstring of tracker.evaluation.lost_metrics)."""
import math

import numpy as np
import pytest

from tracker.datasets import Sequence
from tracker.evaluation.lost_metrics import dataset_report, outcome, roc_auc, sequence_report, thresholds
from tracker.evaluation.report import markdown, tracker_results
from tracker.evaluation.runner import SequenceRun, save_run

BOX = [0, 0, 10, 10]
NAN4 = [np.nan] * 4


def _seq_a():
    """Frames 1-4: IoU 1, IoU 1/3 (shifted half a width), target absent, IoU 0 -> failures on frames 3 and 4."""
    gt = np.array([BOX, BOX, BOX, NAN4, BOX], float)
    boxes = np.array([BOX, BOX, [5, 0, 10, 10], BOX, [20, 20, 10, 10]], float)
    scores = np.array([np.nan, 0.9, 0.4, 0.1, 0.4])
    lost = np.array([False, False, True, True, False])
    return boxes, scores, lost, gt


def _seq_b():
    """Frames 1-2 on the target (IoU 1), scores 1.0 and 0.5, never lost: no failure."""
    gt = np.array([BOX] * 3, float)
    return gt.copy(), np.array([np.nan, 1.0, 0.5]), np.zeros(3, bool), gt


def test_failure_frames_exclude_frame_0_and_count_absence_and_zero_overlap():
    o = outcome(*_seq_a())
    assert o.overlap == pytest.approx([1, 1 / 3, 0, 0])
    assert o.present.tolist() == [True, True, False, True]
    assert o.failure.tolist() == [False, False, True, True]


def test_one_sequence_by_hand():
    r = sequence_report(outcome(*_seq_a()))
    # flagged frames 2 and 3, failures 3 and 4: one hit -> precision 1/2, recall 1/2
    assert (r["failure_frames"], r["lost_frames"], r["lost_precision"], r["lost_recall"]) == (2, 2, 0.5, 0.5)
    # failure scores {0.1, 0.4} vs good {0.9, 0.4}: 0.1 < both (2), 0.4 < 0.9 (1), 0.4 = 0.4 (1/2) -> 3.5 / 4
    assert r["score_roc_auc"] == 0.875
    # thresholds inf, 0.9, 0.4, 0.4, 0.1, -inf; N_g = 3 present frames; overlaps 1, 1/3, 0 (absent), 0
    #   inf: nothing predicted -> Pr 1, Re 0, F 0
    #   0.9: frame 1 -> Pr 1, Re 1/3, F = 2 (1/3) / (4/3) = 1/2
    #   0.4: frames 1, 2, 4 -> Pr (4/3) / 3 = 4/9, Re (4/3) / 3 = 4/9, F 4/9
    #   0.1 and -inf: all four -> Pr 1/3, Re 4/9, F = 8/21
    assert r["lt_f"] == pytest.approx(0.5) and r["lt_threshold"] == 0.9
    assert (r["lt_precision"], r["lt_recall"]) == pytest.approx((1.0, 1 / 3))


def test_dataset_pools_the_flag_and_roc_and_averages_pr_re_over_sequences():
    r = dataset_report([outcome(*_seq_a()), outcome(*_seq_b())])
    assert (r["failure_frames"], r["lost_frames"], r["lost_precision"], r["lost_recall"]) == (2, 2, 0.5, 0.5)
    # failure {0.1, 0.4} vs good {0.9, 0.4, 1.0, 0.5}: 0.1 -> 4, 0.4 -> 3 + 1/2; 7.5 / 8
    assert r["score_roc_auc"] == 0.9375
    # pooled thresholds inf, 1.0, 0.9, 0.5, 0.4, 0.4, 0.1, -inf; mean (Pr, Re) of a and b:
    #   1.0: a (1, 0), b (1, 1/2) -> (1, 1/4), F 0.4;  0.9: (1, (1/3 + 1/2) / 2 = 5/12), F 10/17
    #   0.5: a (1, 1/3), b (1, 1) -> (1, 2/3), F 0.8;  0.4: (13/18, 13/18), F 13/18;  0.1: (2/3, 13/18), F 0.693
    assert r["lt_f"] == pytest.approx(0.8) and r["lt_threshold"] == 0.5
    assert (r["lt_precision"], r["lt_recall"]) == pytest.approx((1.0, 2 / 3))


def test_undefined_values_are_none_not_numbers():
    boxes, scores, lost, gt = _seq_b()
    r = sequence_report(outcome(boxes, np.full(3, np.nan), lost, gt))  # a peer without a confidence
    assert r["lost_precision"] is None and r["lost_recall"] is None  # never flagged, nothing failed
    assert r["score_roc_auc"] is None and r["lt_f"] is None and r["lt_threshold"] is None
    assert dataset_report([])["lt_f"] is None


def test_roc_auc_ties_count_half_and_perfect_separation_is_one():
    failure = np.array([True, False, True, False])
    assert roc_auc(np.full(4, 0.7), failure) == 0.5
    assert roc_auc(np.array([0.1, 0.9, 0.2, 0.8]), failure) == 1.0
    assert roc_auc(np.array([0.9, 0.1, 0.8, 0.2]), failure) == 0.0
    assert roc_auc(np.array([0.1, 0.9]), np.array([True, True])) is None


def test_thresholds_are_the_vot_toolkits_quantiles():
    scores = np.arange(200) / 200
    taus = thresholds(np.concatenate([scores, [np.nan]]))
    # 98 quantiles: delta = 200 // 98 = 2, indices round(linspace(2, 198, 98)) of the descending scores
    assert len(taus) == 100 and taus[0] == math.inf and taus[-1] == -math.inf
    assert taus[1] == 197 / 200 and taus[-2] == 1 / 200
    assert np.all(np.diff(taus[1:-1]) < 0)
    assert thresholds(np.array([0.3, 0.7])).tolist() == [math.inf, 0.7, 0.3, -math.inf]


def test_a_run_that_does_not_cover_the_ground_truth_is_refused():
    boxes, scores, lost, gt = _seq_a()
    with pytest.raises(ValueError, match="cannot cover 5 ground-truth rows"):
        outcome(boxes[:3], scores[:3], lost[:3], gt)


def test_results_json_and_md_carry_the_new_keys(tmp_path):
    seqs = [Sequence("a", _seq_a()[3]), Sequence("b", _seq_b()[3])]
    for seq, (boxes, scores, lost, _) in zip(seqs, (_seq_a(), _seq_b())):
        save_run(tmp_path, "t", seq.name, SequenceRun(boxes, scores, lost))
    entry = tracker_results("t", seqs, tmp_path)
    assert entry["sequences"]["a"]["lost_precision"] == 0.5 and entry["sequences"]["a"]["score_roc_auc"] == 0.875
    assert entry["sequences"]["b"]["lost_recall"] is None and entry["sequences"]["b"]["lt_f"] == pytest.approx(1.0)
    assert entry["score_roc_auc"] == 0.9375 and entry["lt_f"] == pytest.approx(0.8)
    info = {"sequences": ["a", "b"], "split_of": {}, "frame_0": "excluded", "no_ground_truth": [],
            "partial_ground_truth": []}
    md = markdown({"info": info, "trackers": {"t": entry}})
    assert "| t | 2 | 2 | 0.500 | 0.500 | 0.938 | 1.000 | 0.667 | 0.800 | 0.500 |" in md
    assert "| a | 0.500 / 0.500 / 0.875 / 0.500 |" in md and "| b | - / - / - / 1.000 |" in md
