"""Reading Glue's FindMatchesMetrics: the one reader the evaluation, the history and the page use."""

from __future__ import annotations

from airflow_provider_glue_labeling.quality.metrics import (
    METRIC_NAMES,
    METRICS,
    find_matches_metrics,
    numbers,
)

EVALUATED = {
    "TransformId": "tfm-1",
    "LabelCount": 200,
    "EvaluationMetrics": {
        "TransformType": "FIND_MATCHES",
        "FindMatchesMetrics": {
            "AreaUnderPRCurve": 0.9,
            "Precision": 0.8,
            "Recall": 0.6,
            "F1": 0.7,
            "ConfusionMatrix": {"NumTruePositives": 6},
        },
    },
}


def test_the_metrics_of_an_evaluated_transform_are_glues_own():
    assert find_matches_metrics(EVALUATED) is EVALUATED["EvaluationMetrics"]["FindMatchesMetrics"]


def test_a_transform_never_evaluated_has_no_metrics():
    assert find_matches_metrics({"TransformId": "tfm-1"}) == {}
    assert find_matches_metrics({"EvaluationMetrics": None}) == {}
    assert find_matches_metrics({"EvaluationMetrics": {"TransformType": "FIND_MATCHES"}}) == {}
    assert find_matches_metrics({"EvaluationMetrics": {"FindMatchesMetrics": None}}) == {}


def test_the_numbers_of_the_metrics_in_the_quality_gates_order():
    got = numbers(find_matches_metrics(EVALUATED))
    assert list(got.items()) == [("F1", 0.7), ("Precision", 0.8), ("Recall", 0.6), ("AreaUnderPRCurve", 0.9)]
    assert numbers({"F1": 0.5}) == {"F1": 0.5, "Precision": None, "Recall": None, "AreaUnderPRCurve": None}


def test_each_metric_has_its_threshold_parameter():
    assert METRIC_NAMES == ("F1", "Precision", "Recall", "AreaUnderPRCurve")
    assert dict(METRICS) == {
        "F1": "min_f1",
        "Precision": "min_precision",
        "Recall": "min_recall",
        "AreaUnderPRCurve": "min_area_under_pr_curve",
    }
