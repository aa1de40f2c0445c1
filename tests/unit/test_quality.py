"""The evaluation's decisions on crafted histories, and the rounds' table and chart."""

from __future__ import annotations

import re

import pytest

from airflow_provider_glue_labeling.history import (
    BUDGET_SPENT,
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
from airflow_provider_glue_labeling.quality.rounds import round_intervals, with_interval


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
# The F1 interval of MANY by the delta method (test_intervals: the draws agree on large counts):
# F1 = 2TP/(2TP+FP+FN) = 10000/11000 = 0.90909; with p = TP/(TP+FP+FN) = 5000/6000 = 0.83333 and
# N = 6000, se = 2/(1+p)^2 * sqrt(p(1-p)/N) = 2/3.36111 * sqrt(0.13889/6000) = 0.59504 * 0.0048113
# = 0.0028629, and 1.96 se = 0.0056: [0.9035, 0.9147]. Its F1 spread, 0.0029, is below MIN_SPREAD:
# each round of MANY weighs 1 / 0.005^2 = 40,000.
MANY_F1 = (0.9035, 0.9147)
# Precision of FEW, TP 12 of TP+FP 15 (and recall, TP 12 of TP+FN 15), by the Wilson interval:
# z^2 = 1.959964^2 = 3.841459, scale = 1 + z^2/15 = 1.256097, centre = (0.8 + z^2/30) / scale
# = 0.928049 / 1.256097 = 0.738836, half = z/scale * sqrt(0.8*0.2/15 + z^2/(4*15^2))
# = 1.560360 * sqrt(0.0106667 + 0.0042683) = 1.560360 * 0.122209 = 0.190690: [0.5481, 0.9295].
FEW_PRECISION = "[0.5481, 0.9295]"


def f1_interval_in(text: str) -> tuple[float, float]:
    """The interval after "last F1 0.xxxx" in a decision's reason."""
    found = re.search(r"last F1 \d\.\d{4} \[(\d\.\d{4}), (\d\.\d{4})\]", text)
    assert found, text
    return float(found[1]), float(found[2])


def test_a_noisy_drop_with_wide_intervals_keeps_labeling():
    # 0.80 -> 0.96 -> 0.76 at 100, 200, 300 labels: the two-point rule called this a plateau.
    got = decide(
        rounds_of(0.80, 0.96, 0.76, matrix=FEW), min_gain=0.01, over_rounds=2, thresholds={}, label_floor=10
    )
    assert got["decision"] == KEEP_LABELING
    assert got["reason"].startswith("keep labeling: the intervals are too wide to tell: another 100 labels")
    evidence = got["evidence"]
    # equal weights: the line through (100, .80), (200, .96), (300, .76) has the slope
    # (-100 * -0.04 + 100 * -0.08) / (100^2 + 100^2) = -4 / 20000 = -0.0002: -0.02 for 100 labels
    assert evidence["recent_gain"] == -0.02
    # one standard error above it: FEW's F1 (TP 12, FP 3, FN 3; F1 = 24/30) by the delta method,
    # p = 12/18, se = 2/(1+p)^2 * sqrt(p(1-p)/18) = 0.72 * 0.1111 = 0.080, so the bound is
    # -0.02 + 0.080 / sqrt(20000) * 100 = -0.02 + 0.0566 = 0.0366 (the draws give a slightly narrower F1)
    assert evidence["recent_upper"] == pytest.approx(0.0366, abs=0.002)
    assert f"-0.0200 (up to +{evidence['recent_upper']:.4f}) on the trend of the last 3" in got["reason"]
    assert "last F1 0.7600 [" in got["reason"] and got["reason"].endswith(
        "the curve's bound not below min_gain 0.01"
    )


def test_a_flat_run_with_narrow_intervals_is_a_plateau():
    got = decide(rounds_of(0.910, 0.911, 0.909, matrix=MANY), min_gain=0.01, over_rounds=2, thresholds={})
    assert got["decision"] == PLATEAU, got
    # Every round weighs 40,000 (MANY). The learning curve: x = 1/labels = 0.01, 0.005, 0.003333
    # (mean 0.0061111), y = .910, .911, .909 (mean .910); Sxx = 40000 * (0.0038889^2 + 0.0011111^2
    # + 0.0027778^2) = 40000 * 2.40741e-5 = 0.962963, Sxy = 40000 * (0 - 0.0011111 * 0.001
    # + 0.0027778 * 0.001) = 0.0666667, slope 0.0692308. Another 100 labels move x by 1/400 - 1/300
    # = -0.00083333: a gain of -0.0000577, -0.0001; the bound starts at no gain and adds
    # sqrt(1 / 0.962963) * 0.00083333 = 1.019049 * 0.00083333 = 0.00085: +0.0008.
    # The recent trend: x = 100, 200, 300, Sxx = 40000 * (100^2 + 100^2) = 8e8, Sxy = 40000 * (100 *
    # -0.001) = -4000, slope -5e-6: -0.0005 for 100 labels; the bound adds sqrt(1 / 8e8) * 100
    # = 0.0035355: +0.0030.
    assert got["evidence"] == {
        "rounds": 3,
        "labels": 300,
        "next_labels": 100,
        "curve_gain": -0.0001,
        "curve_upper": 0.0008,
        "recent_rounds": 3,
        "recent_gain": -0.0005,
        "recent_upper": 0.003,
        "min_gain": 0.01,
    }
    reason = got["reason"]
    assert reason.startswith(
        "more labels no longer help: another 100 labels gain F1 -0.0001 (up to +0.0008) on the learning "
        "curve of 3 rounds, -0.0005 (up to +0.0030) on the trend of the last 3; last F1 0.9090 ["
    )
    assert reason.endswith("] at 300 labels; the curve's bound and the trend below min_gain 0.01")
    low, high = f1_interval_in(reason)
    assert low == pytest.approx(MANY_F1[0], abs=0.001) and high == pytest.approx(MANY_F1[1], abs=0.001)


def test_a_clear_rise_keeps_labeling():
    got = decide(rounds_of(0.5, 0.6, 0.7, 0.75, 0.8, matrix=MANY), 0.01, over_rounds=4, thresholds={})
    assert got["decision"] == KEEP_LABELING and got["reason"].endswith("at least min_gain 0.01")
    # equal weights: least squares through (100, .5) ... (500, .8) rises 0.075 a round
    assert got["evidence"]["recent_gain"] == 0.075 and got["evidence"]["recent_rounds"] == 5


def test_a_spent_label_budget_stops_what_the_evidence_would_keep_labeling():
    rising = rounds_of(0.5, 0.6, 0.7, 0.75, 0.8, matrix=MANY)  # 500 labels in 5 rounds, still rising
    kept = decide(rising, 0.01, over_rounds=4, thresholds={}, max_labels=501, max_rounds=6)
    assert kept["decision"] == KEEP_LABELING  # neither budget reached
    by_labels = decide(rising, 0.01, over_rounds=4, thresholds={}, max_labels=500)
    assert by_labels["decision"] == BUDGET_SPENT
    assert by_labels["reason"] == (
        "the label budget is spent: 500 labels reach max_labels 500 (the evidence alone would say: "
        f"{kept['reason']})"
    )
    assert by_labels["evidence"]["labels"] == 500 and by_labels["evidence"]["taught_rounds"] == 5
    by_rounds = decide(rising, 0.01, over_rounds=4, thresholds={}, max_rounds=5)
    assert by_rounds["decision"] == BUDGET_SPENT
    assert by_rounds["reason"].startswith("the label budget is spent: 5 rounds added labels, max_rounds 5 (")
    # before the trends can be fitted (2 rounds), the budget still counts
    early = decide(rising[:2], 0.01, over_rounds=4, thresholds={}, max_labels=200)
    assert early["decision"] == BUDGET_SPENT and "2 round(s) with new labels" in early["reason"]
    # an evaluation with no new labels is no new round of the budget
    again = [*rising[:3], {**rising[2], "time": "2026-11-03T12"}]
    assert decide(again, 0.01, over_rounds=4, thresholds={}, max_rounds=4)["decision"] == KEEP_LABELING


def test_a_spent_budget_gives_way_to_good_enough_and_plateau():
    rising = rounds_of(0.5, 0.6, 0.7, 0.75, 0.8, matrix=MANY)
    met = decide(rising, 0.01, 4, {"F1": 0.8}, max_labels=100)
    assert met["decision"] == GOOD_ENOUGH
    flat = rounds_of(0.9, 0.9, 0.9, 0.9, matrix=MANY)
    assert decide(flat, 0.01, 3, {}, max_labels=100)["decision"] == PLATEAU


def test_the_learning_curve_predicts_shrinking_gains():
    # F1 = 0.9 - 20 / labels exactly: the next 100 labels after 500 gain 20/500 - 20/600
    # = 0.04 - 0.033333 = 0.006667
    rounds = rounds_of(*(0.9 - 20 / (100 * n) for n in range(1, 6)), matrix=MANY)
    assert learning_curve(rounds).gain == 0.0067
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
        "least 50 of each (label_floor)"
    )
    # with a floor of 5 the rule weighs the trends instead: three rounds at 0.95 are a plateau
    assert decide(flat, 0.01, 2, {}, label_floor=5)["decision"] == PLATEAU


def test_the_recent_trend_is_held_to_its_estimate_not_its_bound():
    # Flat at 0.95 on 50 tested matches a round: the learning curve's bound is below min_gain, the
    # recent trend's estimate is 0, but its bound (three rounds of F1 +-0.05) is far above: a rule
    # that waits for that bound asks for labels that buy nothing (the stopping benchmark's runs
    # with no decision).
    flat = rounds_of(0.95, 0.95, 0.95, matrix=(48, 2, 300, 2))
    got = decide(flat, 0.01, 2, {})
    evidence = got["evidence"]
    assert evidence["curve_upper"] < 0.01 and evidence["recent_gain"] == 0.0
    assert evidence["recent_upper"] > 0.01
    assert got["decision"] == PLATEAU, got
    assert got["reason"].endswith("the curve's bound and the trend below min_gain 0.01")
    # a trend that still rises keeps people labeling, whatever the curve says
    rising = rounds_of(0.93, 0.95, 0.97, matrix=(48, 2, 300, 2))
    assert decide(rising, 0.01, 2, {})["decision"] == KEEP_LABELING


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


def test_thresholds_on_the_lower_bound_by_default():
    # F1 0.92 on 25 matching pairs (TP 23, FP 2, FN 2: F1 = 46/50); the delta method puts its
    # lower bound near 0.92 - 1.96 * 2/(1+p)^2 * sqrt(p(1-p)/27) with p = 23/27 = 0.85185, that is
    # 0.92 - 1.96 * 0.583199 * 0.068368 = 0.92 - 0.078 = 0.84 (the draws: lower still), below 0.9
    rounds = rounds_of(0.7, 0.92, matrix=(23, 2, 200, 2), Precision=0.92)
    estimate = decide(rounds, 0.01, 2, {"F1": 0.9}, require_lower_bound=False)
    assert estimate["decision"] == GOOD_ENOUGH  # the estimate meets it
    strict = decide(rounds, 0.01, 2, {"F1": 0.9})  # the lower bound, by default, does not
    assert strict["decision"] == KEEP_LABELING
    # Precision, TP 23 of 25, by the Wilson interval: scale = 1 + 3.841459/25 = 1.153658, centre =
    # (0.92 + 3.841459/50) / scale = 0.996829 / 1.153658 = 0.864058, half = 1.959964/1.153658 *
    # sqrt(0.92*0.08/25 + 3.841459/2500) = 1.698913 * sqrt(0.0029440 + 0.0015366) = 1.698913 *
    # 0.066937 = 0.113720: [0.7503, 0.9778]
    rows, failed = quality_gate(rounds[-1], {"Precision": 0.9}, require_lower_bound=True)
    assert failed == ["Precision lower bound 0.7503 < 0.9"]
    assert rows.splitlines()[1].split() == ["Precision", "0.9200", "[0.7503,", "0.9778]", "0.9000", "FAIL"]
    # with 5,000 matching pairs (TP 5000, FP 250, FN 250) F1 = 10000/10500 = 0.95238, p = 5000/5500
    # = 0.90909, se = 2/(1+p)^2 * sqrt(p(1-p)/5500) = 0.548753 * 0.0038778 = 0.002128: the lower
    # bound is 0.95238 - 1.96 * 0.002128 = 0.9482
    sure = rounds_of(0.7, 0.95, matrix=(5000, 250, 50000, 250))
    assert decide(sure, 0.01, 2, {"F1": 0.9}, require_lower_bound=True)["reason"].startswith(
        "good enough: F1 lower bound 0.94"
    )


def test_an_estimate_is_shown_with_its_interval_to_four_places():
    assert with_interval(0.8333, [0.68234, 0.9155]) == "0.8333 [0.6823, 0.9155]"
    assert with_interval(1, [0.5, 1.0]) == "1.0000 [0.5000, 1.0000]"
    assert with_interval(0.8, None) == "0.8000"  # a round kept without counts
    assert with_interval(None, [0.5, 1.0]) == "-"  # no estimate
    assert with_interval("n/a", None) == "-"


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
    assert lines[0].split() == ["round", "time", "labels", "F1", "precision", "recall", "AUPRC", "decision"]
    assert lines[2].split()[:6] == ["2", "2026-11-02", "200", "0.7000", "0.8000", "0.6000"]
    svg = chart_svg(rounds)
    assert svg.startswith("<svg") and svg.count("<polyline") == 3 and svg.count("<circle") == 9
    assert ">200</text>" in svg and "labels (LabelCount)" in svg


def test_the_chart_draws_the_labels_agreement_where_rounds_carry_it():
    rounds = rounds_of(0.5, 0.7, 0.75, Precision=0.8, Recall=0.6)
    assert "Agreement (kappa)" not in chart_svg(rounds)
    rounds[1]["agreement"] = {"kappa": 0.62, "f1": 0.7}
    rounds[2]["agreement"] = {"kappa": -0.2, "f1": 0.1}  # below 0: drawn at the axis
    svg = chart_svg(rounds)
    assert "Agreement (kappa)" in svg and svg.count("<polyline") == 4 and svg.count("<circle") == 11
    assert svg.count("<circle") - 9 == 2 and svg.count('fill="#b7791f"') == 3  # 2 points, the legend


def test_the_table_and_the_chart_show_each_estimate_with_its_interval():
    rounds = rounds_of(0.8, 0.8, matrix=FEW, Precision=0.8, Recall=0.8)
    row = table(rounds).splitlines()[1]
    # F1, then precision and recall (both TP 12 of 15: FEW_PRECISION), each to 4 places
    assert re.fullmatch(
        r"\s+1 2026-11-01\s+100 +0\.8000 \[0\.\d{4}, 0\.\d{4}\] "
        rf"+0\.8000 {re.escape(FEW_PRECISION)} +0\.8000 {re.escape(FEW_PRECISION)} +- +-",
        row,
    ), row
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
