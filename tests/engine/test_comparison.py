"""Paired differences and verdicts of the study, against scipy and hand-computed cases."""
import math

import numpy as np
import pytest
from scipy import stats

from hpps_d2.engine.comparison import paired_difference, verdict


def test_interval_is_scipys_paired_t_interval():
    a = {0: 10.0, 1: 12.0, 2: 11.0, 3: 9.5}
    b = {0: 12.5, 1: 13.0, 2: 14.0, 3: 10.0}
    d = paired_difference(a, b)
    ref = stats.ttest_rel([b[k] for k in range(4)], [a[k] for k in range(4)]).confidence_interval()
    assert d.n == 4
    assert d.low == pytest.approx(ref.low, abs=1e-12) and d.high == pytest.approx(ref.high, abs=1e-12)
    # by hand: differences 2.5, 1.0, 3.0, 0.5 -> mean 1.75, s = sqrt(1.41667) = 1.19024
    assert d.mean == pytest.approx(1.75) and d.std == pytest.approx(math.sqrt(4.25 / 3))
    assert d.relative == pytest.approx(1.75 / 10.625)


def test_pairs_by_seed_not_by_position():
    a = {0: 1.0, 1: 5.0, 2: 3.0}
    b = {2: 4.0, 0: 2.0, 1: 6.0, 7: 100.0}  # seed 7 has no partner and is left out
    d = paired_difference(a, b)
    assert d.n == 3 and d.mean == pytest.approx(1.0) and d.std == pytest.approx(0.0)


def test_several_pretraining_seeds_pair_by_finetuning_seed():
    base = {0: 10.0, 1: 11.0, 2: 12.0}
    pre = {(0, 0): 11.0, (0, 1): 12.5, (0, 2): 12.0, (1, 0): 12.0, (1, 1): 11.5, (1, 2): 14.0}
    d = paired_difference(base, pre)
    # each baseline run serves both pre-training seeds, so the independent units are the 3
    # fine-tuning seeds: the pre-trained arm is averaged over its pre-training seeds per
    # fine-tuning seed (11.5, 12.0, 13.0), never counted as 6 independent pairs
    diffs = np.array([1.5, 1.0, 1.0])
    assert d.n == 3 and d.mean == pytest.approx(diffs.mean()) and d.std == pytest.approx(diffs.std(ddof=1))
    ci = stats.ttest_rel([11.5, 12.0, 13.0], [10.0, 11.0, 12.0]).confidence_interval()
    assert (d.low, d.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    # and the same pairs whichever side holds the pre-training seeds
    r = paired_difference(pre, base)
    assert r.n == 3 and r.mean == pytest.approx(-diffs.mean())
    # two arms that both have pre-training seeds pair run for run: distinct runs on both sides
    other = {(p, s): v - 1.0 + 0.1 * p * s for (p, s), v in pre.items()}
    both = paired_difference(other, pre)
    assert both.n == 6


@pytest.mark.parametrize(
    "a, b, sign, expected",
    [
        ({0: 1.0, 1: 2.0, 2: 3.0}, {0: 2.0, 1: 3.1, 2: 3.9}, +1, "agrees"),
        ({0: 1.0, 1: 2.0, 2: 3.0}, {0: 2.0, 1: 3.1, 2: 3.9}, -1, "disagrees"),
        ({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 1.1, 2: 1.9}, -1, "agrees"),
        ({0: 1.0, 1: 2.0, 2: 3.0}, {0: 2.0, 1: 1.0, 2: 3.5}, +1, "not resolved"),
        ({0: 1.0}, {0: 9.0}, +1, "not resolved"),  # one pair is no evidence
        ({}, {0: 9.0}, +1, "not resolved"),
    ],
)
def test_verdict_by_interval(a, b, sign, expected):
    assert verdict(paired_difference(a, b), sign) == expected


def test_one_pair_and_none_are_reported_as_such():
    assert str(paired_difference({0: 1.0}, {0: 3.0})) == "+2.00 (1 pair)"
    assert str(paired_difference({0: 1.0}, {1: 3.0})) == "not run"
    with pytest.raises(ValueError):
        verdict(paired_difference({0: 1.0}, {0: 3.0}), 0)
