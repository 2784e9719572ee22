"""Rollout labels (docs/method.md section 2) against hand-computed values."""

import math

import pytest

from similar_rl.collect.labels import (
    accumulated,
    best_child,
    calibrate_l0,
    helpfulness,
    label_children,
    odds_of_success,
)


def test_l0_is_mean_length_of_successful_calibration_episodes():
    assert calibrate_l0([(True, 3), (False, 1), (True, 6), (False, 20)]) == 4.5
    assert calibrate_l0([(False, 3), (False, 20)]) is None  # the task is pruned


def test_odds_of_success_is_success_fraction():
    assert odds_of_success([(True, 2), (False, 3), (True, 4), (False, 1)]) == 0.5
    with pytest.raises(ValueError, match="at least one rollout"):
        odds_of_success([])


def test_accumulated_contribution_is_clipped_sum():
    assert accumulated(-0.2) == 0.0
    assert accumulated(0.75) == 0.75
    assert accumulated(1.3) == 1.0


def test_helpfulness_formula():
    # H = sign * (1 - AC) / max(L0 - t, 1)
    assert helpfulness(1.0, 0.0, depth=0, l0=4.0) == pytest.approx(0.25)
    assert helpfulness(0.0, 0.25, depth=1, l0=4.0) == pytest.approx(-0.75 / 3)
    assert helpfulness(1.0, 0.9, depth=6, l0=4.0) == pytest.approx(0.1)  # denominator floors at 1
    assert helpfulness(1.0, 1.4, depth=0, l0=4.0) == 0.0  # AC clipped to 1: nothing left to contribute
    assert helpfulness(0.75, 0.0, depth=0, l0=2.0) == pytest.approx(0.25)  # k rollouts: mean sign


def test_label_children_hand_computed():
    # L0 = 4, depth t = 1 (labelled step i = 2), AC sum so far 0.25.
    # child 0: succeeds with episode length 4 -> R = 2; child 1: length 6 -> R = 4; child 2: fails.
    # R_prev = mean(4 - 1, 6 - 1) = 4; E0 = (4 - 2)/4 = 0.5, E1 = (4 - 4)/4 = 0; E2 = min(-1/4, 0, 0.5) = -0.25.
    # H = +-(1 - 0.25)/max(4 - 1, 1) = +-0.25.
    out = label_children([[(True, 4)], [(True, 6)], [(False, 3)]], depth=1, l0=4.0, ac_sum=0.25)
    assert [c.odds_of_success for c in out] == [1.0, 1.0, 0.0]
    assert [c.efficiency for c in out] == pytest.approx([0.5, 0.0, -0.25])
    assert [c.helpfulness for c in out] == pytest.approx([0.25, 0.25, -0.25])
    assert [c.remaining for c in out] == [2, 4, None]


def test_failed_child_is_never_more_efficient_than_a_successful_sibling():
    # a slow success gets E = (R_prev - R)/L0 < -1/L0; the failed child must not beat it
    out = label_children([[(True, 2)], [(True, 10)], [(False, 2)]], depth=0, l0=2.0, ac_sum=0.0)
    slow, failed = out[1].efficiency, out[2].efficiency
    assert slow == -1.0  # R_prev = mean(2, 10) = 6, R = 9: (6 - 9)/2 = -1.5, clipped to -1
    assert failed <= slow and failed < 0


def test_no_successful_child_gives_minus_one_over_l0():
    out = label_children([[(False, 3)], [(False, 5)]], depth=0, l0=5.0, ac_sum=0.0)
    assert [c.efficiency for c in out] == pytest.approx([-0.2, -0.2])
    assert [c.helpfulness for c in out] == pytest.approx([-0.2, -0.2])


def test_k_rollouts_per_child():
    # child 0: 2 of 4 rollouts succeed (lengths 3 and 5 -> mean 4, R = 3); child 1: all 4 succeed in 2 steps (R = 1)
    out = label_children(
        [[(True, 3), (False, 9), (True, 5), (False, 2)], [(True, 2)] * 4], depth=0, l0=3.0, ac_sum=0.0
    )
    assert [c.odds_of_success for c in out] == [0.5, 1.0]
    assert out[0].helpfulness == 0.0 and out[1].helpfulness == pytest.approx(1 / 3)
    r_prev = (4 + 2) / 2
    assert [c.efficiency for c in out] == pytest.approx([(r_prev - 3) / 3, (r_prev - 1) / 3])


def test_labels_stay_in_range():
    out = label_children([[(True, 1)], [(True, 40)], [(False, 40)]], depth=0, l0=1.0, ac_sum=0.0)
    for c in out:
        assert -1.0 <= c.efficiency <= 1.0 and -1.0 <= c.helpfulness <= 1.0 and 0 <= c.odds_of_success <= 1


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="L0 must be"):
        label_children([[(True, 2)]], depth=0, l0=math.nan, ac_sum=0.0)
    with pytest.raises(ValueError, match="shorter than the labelled step"):
        label_children([[(True, 1)]], depth=2, l0=3.0, ac_sum=0.0)


def test_best_child_uses_the_sorted_order_not_slot_zero():
    assert best_child([(0.0, -0.5, -0.5), (1.0, 0.5, 0.1), (1.0, 0.5, 0.3)]) == 2
    assert best_child([(1.0, 0.5), (1.0, 0.5)]) == 0  # ties: earliest
