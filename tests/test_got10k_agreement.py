"""Our metrics equal the got10k toolkit's for the same box files, and got10k experiments run offline.

Both modes are checked: got10k-compatible (frame 0 counted with the ground-truth box, as
``ExperimentOTB.report`` does) against ``ExperimentOTB.report``, and our default (frame 0 excluded)
against got10k's own metric functions on frames 1..N.
"""
import json

import cv2
import got10k.datasets.otb
import numpy as np
import pytest
from got10k.experiments import ExperimentGOT10k
from got10k.utils.metrics import center_error, rect_iou

from tracker.adapters import GOT10kTracker
from tracker.datasets import load_dataset
from tracker.evaluation.metrics import score_sequence, summarise
from tracker.evaluation.toolkit import OfflineExperimentOTB

SEQS = {"Biker": 9, "Car4": 7}  # OTB-2015 names: got10k's OTB only lists known sequences


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("got10k tried to download")
    monkeypatch.setattr(got10k.datasets.otb, "download", refuse)


def _truth(n, rng):
    xy = np.cumsum(rng.uniform(-3, 3, (n, 2)), axis=0) + 40
    wh = 20 + np.cumsum(rng.uniform(-0.5, 0.5, (n, 2)), axis=0)
    return np.round(np.hstack([xy, wh]), 1)


@pytest.fixture
def otb_root(tmp_path):
    rng = np.random.default_rng(7)
    root = tmp_path / "otb"
    for name, n in SEQS.items():
        (root / name / "img").mkdir(parents=True)
        for i in range(n):
            frame = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
            cv2.imwrite(str(root / name / "img" / f"{i + 1:04d}.jpg"), frame)
        np.savetxt(root / name / "groundtruth_rect.txt", _truth(n, rng), fmt="%.1f", delimiter=",")
    return root


def _write_predictions(result_dir, name, root, rng):
    """Noisy boxes (some far off, so curves are not trivial) in got10k's record format."""
    for seq in load_dataset(root):
        pred = seq.boxes + rng.normal(0, 6, seq.boxes.shape)
        pred[:, 2:] = np.abs(pred[:, 2:]) + 1
        pred[2] += 60
        path = result_dir / "OTB2015" / name / f"{seq.name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(path, pred, fmt="%.3f", delimiter=",")


def test_got10k_compatible_mode_equals_experiment_otb_report(otb_root, tmp_path):
    rng = np.random.default_rng(1)
    exp = OfflineExperimentOTB(otb_root, result_dir=tmp_path / "results", report_dir=tmp_path / "reports")
    for name in ("noisy_a", "noisy_b"):
        _write_predictions(tmp_path / "results", name, otb_root, rng)
    performance = exp.report(["noisy_a", "noisy_b"])
    sequences = load_dataset(otb_root)
    for name in ("noisy_a", "noisy_b"):
        ours = {}
        for seq in sequences:
            boxes = np.loadtxt(tmp_path / "results" / "OTB2015" / name / f"{seq.name}.txt", delimiter=",")
            ours[seq.name] = score_sequence(boxes, seq.boxes, got10k_compat=True)
            theirs = performance[name]["seq_wise"][seq.name]
            assert ours[seq.name].auc == pytest.approx(theirs["success_score"], abs=1e-6)
            assert ours[seq.name].precision == pytest.approx(theirs["precision_score"], abs=1e-6)
            assert ours[seq.name].success_curve == pytest.approx(theirs["success_curve"], abs=1e-12)
        total, overall = summarise(ours.values()), performance[name]["overall"]
        assert total.auc == pytest.approx(overall["success_score"], abs=1e-6)
        assert total.precision == pytest.approx(overall["precision_score"], abs=1e-6)
        assert 0.05 < total.auc < 0.95  # a non-trivial case
    # default mode differs: frame 0 excluded, and the two must not coincide on this data
    default = summarise(score_sequence(np.loadtxt(tmp_path / "results" / "OTB2015" / "noisy_a" / f"{s.name}.txt",
                                                  delimiter=","), s.boxes) for s in sequences)
    assert abs(default.auc - performance["noisy_a"]["overall"]["success_score"]) > 1e-3


def test_default_mode_equals_got10k_functions_without_frame0(otb_root, tmp_path):
    rng = np.random.default_rng(2)
    _write_predictions(tmp_path / "results", "noisy", otb_root, rng)
    exp = OfflineExperimentOTB(otb_root, result_dir=tmp_path / "results", report_dir=tmp_path / "reports")
    for seq in load_dataset(otb_root):
        boxes = np.loadtxt(tmp_path / "results" / "OTB2015" / "noisy" / f"{seq.name}.txt", delimiter=",")
        succ, prec = exp._calc_curves(rect_iou(boxes[1:], seq.boxes[1:]), center_error(boxes[1:], seq.boxes[1:]))
        ours = score_sequence(boxes, seq.boxes)
        assert ours.auc == pytest.approx(np.mean(succ), abs=1e-6)
        assert ours.precision == pytest.approx(prec[20], abs=1e-6)


def test_experiment_otb_runs_offline_through_the_adapter(otb_root, tmp_path, weights):
    exp = OfflineExperimentOTB(otb_root, result_dir=tmp_path / "results", report_dir=tmp_path / "reports")
    tracker = GOT10kTracker(name="siamtrack", weights=weights, device="cpu")
    exp.run(tracker)
    performance = exp.report([tracker.name])
    assert set(performance[tracker.name]["seq_wise"]) == set(SEQS)
    for seq in load_dataset(otb_root):  # our reading of its records agrees with its report
        boxes = np.loadtxt(tmp_path / "results" / "OTB2015" / tracker.name / f"{seq.name}.txt", delimiter=",")
        assert boxes.shape == (SEQS[seq.name], 4)
        theirs = performance[tracker.name]["seq_wise"][seq.name]["success_score"]
        assert score_sequence(boxes, seq.boxes, got10k_compat=True).auc == pytest.approx(theirs, abs=1e-6)
    assert (tmp_path / "reports" / "OTB2015" / tracker.name / "success_plots.png").is_file()


def test_experiment_got10k_runs_offline_and_ao_agrees(tmp_path, weights):
    rng = np.random.default_rng(3)
    seq_dir = tmp_path / "got" / "val" / "GOT-10k_Val_000001"
    seq_dir.mkdir(parents=True)
    (tmp_path / "got" / "val" / "list.txt").write_text(seq_dir.name + "\n")
    n = 8
    for i in range(n):
        cv2.imwrite(str(seq_dir / f"{i + 1:08d}.jpg"), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    truth = _truth(n, rng)
    np.savetxt(seq_dir / "groundtruth.txt", truth, fmt="%.1f", delimiter=",")
    absent = np.zeros(n, int)
    absent[4] = 1
    np.savetxt(seq_dir / "absence.label", absent, fmt="%d")
    np.savetxt(seq_dir / "cover.label", 8 * (1 - absent), fmt="%d")
    np.savetxt(seq_dir / "cut_by_image.label", np.zeros(n), fmt="%d")
    (seq_dir / "meta_info.ini").write_text("[METAINFO]\nresolution: (128, 96)\n")
    exp = ExperimentGOT10k(str(tmp_path / "got"), subset="val", result_dir=str(tmp_path / "r"),
                           report_dir=str(tmp_path / "rep"))
    tracker = GOT10kTracker(name="siamtrack", weights=weights, device="cpu")
    exp.run(tracker)
    # a hand-made record inside the image (got10k clips boxes to it) to compare AO with ours
    pred = truth + rng.normal(0, 3, truth.shape)
    record = tmp_path / "r" / "GOT-10k" / "noisy" / seq_dir.name / f"{seq_dir.name}_001.txt"
    record.parent.mkdir(parents=True)
    np.savetxt(record, pred, fmt="%.3f", delimiter=",")
    pred = np.loadtxt(record, delimiter=",")
    exp.report([tracker.name, "noisy"])
    report = json.loads((tmp_path / "rep" / "GOT-10k" / tracker.name / "performance.json").read_text())
    (seq,) = load_dataset(tmp_path / "got", split="val")
    ours = score_sequence(pred, seq.boxes)
    assert ours.ao == pytest.approx(report["noisy"]["overall"]["ao"], abs=1e-6)
    assert ours.sr50 == pytest.approx(report["noisy"]["overall"]["sr"], abs=1e-6)
    assert 0.0 <= report[tracker.name]["overall"]["ao"] <= 1.0
