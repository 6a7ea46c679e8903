"""Paired per-sequence differences with a bootstrap percentile interval, against hand-computed values."""
import itertools
import json

import numpy as np
import pytest

from tracker.evaluation.paired import PairedDifference, compare_results, paired_difference, sequence_scores


def test_equal_differences_give_a_zero_width_interval_at_that_value():
    candidate = {"a": 0.75, "b": 0.5, "c": 0.25}
    reference = {"a": 0.5, "b": 0.25, "c": 0.0}   # every difference exactly 0.25
    assert paired_difference(candidate, reference) == PairedDifference(0.25, 0.25, 0.25, 3, 3, 0)


def test_one_win_in_four_has_the_binomial_bootstrap_percentiles():
    """d = (0, 0, 0, 1): a resample's mean is k/4 with k ~ Binomial(4, 1/4), so P(mean = 0) = 81/256 > 2.5 %
    gives lo = 0, and P(mean = 1) = 1/256 < 2.5 % < P(mean >= 3/4) = 13/256 gives hi = 0.75."""
    d = paired_difference({"a": 0.5, "b": 0.5, "c": 0.5, "d": 1.0}, {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.0})
    assert d == PairedDifference(0.25, 0.0, 0.75, 4, 1, 0)


def test_the_interval_matches_the_exact_bootstrap_enumerated_over_all_resamples():
    diffs = [0.1, -0.2, 0.3, 0.05, 0.4]
    exact = [np.mean(r) for r in itertools.product(diffs, repeat=len(diffs))]  # all 5^5 equally likely resamples
    lo, hi = np.percentile(exact, [2.5, 97.5])
    d = paired_difference({str(i): v for i, v in enumerate(diffs)}, {str(i): 0.0 for i in range(5)})
    assert d.mean == pytest.approx(0.13) and (d.n, d.wins, d.losses) == (5, 4, 1)
    # 10,000 Monte-Carlo resamples: the percentiles within 0.01 of the exact ones (their spread is ~0.1)
    assert (d.lo, d.hi) == (pytest.approx(lo, abs=0.01), pytest.approx(hi, abs=0.01))
    assert d.lo < d.mean < d.hi
    assert paired_difference({str(i): v for i, v in enumerate(diffs)}, {str(i): 0.0 for i in range(5)}) == d  # fixed seed


def test_only_common_sequences_count_and_the_order_does_not_matter():
    """d = (0.1, -0.1, 0.4): the smallest and largest resample means (-0.1, 0.4) each have probability
    1/27 > 2.5 %, so they are the interval's ends."""
    a = {"x": 0.6, "y": 0.4, "z": 0.9, "only_a": 0.0}
    b = {"z": 0.5, "y": 0.5, "x": 0.5, "only_b": 1.0}
    d = paired_difference(a, b)
    assert (d.n, d.wins, d.losses) == (3, 2, 1)
    assert (d.mean, d.lo, d.hi) == (pytest.approx(0.4 / 3), pytest.approx(-0.1), pytest.approx(0.4))
    assert paired_difference(dict(reversed(list(a.items()))), b) == d   # same sequences, same resamples
    with pytest.raises(ValueError, match="no sequence was scored by both trackers"):
        paired_difference({"x": 1.0}, {"y": 1.0})


def _results(**trackers):
    return {"info": {}, "trackers": {name: {"sequences": {s: ({"auc": v, "precision": v / 2} if v is not None else
                                                              {"status": "no-ground-truth"})
                                                          for s, v in seqs.items()}}
                                     for name, seqs in trackers.items()}}


def test_compare_results_reads_two_results_json_files_or_dicts(tmp_path):
    new = _results(mine={"a": 0.75, "b": 0.5, "c": None})
    old = _results(base={"a": 0.5, "b": 0.25, "c": 0.1}, other={"a": 0.0, "b": 0.0})
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert sequence_scores(new) == {"a": 0.75, "b": 0.5}               # the first tracker; unscored left out
    assert sequence_scores(old, "other", "precision") == {"a": 0.0, "b": 0.0}
    assert compare_results(tmp_path / "new.json", old) == PairedDifference(0.25, 0.25, 0.25, 2, 2, 0)
    assert compare_results(new, old, reference_tracker="other", metric="precision") == \
        PairedDifference(0.3125, 0.25, 0.375, 2, 2, 0)
    with pytest.raises(KeyError, match="tracker 'nope' is not in these results; they hold base, other"):
        compare_results(new, old, reference_tracker="nope")
