"""The evaluation's decisions on crafted histories, and the rounds' table and chart."""

from __future__ import annotations

import pytest

from airflow_provider_glue_labeling.history import (
    GOOD_ENOUGH,
    KEEP_LABELING,
    PLATEAU,
    chart_svg,
    decide,
    table,
)
from airflow_provider_glue_labeling.quality.decision import (
    held_against,
    learning_curve,
    quality_gate,
    recent_trend,
)
from airflow_provider_glue_labeling.quality.rounds import round_intervals


def rounds_of(*f1s, matrix=None, **metrics):
    """Rounds 100 labels apart; ``matrix`` (TP, FP, TN, FN) gives each its confusion matrix."""
    names = ("NumTruePositives", "NumFalsePositives", "NumTrueNegatives", "NumFalseNegatives")
    counted = {"ConfusionMatrix": dict(zip(names, matrix, strict=True))} if matrix else {}
    return [
        {"time": f"2026-11-{n + 1:02}", "LabelCount": 100 * (n + 1), "F1": f1, **counted, **metrics}
        for n, f1 in enumerate(f1s)
    ]


FEW = (12, 3, 100, 3)  # 15 matching pairs tested: F1 0.80, give or take 0.15
MANY = (5000, 500, 50000, 500)  # 5,500 matching pairs tested: F1 0.91, give or take 0.006


def test_a_noisy_drop_with_wide_intervals_keeps_labeling():
    # 0.80 -> 0.96 -> 0.76 at 100, 200, 300 labels: the two-point rule called this a plateau.
    got = decide(rounds_of(0.80, 0.96, 0.76, matrix=FEW), min_gain=0.01, over_rounds=2, thresholds={})
    assert got["decision"] == KEEP_LABELING
    assert got["reason"].startswith("keep labeling: the intervals are too wide to tell: another 100 labels")
    evidence = got["evidence"]
    assert evidence["recent_gain"] == -0.02 and evidence["recent_upper"] > 0.03
    assert (
        f"{evidence['recent_gain']:+.4f} (up to {evidence['recent_upper']:+.4f}) on the trend of the last 3"
        in (got["reason"])
    )
    assert "last F1 0.7600 [" in got["reason"] and got["reason"].endswith("not both below min_gain 0.01")


def test_a_flat_run_with_narrow_intervals_is_a_plateau():
    got = decide(rounds_of(0.910, 0.911, 0.909, matrix=MANY), min_gain=0.01, over_rounds=2, thresholds={})
    assert got["decision"] == PLATEAU, got
    evidence = got["evidence"]
    assert (
        evidence["recent_gain"] == -0.0005 and max(evidence["curve_upper"], evidence["recent_upper"]) < 0.01
    )
    assert got["reason"] == (
        f"more labels no longer help: another 100 labels gain F1 {evidence['curve_gain']:+.4f} (up to "
        f"{evidence['curve_upper']:+.4f}) on the learning curve of 3 rounds, -0.0005 (up to "
        f"{evidence['recent_upper']:+.4f}) on the trend of the last 3; last F1 0.9090 "
        f"[{round_intervals(rounds_of(0.909, matrix=MANY)[0])['F1'][0]:.4f}, "
        f"{round_intervals(rounds_of(0.909, matrix=MANY)[0])['F1'][1]:.4f}] at 300 labels; "
        "both below min_gain 0.01"
    )


def test_a_clear_rise_keeps_labeling():
    got = decide(rounds_of(0.5, 0.6, 0.7, 0.75, 0.8, matrix=MANY), 0.01, over_rounds=4, thresholds={})
    assert got["decision"] == KEEP_LABELING and got["reason"].endswith("at least min_gain 0.01")
    # equal weights: least squares through (100, .5) ... (500, .8) rises 0.075 a round
    assert got["evidence"]["recent_gain"] == 0.075 and got["evidence"]["recent_rounds"] == 5


def test_the_learning_curve_predicts_shrinking_gains():
    # F1 = 0.9 - 20 / labels exactly: the next 100 labels after 500 gain 20/500 - 20/600
    rounds = rounds_of(*(0.9 - 20 / (100 * n) for n in range(1, 6)), matrix=MANY)
    assert learning_curve(rounds).gain == round(20 / 500 - 20 / 600, 4)
    # the straight line through the last three rounds sees more gain than the curve
    assert recent_trend(rounds[-3:]).gain > learning_curve(rounds).gain


def test_each_round_weighs_by_its_uncertainty():
    sure, unsure = rounds_of(0.8, 0.8, matrix=MANY), rounds_of(0.95, matrix=FEW)
    unsure[0]["LabelCount"] = 300
    trend = recent_trend(sure + unsure)
    # the uncertain high round barely moves the line fitted through the two sure ones
    assert 0 < trend.gain < 0.01 and trend.upper > trend.gain
    # as sure as the others, the same round pulls the line up
    just_as_sure = {**unsure[0], "ConfusionMatrix": sure[0]["ConfusionMatrix"]}
    assert recent_trend([*sure, just_as_sure]).gain > 0.05


def test_no_plateau_below_the_label_floor():
    few_non_matches = (40, 2, 3, 2)  # 42 matching, 5 non-matching pairs tested
    flat = rounds_of(0.95, 0.95, 0.95, matrix=few_non_matches)
    got = decide(flat, 0.01, 2, {})
    assert got["decision"] == KEEP_LABELING
    assert got["reason"] == (
        "keep labeling: the evaluation tested 42 matching and 5 non-matching pair(s); a plateau needs at "
        "least 10 of each (label_floor)"
    )
    # with a floor of 5 the rule weighs the trend instead (here: too few pairs to be sure)
    assert "too wide to tell" in decide(flat, 0.01, 2, {}, label_floor=5)["reason"]


def test_fewer_rounds_than_a_trend_needs():
    got = decide(rounds_of(0.5, 0.9, matrix=MANY), 0.01, 2, {})
    assert got["decision"] == KEEP_LABELING
    assert (
        got["reason"] == "keep labeling: 2 round(s) with new labels and an F1 so far; the trends of F1 need 3"
    )


def test_an_evaluation_without_new_labels_is_no_new_round():
    rounds = rounds_of(0.80, 0.90, matrix=MANY)
    rounds.append({**rounds[-1], "time": "2026-11-30", "F1": 0.89})  # a week nobody labeled
    got = decide(rounds, min_gain=0.01, over_rounds=2, thresholds={})
    assert (
        got["reason"] == "keep labeling: 2 round(s) with new labels and an F1 so far; the trends of F1 need 3"
    )


def test_good_enough_when_every_threshold_is_met_and_only_then():
    rounds = rounds_of(0.6, 0.9, Precision=0.95)
    both = decide(rounds, 0.01, 2, {"F1": 0.85, "Precision": 0.9, "Recall": None})
    assert both == {
        "decision": GOOD_ENOUGH,
        "reason": "good enough: F1 0.9000 >= 0.8500, Precision 0.9500 >= 0.9000",
        "evidence": {},
    }
    assert decide(rounds, 0.01, 2, {"F1": 0.85, "Precision": 0.96})["decision"] == KEEP_LABELING
    assert decide(rounds, 0.01, 2, {"F1": None})["decision"] == KEEP_LABELING  # no threshold: never


def test_thresholds_on_the_lower_bound_when_asked():
    rounds = rounds_of(0.7, 0.92, matrix=(23, 2, 200, 2))  # F1 0.92 on 25 matching pairs
    assert decide(rounds, 0.01, 2, {"F1": 0.9})["decision"] == GOOD_ENOUGH  # the estimate meets it
    strict = decide(rounds, 0.01, 2, {"F1": 0.9}, require_lower_bound=True)
    assert strict["decision"] == KEEP_LABELING
    low = round_intervals(rounds[-1])["F1"][0]
    rows, failed = quality_gate(rounds[-1], {"F1": 0.9}, require_lower_bound=True)
    assert failed == [f"F1 lower bound {low} < 0.9"] and low < 0.9
    assert "FAIL" in rows and f"[{low:.4f}, " in rows
    sure = rounds_of(0.7, 0.95, matrix=(5000, 250, 50000, 250))
    assert decide(sure, 0.01, 2, {"F1": 0.9}, require_lower_bound=True)["reason"].startswith(
        "good enough: F1 lower bound 0.94"
    )


def test_a_threshold_is_held_against_the_estimate_or_its_lower_bound():
    metrics = {"F1": 0.9, "AreaUnderPRCurve": 0.95}
    bounds = {"F1": [0.85, 0.93]}
    assert held_against(metrics, bounds, "F1", require_lower_bound=False) == (0.9, "F1")
    assert held_against(metrics, bounds, "F1", require_lower_bound=True) == (0.85, "F1 lower bound")
    # AUPRC has no interval: its estimate, even when the lower bound is asked for
    assert held_against(metrics, bounds, "AreaUnderPRCurve", True) == (0.95, "AreaUnderPRCurve")
    assert held_against(metrics, {}, "Recall", True) == (None, "Recall")  # not measured


def test_the_table_and_the_chart_show_every_round():
    rounds = rounds_of(0.5, 0.7, 0.75, Precision=0.8, Recall=0.6)
    lines = table(rounds).splitlines()
    assert lines[0].split() == ["round", "time", "labels", "F1", "precision", "recall", "AUPRC"]
    assert lines[2].split()[:6] == ["2", "2026-11-02", "200", "0.7000", "0.8000", "0.6000"]
    svg = chart_svg(rounds)
    assert svg.startswith("<svg") and svg.count("<polyline") == 3 and svg.count("<circle") == 9
    assert ">200</text>" in svg and "labels (LabelCount)" in svg


def test_the_table_and_the_chart_show_each_estimate_with_its_interval():
    rounds = rounds_of(0.8, 0.8, matrix=FEW, Precision=0.8, Recall=0.8)
    low, high = round_intervals(rounds[0])["F1"]
    assert f"0.8000 [{low:.2f}, {high:.2f}]" in table(rounds).splitlines()[1]
    assert chart_svg(rounds).count("<polygon") == 3  # a band for F1, precision and recall


def test_rounds_recorded_as_label_count_by_version_0_1_still_read():
    old = [
        {"time": f"2026-10-{n + 1:02}", "label_count": 100 * n, "F1": f1}
        for n, f1 in enumerate((0.6, 0.6, 0.7))
    ]
    old.insert(2, {**old[1], "time": "2026-10-02T12", "F1": 0.65})  # no new labels: stands in for round 2
    old.append({"time": "2026-10-04", "label_count": 300, "F1": 0.75})
    got = decide(old, 0.01, 1, {})
    # the round at 0 labels is no point of a learning curve; 0.65 stands in for 100 labels
    assert got["decision"] == KEEP_LABELING and got["evidence"]["rounds"] == 3, got
    assert got["evidence"]["recent_gain"] == 0.05
    assert table(old).splitlines()[4].split()[2] == "200"
    assert ">200</text>" in chart_svg(old)


def test_rounds_without_counts_weigh_as_uncertain_and_still_read():
    # rounds kept before the intervals, with no confusion matrix: F1 known to about +-0.1
    flat = rounds_of(0.8, 0.8, 0.8)
    assert round_intervals(flat[0]) is None
    got = decide(flat, 0.01, 2, {})
    assert got["decision"] == KEEP_LABELING and "too wide to tell" in got["reason"]
    assert got["evidence"]["recent_upper"] == pytest.approx(0.1 / 2**0.5, abs=1e-4)  # one standard error
    assert table(flat).splitlines()[1].split()[3] == "0.8000"
    assert "<polygon" not in chart_svg(flat)  # no band where there is no interval
