"""Each evaluation with a history records its round and pushes its decision, in real DAG runs."""

from __future__ import annotations

import re

from airflow_provider_glue_labeling.history import KEEP_LABELING, PLATEAU, read_history
from tests.helpers import add_labels, client
from tests.helpers import run_dag as run

HISTORY = "s3://labels-bkt/quality-history/"


def test_each_evaluation_records_a_round_and_decides_whether_labels_still_help(
    transform, endpoint, tmp_path, task_log
):
    glue = client("glue", endpoint)

    def evaluate_round(over_rounds="2"):
        state, _, result = run(
            "evaluate_rounds", transform, tmp_path, history=HISTORY, over_rounds=over_rounds
        )
        assert state == "success"
        return result["decision"]

    first = evaluate_round()  # no labels yet: nothing to evaluate, keep labeling
    assert first == {
        "decision": KEEP_LABELING,
        "reason": f"transform {transform} has no labels yet: label a first round",
    }
    assert glue.get_ml_task_runs(TransformId=transform)["TaskRuns"] == []
    assert read_history(HISTORY) == []

    add_labels(endpoint, transform, "round-1")
    assert "1 round(s) with new labels so far" in evaluate_round()["reason"]
    # evaluated again with no new labels: recorded, but it is no new round for the rule
    assert "1 round(s) with new labels so far" in evaluate_round()["reason"]
    add_labels(endpoint, transform, "round-2")
    compared = evaluate_round(over_rounds="1")  # a template renders it as text
    rounds = read_history(HISTORY)
    counts = [r["LabelCount"] for r in rounds]
    assert counts[0] == counts[1] < counts[2]
    # The rule (tested on crafted histories in tests/unit) compared the second round, which stands
    # in for the first label count, with the last.
    assert compared["decision"] in (PLATEAU, KEEP_LABELING)
    assert f"F1 went from {rounds[1]['F1']:.4f} to {rounds[2]['F1']:.4f}" in compared["reason"]
    assert "over the last 1 round(s)" in compared["reason"]
    assert len({r["task_run_id"] for r in rounds}) == 3
    assert {r["transform_id"] for r in rounds} == {transform} and {r["dag_id"] for r in rounds} == {
        "evaluate_rounds"
    }
    assert len({r["run_id"] for r in rounds}) == 3
    assert all(set(r["ConfusionMatrix"]) >= {"NumTruePositives", "NumFalsePositives"} for r in rounds)
    logged = task_log()
    assert f"Teaching decision: {compared['decision']} (" in logged
    assert "Recorded round 3 at quality-history/round-" in logged
    assert re.search(r"^\s*3 \d{4}-\d\d-\d\dT\S+\s+\d+\s+0\.\d{4}", logged, re.MULTILINE), logged
