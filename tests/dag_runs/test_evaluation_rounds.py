"""Each evaluation with a history records its round and pushes its decision, in real DAG runs."""

from __future__ import annotations

import re

from airflow_provider_glue_labeling.history import BUDGET_SPENT, KEEP_LABELING, PLATEAU, read_history
from airflow_provider_glue_labeling.versions import HAS_ASSET_ALIASES
from tests.helpers import add_labels, asset_events, client
from tests.helpers import run_dag as run

HISTORY = "s3://labels-bkt/quality-history/"


def test_each_evaluation_records_a_round_and_decides_whether_labels_still_help(
    transform, endpoint, tmp_path, task_log
):
    glue = client("glue", endpoint)

    def evaluate_round(over_rounds="2"):
        state, _, result = run(
            "evaluate_rounds", transform, tmp_path, history=HISTORY, over_rounds=over_rounds, label_floor="0"
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
    assert "1 round(s) with new labels and an F1 so far" in evaluate_round()["reason"]
    # evaluated again with no new labels: recorded, but it is no new round for the rule
    assert "1 round(s) with new labels and an F1 so far" in evaluate_round()["reason"]
    add_labels(endpoint, transform, "round-2")
    assert "2 round(s) with new labels and an F1 so far" in evaluate_round()["reason"]
    add_labels(endpoint, transform, "round-3")
    decided = evaluate_round(over_rounds="1")  # a template renders it as text
    rounds = read_history(HISTORY)
    counts = [r["LabelCount"] for r in rounds]
    assert counts[0] == counts[1] < counts[2] < counts[3]
    # The rule (tested on crafted histories in tests/unit) weighed the three rounds that added
    # labels (the second stands in for the first label count); the recent trend takes at least 3.
    assert decided["decision"] in (PLATEAU, KEEP_LABELING)
    evidence = decided["evidence"]
    assert (evidence["rounds"], evidence["recent_rounds"], evidence["labels"]) == (3, 3, counts[3])
    assert (
        f"another {counts[3] - counts[2]} labels gain F1 {evidence['curve_gain']:+.4f}" in decided["reason"]
    )
    assert f"at {counts[3]} labels" in decided["reason"]
    last = rounds[-1]
    assert last["Intervals"]["F1"][0] <= last["F1"] <= last["Intervals"]["F1"][1]
    assert len({r["task_run_id"] for r in rounds}) == 4, counts
    assert {r["transform_id"] for r in rounds} == {transform} and {r["dag_id"] for r in rounds} == {
        "evaluate_rounds"
    }
    assert len({r["run_id"] for r in rounds}) == 4
    assert all(set(r["ConfusionMatrix"]) >= {"NumTruePositives", "NumFalsePositives"} for r in rounds)
    logged = task_log()
    assert f"Teaching decision: {decided['decision']} (" in logged
    assert "Recorded round 4 at quality-history/round-" in logged
    assert re.search(r"^\s*4 \d{4}-\d\d-\d\dT\S+\s+\d+\s+0\.\d{4}", logged, re.MULTILINE), logged


def test_a_spent_label_budget_stops_the_asking_and_says_so_everywhere(
    transform, endpoint, tmp_path, task_log
):
    history = "s3://labels-bkt/budgeted-history/"
    add_labels(endpoint, transform, "round-1")
    state, _, result = run(
        "evaluate_rounds", transform, tmp_path, history=history, label_floor="0", max_labels="1"
    )
    assert state == "success"
    decided = result["decision"]
    labels = client("glue", endpoint).get_ml_transform(TransformId=transform)["LabelCount"]
    # one round: the evidence alone would keep labeling, but the budget of 1 label is spent
    assert decided["decision"] == BUDGET_SPENT
    assert decided["reason"] == (
        f"the label budget is spent: {labels} labels reach max_labels 1 (the evidence alone would say: "
        "keep labeling: 1 round(s) with new labels and an F1 so far; the trends of F1 need 3)"
    )
    # the history's round, the log and the transform's asset event say so
    (recorded,) = read_history(history)
    assert (recorded["decision"], recorded["reason"]) == (BUDGET_SPENT, decided["reason"])
    logged = task_log()
    assert f"Teaching decision: budget_spent ({decided['reason']})" in logged
    if HAS_ASSET_ALIASES:  # Airflow 2: a templated transform id records no dataset event
        event = asset_events(f"glue-ml-transform://{transform}/")[-1]
        # a spent budget stops the asking; it does not say the transform is good
        assert (event["decision"], event["passed"]) == (BUDGET_SPENT, False)
    # the next evaluation's table shows the decision of the round before
    run("evaluate_rounds", transform, tmp_path, history=history, label_floor="0", max_labels="1")
    assert re.search(r"^\s*1 \d{4}-\S+\s+\d+ .*\s+budget_spent$", task_log(), re.MULTILINE)
