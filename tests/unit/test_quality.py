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


def rounds_of(*f1s, **metrics):
    return [
        {"time": f"2026-11-{n + 1:02}", "LabelCount": 100 * n, "F1": f1, **metrics}
        for n, f1 in enumerate(f1s)
    ]


@pytest.mark.parametrize(
    ("f1s", "decision", "reason"),
    [
        # exactly min_gain over the last two rounds: still worth labeling
        ((0.70, 0.80, 0.81), KEEP_LABELING, "F1 went from 0.7000 to 0.8100 (+0.1100)"),
        ((0.50, 0.80, 0.81), KEEP_LABELING, "over the last 2 round(s), at least 0.01"),
        ((0.795, 0.80, 0.80), PLATEAU, "more labels no longer help: F1 went from 0.7950 to 0.8000 (+0.0050)"),
        # just under min_gain, and a drop in quality
        ((0.80, 0.805, 0.8099), PLATEAU, "(+0.0099) over the last 2 round(s), less than 0.01"),
        ((0.90, 0.70, 0.80), PLATEAU, "(-0.1000)"),
        # a dip in the last round alone: F1 still rose over the two rounds
        ((0.60, 0.85, 0.78), KEEP_LABELING, "F1 went from 0.6000 to 0.7800 (+0.1800)"),
        # fewer rounds than the rule compares
        (
            (0.5,),
            KEEP_LABELING,
            "1 round(s) with new labels so far; the plateau rule compares F1 over 2 round(s), so it needs 3",
        ),
        ((0.5, 0.5), KEEP_LABELING, "2 round(s) with new labels so far"),
    ],
)
def test_the_plateau_rule_at_its_edges(f1s, decision, reason):
    got = decide(rounds_of(*f1s), min_gain=0.01, over_rounds=2, thresholds={"F1": None})
    assert got["decision"] == decision and reason in got["reason"], got


def test_an_evaluation_without_new_labels_is_no_new_round():
    rounds = rounds_of(0.80, 0.90)
    rounds.append({**rounds[-1], "time": "2026-11-30", "F1": 0.89})  # a week nobody labeled
    got = decide(rounds, min_gain=0.01, over_rounds=2, thresholds={})
    assert got["decision"] == KEEP_LABELING and got["reason"].startswith("2 round(s) with new labels so far")


def test_exactly_min_gain_is_a_gain():
    got = decide(rounds_of(0.80, 0.805, 0.81), min_gain=0.01, over_rounds=2, thresholds={})
    assert got == {
        "decision": KEEP_LABELING,
        "reason": "keep labeling: F1 went from 0.8000 to 0.8100 (+0.0100) over the last 2 round(s), at least 0.01",
    }


def test_good_enough_when_every_threshold_is_met_and_only_then():
    rounds = rounds_of(0.6, 0.9, Precision=0.95)
    both = decide(rounds, 0.01, 2, {"F1": 0.85, "Precision": 0.9, "Recall": None})
    assert both == {
        "decision": GOOD_ENOUGH,
        "reason": "good enough: F1 0.9000 >= 0.8500, Precision 0.9500 >= 0.9000",
    }
    assert decide(rounds, 0.01, 2, {"F1": 0.85, "Precision": 0.96})["decision"] == KEEP_LABELING
    assert decide(rounds, 0.01, 2, {"F1": None})["decision"] == KEEP_LABELING  # no threshold: never


def test_the_table_and_the_chart_show_every_round():
    rounds = rounds_of(0.5, 0.7, 0.75, Precision=0.8, Recall=0.6)
    lines = table(rounds).splitlines()
    assert lines[0].split() == ["round", "time", "labels", "F1", "precision", "recall", "AUPRC"]
    assert lines[2].split()[:6] == ["2", "2026-11-02", "100", "0.7000", "0.8000", "0.6000"]
    svg = chart_svg(rounds)
    assert svg.startswith("<svg") and svg.count("<polyline") == 3 and svg.count("<circle") == 9
    assert ">200</text>" in svg and "labels (LabelCount)" in svg


def test_rounds_recorded_as_label_count_by_version_0_1_still_read():
    old = [
        {"time": f"2026-10-{n + 1:02}", "label_count": 100 * n, "F1": f1}
        for n, f1 in enumerate((0.6, 0.6, 0.7))
    ]
    old.insert(2, {**old[1], "time": "2026-10-02T12", "F1": 0.65})  # no new labels: stands in for round 2
    assert decide(old, 0.01, 1, {}) == {
        "decision": "keep_labeling",
        "reason": "keep labeling: F1 went from 0.6500 to 0.7000 (+0.0500) over the last 1 round(s), at least 0.01",
    }
    assert table(old).splitlines()[4].split()[2] == "200"
    assert ">200</text>" in chart_svg(old)
