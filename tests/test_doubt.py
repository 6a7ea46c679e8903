"""The doubt and the spread: a rival peak in the score map, frame after frame, lowers the score; a map whose
mass scatters raises the lost flag; neither moves the box (tracker.postprocess.map_signals, _Target.apply)."""
import numpy as np
import pytest

from tracker.config import BoxTrackerConfig, TrackerConfig
from tracker.postprocess.map_signals import rivalry, spread
from tracker.tracking import _Target


def test_rivalry_is_the_highest_cell_outside_the_peak_over_the_peak_above_the_floor():
    m = np.full((7, 7), 0.2)
    m[1, 1] = 1.0
    assert rivalry(m, 2) == 0.0
    m[2, 3] = 0.9  # 2 cells from the peak: part of it
    assert rivalry(m, 2) == 0.0
    assert rivalry(m, 1) == pytest.approx(0.875)  # a narrower peak: (0.9 - 0.2) / (1.0 - 0.2)
    m[5, 5] = 0.6  # 4 cells away: (0.6 - 0.2) / (1.0 - 0.2)
    assert rivalry(m, 2) == pytest.approx(0.5)
    assert rivalry(np.full((5, 5), 0.3), 2) == 1.0  # no peak at all: nothing says where the target is


def test_the_peak_spans_half_the_target_in_map_cells():
    # a square target fills exemplar_size / 2 = 63.5 crop px at context 0.5: 2 cells at stride 16, 4 at stride 8
    frame = np.zeros((100, 100, 3), np.uint8)
    assert _Target(BoxTrackerConfig(instance_size=207), frame, (10.0, 10.0, 30.0, 30.0)).peak_radius() == 2
    assert _Target(TrackerConfig(), frame, (10.0, 10.0, 30.0, 30.0)).peak_radius() == 4


def _target(**cfg):
    frame = np.zeros((100, 100, 3), np.uint8)
    return _Target(BoxTrackerConfig(lost_threshold=0.5, lost_patience=1, **cfg), frame, (40.0, 40.0, 20.0, 20.0))


def test_doubt_is_a_running_mean_of_rivalry_that_flags_without_moving_the_box_back():
    t = _target(doubt_rate=0.5, doubt_threshold=0.5)
    a = t.apply((0.9, 52.0, 50.0, 20.0, 20.0), False, rival=1.0)  # doubt 0 + 0.5 (1 - 0) = 0.5
    assert a.lost and a.score == pytest.approx(0.9 * 0.5) and a.box == (42.5, 40.5, 20.0, 20.0)  # it still follows
    b = t.apply((0.8, 54.0, 50.0, 20.0, 20.0), False, rival=0.0)  # 0.5 + 0.5 (0 - 0.5) = 0.25: no longer doubting
    assert not b.lost and b.score == pytest.approx(0.8 * 0.75) and b.box[0] == 44.5


def test_without_a_score_map_nothing_changes_and_the_lost_state_freezes_the_doubt():
    t = _target(doubt_rate=0.2)
    assert t.apply((0.9, 50.0, 50.0, 20.0, 20.0), False) == t.apply((0.9, 50.0, 50.0, 20.0, 20.0), False)
    assert t.doubt == 0.0 and t.score == 0.9
    t.apply((0.9, 50.0, 50.0, 20.0, 20.0), False, rival=1.0)  # doubt 0.2
    lost = t.apply((0.1, 80.0, 80.0, 20.0, 20.0), False, rival=1.0)  # doubt 0.36, confidence under 0.5: lost state
    assert lost.lost and lost.box == (40.5, 40.5, 20.0, 20.0) and t.doubt == pytest.approx(0.36)
    again = t.redetect((0.2, 10.0, 10.0))  # not found: doubt kept, score discounted by it
    assert again.lost and again.score == pytest.approx(0.2 * 0.64) and t.doubt == pytest.approx(0.36)


@pytest.mark.parametrize("name", ["doubt", "spread"])
@pytest.mark.parametrize("bad", [{"rate": 0.0}, {"rate": 1.5}, {"threshold": -0.1}])
def test_doubt_and_spread_settings_out_of_range_are_refused(name, bad):
    with pytest.raises(ValueError, match=f"{name}_rate must be in"):
        BoxTrackerConfig(**{f"{name}_{k}": v for k, v in bad.items()})


def test_spread_is_the_entropy_above_the_floor_over_a_flat_maps_entropy():
    m = np.full((4, 4), 0.1)
    m[2, 1] = 0.9
    assert spread(m) == 0.0  # all the mass above the floor on one cell
    m[0, 3] = 0.9
    assert spread(m) == pytest.approx(np.log(2) / np.log(16))  # two equal cells: log 2 of log 16
    m[:] = 0.3
    assert spread(m) == 1.0  # flat: nothing says where the target is
    q = np.array([[0.0, 1.0], [2.0, 1.0]])  # floor 0: masses 1/4, 2/4, 1/4
    assert spread(q) == pytest.approx(-(0.5 * np.log(0.25) + 0.5 * np.log(0.5)) / np.log(4))
    assert spread(q - 5.0) == pytest.approx(spread(q))  # only the height above the floor counts (SiamFC's raw maps)


def test_spread_is_a_running_mean_that_flags_without_moving_the_box_and_needs_a_map():
    t = _target(spread_rate=0.5, spread_threshold=0.6)
    a = t.apply((0.99, 52.0, 50.0, 20.0, 20.0), False, spread=1.0)  # 0 + 0.5 (1 - 0) = 0.5: not yet
    assert not a.lost and a.box == (42.5, 40.5, 20.0, 20.0) and t.spread == 0.5
    b = t.apply((0.99, 54.0, 50.0, 20.0, 20.0), False, spread=0.9)  # 0.5 + 0.5 (0.9 - 0.5) = 0.7: flagged
    assert b.lost and b.score == 0.99 and b.box[0] == 44.5  # the score and the box are not touched
    c = t.apply((0.99, 54.0, 50.0, 20.0, 20.0), False)  # a step without a map: the spread decays to 0
    assert not c.lost and t.spread == pytest.approx(0.35)


def test_only_the_box_family_flags_by_default_and_on_its_doubt():
    cfg = BoxTrackerConfig()
    assert cfg.doubt_threshold == 0.5 and cfg.spread_threshold > 1
    assert TrackerConfig().spread_threshold > 1 and TrackerConfig().doubt_threshold > 1
