"""Coordinate search over tracking-loop hyperparameters (the search logic, on a known objective)."""
import pytest

from tracker.errors import SiamTrackError
from tracker.evaluation.tuning import Trial, coordinate_search, initial, parse_grid, report, tracker_name


def _objective(calls):
    """AUC peaks at window_influence=0.25 and scale_lr=0.4 (independent terms)."""
    def evaluate(candidates):
        calls.append(candidates)
        return [Trial(c, 1.0 - abs(c.get("window_influence", 0.176) - 0.25) - abs(c.get("scale_lr", 0.59) - 0.4), 0.0)
                for c in candidates]
    return evaluate


def test_finds_the_best_value_of_each_parameter_and_runs_each_candidate_once():
    calls = []
    grid = {"window_influence": [0.176, 0.25, 0.35], "scale_lr": [0.59, 0.4]}
    best, trials = coordinate_search(grid, _objective(calls), rounds=2)
    assert best == {"window_influence": 0.25, "scale_lr": 0.4}
    # every candidate names both parameters (first values = current), so none runs twice:
    # round 1: 3 window values, then only scale_lr=0.4 is new; round 2: wi=0.176/0.35 with scale_lr=0.4
    assert [len(c) for c in calls] == [3, 1, 2]
    assert all(set(c) == {"window_influence", "scale_lr"} for batch in calls for c in batch)
    assert len(trials) == 6 and len({str(sorted(t.overrides.items())) for t in trials}) == 6


def test_ties_keep_the_value_listed_first():
    flat = lambda cands: [Trial(c, 0.5, 0.0) for c in cands]  # noqa: E731
    best, _ = coordinate_search({"window_influence": [0.176, 0.3]}, flat)
    assert best == {"window_influence": 0.176}


def test_grid_parsing_and_tracker_names():
    assert parse_grid(["window_influence=0.2,0.3", "scale_num=1,3"]) == {"window_influence": [0.2, 0.3],
                                                                         "scale_num": [1, 3]}
    assert tracker_name("m.pth", {"scale_num": 1, "context": 0.5}) == "siamtrack:m.pth@context=0.5,scale_num=1"
    assert tracker_name(None, {}) == "siamtrack"
    with pytest.raises(SiamTrackError, match="NAME=V1,V2"):
        parse_grid(["window_influence"])
    with pytest.raises(SiamTrackError, match="unknown TrackerConfig option"):
        parse_grid(["no_such_field=1"])
    with pytest.raises(SiamTrackError, match="window_influence=abc"):
        parse_grid(["window_influence=abc"])


def test_report_compares_every_trial_with_the_start_configuration():
    start = Trial({"window_influence": 0.176}, 0.5, 0.5, {"x": 0.5, "y": 0.25}, {"x": 0.5, "y": 0.5})
    better = Trial({"window_influence": 0.25}, 0.75, 0.75, {"x": 0.75, "y": 0.5}, {"x": 0.75, "y": 0.75})
    unscored = Trial({"window_influence": 0.35}, 0.1, 0.1)   # no per-sequence scores: nothing to pair
    lines = report(better.overrides, [start, better, unscored], start.overrides).splitlines()
    assert lines[0] == ("| overrides | AUC | P@20 | ΔAUC vs start | 95 % CI | ΔP@20 vs start | 95 % CI | sequences "
                        "| wins/losses |")
    assert lines[2:5] == [  # every difference 0.25: a zero-width interval at it
        '| {"window_influence": 0.25} | 0.750 | 0.750 | +0.250 | [+0.250, +0.250] | +0.250 | [+0.250, +0.250] | 2 | 2/0 |',
        '| {"window_influence": 0.176} (start) | 0.500 | 0.500 | +0.000 | [+0.000, +0.000] | +0.000 | [+0.000, +0.000] '
        '| 2 | 0/0 |',
        '| {"window_influence": 0.35} | 0.100 | 0.100 | - | - | - | - | - | - |']
    assert lines[-1] == 'best: {"window_influence": 0.25}'
    assert initial({"window_influence": [0.176, 0.3], "scale_lr": [0.59]}, {"scale_lr": 0.4}) == {
        "window_influence": 0.176, "scale_lr": 0.4}
