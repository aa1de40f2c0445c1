"""The intervals of a round against known values, at the edges (no pairs, none right, all right)."""

from __future__ import annotations

import math

import pytest

from airflow_provider_glue_labeling.quality.intervals import counts, f1_interval, intervals, wilson


@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        # Published 95 % Wilson intervals (e.g. Newcombe 1998, Table I; Brown, Cai and DasGupta 2001).
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (5, 10, (0.2366, 0.7634)),
        (81, 263, (0.2553, 0.3662)),
        (15, 148, (0.0624, 0.1605)),
        (0, 0, (0.0, 1.0)),  # nothing counted: anything is possible
    ],
)
def test_wilson_interval_matches_known_values(successes, trials, expected):
    low, high = wilson(successes, trials)
    assert low == pytest.approx(expected[0], abs=1e-4) and high == pytest.approx(expected[1], abs=1e-4)


def test_f1_interval_agrees_with_the_delta_method_on_large_counts():
    # TP 800, FP 200, FN 200: F1 = 2TP/(2TP+FP+FN) = 0.8. With p = TP/(TP+FP+FN), F1 = 2p/(1+p), so
    # the delta method gives se = 2/(1+p)^2 * sqrt(p(1-p)/N): the two agree when counts are large.
    tp, fp, fn = 800, 200, 200
    n, p = tp + fp + fn, tp / (tp + fp + fn)
    se = 2 / (1 + p) ** 2 * math.sqrt(p * (1 - p) / n)
    low, high = f1_interval(tp, fp, fn)
    assert low == pytest.approx(0.8 - 1.96 * se, abs=0.003)
    assert high == pytest.approx(0.8 + 1.96 * se, abs=0.003)


def test_f1_interval_keeps_its_width_at_all_correct_and_at_zero():
    # All 20 pairs right: F1 is 1, but 20 pairs do not make that certain.
    low, high = f1_interval(20, 0, 0)
    assert 0.85 < low < 0.97 and high > 0.999
    # Nothing found: F1 is 0, and the interval says how little it could be above that.
    low, high = f1_interval(0, 10, 10)
    assert low == pytest.approx(0.0, abs=1e-3) and 0.0 < high < 0.2
    # More pairs, narrower interval.
    assert f1_interval(200, 0, 0)[0] > f1_interval(20, 0, 0)[0]


def test_the_same_counts_give_the_same_interval():
    assert f1_interval(37, 4, 2) == f1_interval(37, 4, 2)


def test_intervals_of_a_round_and_of_rounds_without_counts():
    metrics = {
        "F1": 0.8,
        "ConfusionMatrix": {
            "NumTruePositives": 10,
            "NumFalsePositives": 0,
            "NumTrueNegatives": 90,
            "NumFalseNegatives": 5,
        },
    }
    got = intervals(metrics)
    assert got is not None and set(got) == {"Precision", "Recall", "F1"}
    assert got["Precision"] == [0.7225, 1.0]  # 10 of 10
    # Recall, 10 of 15 (p = 2/3), by the Wilson interval with z^2 = 1.959964^2 = 3.841459:
    # scale = 1 + z^2/15 = 1.256097, centre = (2/3 + z^2/30) / scale = 0.794715 / 1.256097 = 0.632686,
    # half = z/scale * sqrt(p(1-p)/15 + z^2/(4*15^2)) = 1.560360 * sqrt(0.0148148 + 0.0042683)
    # = 1.560360 * 0.138142 = 0.215551: [0.4171, 0.8482]
    assert got["Recall"] == [0.4171, 0.8482]
    assert counts(metrics) == (10, 0, 90, 5)
    assert intervals({"F1": 0.8}) is None  # a round recorded before the counts were kept
    assert intervals({"ConfusionMatrix": {"NumTruePositives": 3}}) is None
