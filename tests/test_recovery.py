"""Ending the lost state: a re-detection where the target was lost needs only ``lost_threshold``
(``recover_radius``, in target sizes), one elsewhere ``recover_threshold`` (tracker.tracking._Target.redetect)."""
import numpy as np
import pytest

from tracker.config import BoxTrackerConfig
from tracker.tracking import _Target


def _lost_target(**cfg):
    """A 20 x 20 target centred at (50, 50), lost after one low frame (the box went back to (50, 50))."""
    t = _Target(BoxTrackerConfig(lost_threshold=0.4, lost_patience=1, recover_threshold=0.7, **cfg),
                np.zeros((200, 200, 3), np.uint8), (40.5, 40.5, 20.0, 20.0))
    assert t.apply((0.1, 70.0, 70.0, 20.0, 20.0), False).lost and (t.cx, t.cy) == (50.0, 50.0)
    return t


@pytest.mark.parametrize("radius, peak, lost", [
    (0.0, (52.0, 50.0), True),     # off: 0.5 < recover_threshold 0.7 wherever the peak is
    (0.5, (59.0, 50.0), False),    # 9 px from where it was lost <= 0.5 x sqrt(20 x 20) = 10 px: recovered
    (0.5, (58.0, 56.0), False),    # 10 px exactly (6-8-10 triangle): still near
    (0.5, (59.0, 56.0), True),     # 10.8 px: far, so it needs 0.7
    (2.0, (90.0, 50.0), False),    # 40 px within 2 sizes
])
def test_a_peak_near_where_the_target_was_lost_needs_only_the_lost_threshold(radius, peak, lost):
    t = _lost_target(recover_radius=radius)
    result = t.redetect((0.5, *peak))
    assert result.lost is lost and t.lost is lost
    assert (t.cx, t.cy) == ((50.0, 50.0) if lost else peak)


def test_near_peaks_below_the_lost_threshold_and_far_confident_ones_keep_the_old_rules():
    near_but_low = _lost_target(recover_radius=1.0)
    assert near_but_low.redetect((0.39, 50.0, 50.0)).lost  # under lost_threshold stays lost, however near
    far_but_sure = _lost_target(recover_radius=1.0)
    assert not far_but_sure.redetect((0.7, 150.0, 150.0)).lost and (far_but_sure.cx, far_but_sure.cy) == (150.0, 150.0)


def test_a_negative_radius_is_refused():
    with pytest.raises(ValueError, match="recover_radius must be >= 0"):
        BoxTrackerConfig(recover_radius=-1.0)
