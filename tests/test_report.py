"""Bench reports that decide: per-block means by the split of each sequence, paired differences against a
baseline with bootstrap intervals, and `siamtrack bench` over a split spanning two dataset folders."""
import json

import numpy as np
import pytest

from test_datasets import _frames
from tracker.cli import main
from tracker.datasets import write_sequence
from tracker.evaluation.report import block_means, markdown, paired_against

# Biker and Car4 are 'val', otb_Bird1 'val2' in tracker/splits.json; mine is not listed
SPLIT_OF = {"Biker": "val", "Car4": "val", "otb_Bird1": "val2", "mine": "unlisted"}


def _entry(auc, precision):
    seqs = {s: {"status": "ok", "auc": a, "precision": p} for s, a, p in zip(SPLIT_OF, auc, precision)}
    return {"auc": float(np.mean(auc)), "precision": float(np.mean(precision)), "scored_sequences": 4,
            "norm_precision": None, "ao": None, "sr50": None, "sr75": None, "fps": None, "end_to_end_fps": None,
            "lost": 0, "status": "ok", "errors": [], "sequences": seqs}


def _results():
    a = _entry([0.5, 0.75, 0.25, 0.5], [0.75, 0.5, 0.25, 0.5])
    b = _entry([0.25, 0.5, 0.25, 0.125], [0.5, 0.25, 0.0, 0.25])
    trackers = {"a": {**a, "blocks": block_means(a, SPLIT_OF)}, "b": {**b, "blocks": block_means(b, SPLIT_OF)}}
    info = {"sequences": list(SPLIT_OF), "split_of": SPLIT_OF, "frame_0": "excluded", "no_ground_truth": [],
            "partial_ground_truth": []}
    return {"info": info, "trackers": trackers, "paired": paired_against(trackers, "b")}


def test_block_means_average_each_splits_sequences():
    assert block_means(_results()["trackers"]["a"], SPLIT_OF) == {
        "val": {"auc": 0.625, "precision": 0.625, "scored_sequences": 2},
        "val2": {"auc": 0.25, "precision": 0.25, "scored_sequences": 1},
        "unlisted": {"auc": 0.5, "precision": 0.5, "scored_sequences": 1}}


def test_paired_differences_against_the_baseline():
    paired = _results()["paired"]
    assert (paired["baseline"], paired["resamples"], paired["seed"], paired["level"]) == ("b", 10_000, 0, 0.95)
    assert list(paired["trackers"]) == ["a"]
    auc, p20 = paired["trackers"]["a"]["auc"], paired["trackers"]["a"]["precision"]
    # AUC differences 0.25, 0.25, 0, 0.375: mean 0.21875; 3 wins, one tie
    assert (auc["mean"], auc["n"], auc["wins"], auc["losses"]) == (0.21875, 4, 3, 0)
    assert 0 <= auc["lo"] < auc["mean"] < auc["hi"] <= 0.375
    assert p20 == {"mean": 0.25, "lo": 0.25, "hi": 0.25, "n": 4, "wins": 4, "losses": 0}  # every difference 0.25


def test_results_md_lists_block_means_and_the_paired_table():
    results = _results()
    auc = results["paired"]["trackers"]["a"]["auc"]
    md = markdown(results, per_sequence=False)
    assert ("| Tracker | all | val (2) | val2 (1) | unlisted (1) |\n|---|---|---|---|---|\n"
            "| a | 0.500 / 0.500 | 0.625 / 0.625 | 0.250 / 0.250 | 0.500 / 0.500 |\n"
            "| b | 0.281 / 0.250 | 0.375 / 0.375 | 0.250 / 0.000 | 0.125 / 0.250 |\n") in md
    assert "Paired against b: mean per-sequence difference (tracker - baseline)" in md
    assert "95 % bootstrap interval over sequences (10,000 resamples, seed 0, percentile)" in md
    assert ("| Tracker | ΔAUC | 95 % CI | ΔP@20 | 95 % CI | sequences | wins/losses |\n|---|---|---|---|---|---|---|\n"
            f"| a | +0.219 | [{auc['lo']:+.3f}, {auc['hi']:+.3f}] | +0.250 | [+0.250, +0.250] | 4 | 3/0 |\n") in md


def test_one_block_and_one_tracker_add_no_tables():
    results = _results()
    results["info"]["split_of"] = dict.fromkeys(SPLIT_OF, "val")
    del results["paired"]
    md = markdown(results, per_sequence=False)
    assert "Per block" not in md and "Paired against" not in md


@pytest.fixture(scope="module")
def data_parent(tmp_path_factory):
    """../shared/data in miniature: two val and one train sequence in sequences/, two val2 in more_sequences/."""
    parent = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for folder, names in (("sequences", ["Biker", "Car4", "Basketball"]), ("more_sequences", ["otb_Bird1", "vot_ball"])):
        for name in names:
            frames = [np.kron(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))] * 5
            write_sequence(parent / folder / name, frames, np.array([[30 + i, 30, 24, 24] for i in range(5)], float))
    return parent


def test_bench_runs_a_split_over_two_folders_with_block_means_and_a_chosen_baseline(data_parent, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", str(data_parent), "--split", "validation", "--sequences", "Biker,Car4,Basketball,otb_Bird1,vot_ball",
            "--trackers", "kcf,csrt", "--baseline", "csrt", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["info"]["sequences"] == ["Biker", "Car4", "otb_Bird1", "vot_ball"]  # Basketball is no val name
    assert results["info"]["split"] == "validation"
    assert results["info"]["split_of"] == {"Biker": "val", "Car4": "val", "otb_Bird1": "val2", "vot_ball": "val2"}
    kcf, csrt = (results["trackers"][n]["sequences"] for n in ("kcf", "csrt"))
    assert results["trackers"]["kcf"]["blocks"]["val2"]["auc"] == pytest.approx(
        (kcf["otb_Bird1"]["auc"] + kcf["vot_ball"]["auc"]) / 2)
    diff = results["paired"]["trackers"]["kcf"]["auc"]
    assert results["paired"]["baseline"] == "csrt" and diff["n"] == 4
    assert diff["mean"] == pytest.approx(np.mean([kcf[s]["auc"] - csrt[s]["auc"] for s in kcf]))
    table = capsys.readouterr().out
    assert "| Tracker | all | val (2) | val2 (2) |" in table and "Paired against csrt" in table
    assert "| Tracker | all | val (2) | val2 (2) |" in (out / "results.md").read_text()


def test_bench_refuses_an_unknown_baseline_and_a_two_folder_split_on_one_folder(data_parent, tmp_path, capsys):
    argv = ["bench", str(data_parent), "--split", "val", "--sequences", "Biker", "--trackers", "kcf,csrt",
            "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*argv, "--baseline", "mil"]) == 2
    assert capsys.readouterr().err == ("siamtrack: error: --baseline mil is none of this run's trackers (kcf, csrt); "
                                       "give one of those names\n")
    argv[1:4] = [str(data_parent / "sequences"), "--split", "validation"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("siamtrack: error: split 'validation' spans the folders sequences, more_sequences; ")
    assert len(err.splitlines()) == 1
