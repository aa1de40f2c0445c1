"""The quality history (one S3 object per round) and the plateau rule that stops asking for labels."""

from __future__ import annotations

import re
import threading

import pytest

from airflow_provider_glue_labeling.emulator.seed import label_from_truth, people
from airflow_provider_glue_labeling.history import (
    GOOD_ENOUGH,
    KEEP_LABELING,
    PLATEAU,
    chart_svg,
    decide,
    read_history,
    record_round,
    table,
)
from tests.conftest import client
from tests.test_dag_runs import run
from tests.test_emulator import import_labels, wait

HISTORY = "s3://labels-bkt/quality-history/"


def rounds_of(*f1s, **metrics):
    return [
        {"time": f"2026-11-{n + 1:02}", "label_count": 100 * n, "F1": f1, **metrics}
        for n, f1 in enumerate(f1s)
    ]


def test_rounds_are_appended_and_read_back_oldest_first(aws):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client("s3").create_bucket(Bucket="labels-bkt")
    s3 = S3Hook(aws_conn_id=None)
    for when in ("2026-11-29T10:00:00+00:00", "2026-11-01T10:00:00+00:00", "2026-11-15T10:00:00+00:00"):
        record_round(s3, HISTORY, {"time": when, "F1": 0.5})
    assert [r["time"][:10] for r in read_history(HISTORY, aws_conn_id=None)] == [
        "2026-11-01",
        "2026-11-15",
        "2026-11-29",
    ]
    assert read_history("s3://labels-bkt/elsewhere/", aws_conn_id=None) == []


def test_two_writers_at_once_lose_no_round(aws):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client("s3").create_bucket(Bucket="labels-bkt")
    same_time = "2026-11-29T10:00:00.000000+00:00"  # even at the same microsecond

    def writer(name: str) -> None:
        s3 = S3Hook(aws_conn_id=None)
        for number in range(15):
            record_round(s3, HISTORY, {"time": same_time, "writer": name, "number": number})

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rounds = read_history(HISTORY, aws_conn_id=None)
    assert sorted((r["writer"], r["number"]) for r in rounds) == [(w, n) for w in "ab" for n in range(15)]


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


def test_a_retry_that_records_its_evaluation_again_keeps_one_round(aws):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client("s3").create_bucket(Bucket="labels-bkt")
    s3 = S3Hook(aws_conn_id=None)
    for attempt in ("2026-11-29T10:00:00+00:00", "2026-11-29T10:05:00+00:00"):
        record_round(s3, HISTORY, {"time": attempt, "task_run_id": "tsk-1", "F1": 0.5})
    assert [r["time"] for r in read_history(HISTORY, aws_conn_id=None)] == ["2026-11-29T10:05:00+00:00"]


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


def add_labels(endpoint, transform_id, name):
    """People label a fresh labeling set from the truth, and it is imported."""
    glue, s3 = client("glue", endpoint), client("s3", endpoint)
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path=f"s3://labels-bkt/{name}/"
    )["TaskRunId"]
    assert wait(glue, transform_id, run_id)["Status"] == "SUCCEEDED"
    labeling_set = s3.get_object(Bucket="labels-bkt", Key=f"{name}/{run_id}.csv")["Body"].read()
    s3.put_object(
        Bucket="labels-bkt",
        Key=f"{name}-labels.csv",
        Body=label_from_truth(labeling_set, people(120)[1], "id"),
    )
    assert import_labels(glue, transform_id, f"s3://labels-bkt/{name}-labels.csv")["Status"] == "SUCCEEDED"


def test_each_evaluation_records_a_round_and_decides_whether_labels_still_help(
    transform, endpoint, tmp_path, task_log
):
    glue = client("glue", endpoint)

    def evaluate_round():
        state, _, result = run("evaluate_rounds", transform, tmp_path, history=HISTORY)
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
    assert "2 round(s) with new labels so far" in evaluate_round()["reason"]
    add_labels(endpoint, transform, "round-3")
    third = evaluate_round()
    rounds = read_history(HISTORY)
    counts = [r["label_count"] for r in rounds]
    assert counts[0] == counts[1] < counts[2] < counts[3]
    f1s = [rounds[1]["F1"], rounds[3]["F1"]]  # the rule compares the round before the last two
    expected = PLATEAU if round(f1s[1] - f1s[0], 9) < 0.01 else KEEP_LABELING
    assert third["decision"] == expected
    assert f"F1 went from {f1s[0]:.4f} to {f1s[1]:.4f}" in third["reason"]
    assert len({r["task_run_id"] for r in rounds}) == 4
    assert {r["transform_id"] for r in rounds} == {transform} and {r["dag_id"] for r in rounds} == {
        "evaluate_rounds"
    }
    assert len({r["run_id"] for r in rounds}) == 4
    assert all(set(r["ConfusionMatrix"]) >= {"NumTruePositives", "NumFalsePositives"} for r in rounds)
    logged = task_log()
    assert f"Teaching decision: {expected} (" in logged
    assert "Recorded round 4 at quality-history/round-" in logged
    assert re.search(r"^\s*4 \d{4}-\d\d-\d\dT\S+\s+\d+\s+0\.\d{4}", logged, re.MULTILINE), logged
