"""Retries and Clears as Airflow runs them: a retry adopts only its own run, a Clear runs again."""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.emulator.seed import label_from_truth, people
from tests.helpers import TRIES, client, load_test_dags, put_labels, runs_of, wait_for
from tests.helpers import run_dag as run

DAGS = load_test_dags().DAGS


# -- a retry adopts only the task's own run --------------------------------------------------------


def test_retry_checks_its_labels_file_first_and_never_adopts_another_teams_import(
    transform, endpoint, tmp_path, task_log
):
    emulator.configure(run_seconds=30)  # team A's import is still running when team B retries
    labels_a = put_labels(endpoint, "team-a/labels.csv")
    _state, states, _ = run(
        "two_teams_import",
        transform,
        tmp_path,
        labels_a=labels_a,
        labels_b="s3://labels-bkt/team-b/labels.csv",
    )
    assert states == {"first": "success", "second": "failed"}
    assert TRIES["second"] == 2
    log = task_log()
    assert "Labels file s3://labels-bkt/team-b/labels.csv not found" in log
    assert "Adopting" not in log
    ((_run_id, status, echo),) = runs_of(endpoint, transform, "IMPORT_LABELS")
    assert echo["InputS3Path"] == labels_a and status == "RUNNING"


def test_mapped_generation_retry_never_adopts_a_sibling_run(transform, endpoint, task_log):
    emulator.configure(run_seconds=30)  # three runs fill the transform's quota until the end
    dag_run = DAGS["generate_mapped"].test(run_conf={"transform_id": transform})
    tis = {ti.map_index: ti for ti in dag_run.get_task_instances()}
    failed = [i for i, ti in tis.items() if ti.state == "failed"]
    assert len(failed) == 1 and tis[failed[0]].try_number == 2, {i: ti.state for i, ti in tis.items()}
    log = task_log()
    assert "Adopting" not in log
    assert "not this task's: OutputS3Path 's3://labels-bkt/sets/" in log
    runs = runs_of(endpoint, transform, "LABELING_SET_GENERATION")
    prefixes = sorted(echo["OutputS3Path"] for _, _, echo in runs)
    assert prefixes == sorted(f"s3://labels-bkt/sets/{i}/" for i in tis if i not in failed)


@pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS,
    reason="below Airflow 3.3 no try's start is recorded: a retry's window opens at the DAG run's start",
)
def test_retry_of_a_try_that_started_nothing_adopts_nothing(
    transform, endpoint, tmp_path, monkeypatch, task_log
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    emulator.configure(run_seconds=5)  # "first" is still importing when "second" retries
    labels = put_labels(endpoint, "same/labels.csv")
    # "second"'s first try fails while checking its labels file, before it starts anything
    emulator.inject_fault("GetMLTransform", "throttle", calls=[2])
    _state, states, _ = run("import_twice", transform, tmp_path, labels_a=labels)
    assert states == {"first": "success", "second": "success"}
    assert TRIES["second"] == 2
    assert "Adopting" not in task_log()
    assert len(runs_of(endpoint, transform, "IMPORT_LABELS")) == 2


# -- a Clear runs again ----------------------------------------------------------------------------


def label_one_set(endpoint, transform_id, name):
    """Generate a labeling set, label it from the truth and import it (as people would, outside Airflow)."""
    glue, s3 = client("glue", endpoint), client("s3", endpoint)
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path=f"s3://labels-bkt/people-sets/{name}/"
    )["TaskRunId"]
    wait_for(
        lambda: glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "SUCCEEDED"
    )
    labeling_set = s3.get_object(Bucket="labels-bkt", Key=f"people-sets/{name}/{run_id}.csv")["Body"].read()
    path = put_labels(
        endpoint, f"people-labels/{name}.csv", label_from_truth(labeling_set, people(120)[1], "id")
    )
    run_id = glue.start_import_labels_task_run(TransformId=transform_id, InputS3Path=path)["TaskRunId"]
    wait_for(
        lambda: glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "SUCCEEDED"
    )


def test_clear_runs_generation_and_evaluation_again(transform, endpoint, tmp_path, task_log):
    label_one_set(endpoint, transform, "first")
    result = tmp_path / "result.json"
    conf = {"transform_id": transform, "output_s3_path": "s3://labels-bkt/sets/", "result_file": str(result)}
    dag_run = DAGS["generate_and_evaluate"].test(run_conf=conf)
    assert dag_run.state == "success"
    first = json.loads(result.read_text())["metrics"]
    label_one_set(endpoint, transform, "second")  # more labels since: the last metrics are stale

    states = load_test_dags().clear_and_run(
        "generate_and_evaluate", dag_run.run_id, ["generate", "evaluate", "record"]
    )

    assert states == {"generate": "success", "evaluate": "success", "record": "success"}
    log = task_log()
    assert "skipping resubmission" not in log
    if AIRFLOW_V_3_3_PLUS:  # below, with no task-state store, every try starts anew anyway
        assert log.count("and was cleared since: starting anew") == 2
    assert [s for _, s, _ in runs_of(endpoint, transform, "LABELING_SET_GENERATION")] == ["SUCCEEDED"] * 4
    evaluations = runs_of(endpoint, transform, "EVALUATION")
    assert [s for _, s, _ in evaluations] == ["SUCCEEDED"] * 2
    second = json.loads(result.read_text())["metrics"]
    latest = client("glue", endpoint).get_ml_transform(TransformId=transform)["EvaluationMetrics"]
    assert second == latest["FindMatchesMetrics"] != first


# -- the backup export before a replace ------------------------------------------------------------


def test_deferrable_import_defers_its_backup_export_too(transform, endpoint, tmp_path, task_log):
    label_one_set(endpoint, transform, "first")
    labels = put_labels(endpoint, "replacement/labels.csv")
    state, states, _ = run("import_replace_deferrable", transform, tmp_path, labels_a=labels)
    assert state == "success", states
    ((backup_id, status, echo),) = runs_of(endpoint, transform, "EXPORT_LABELS")
    assert (status, echo["OutputS3Path"]) == ("SUCCEEDED", "s3://labels-bkt/backup/")
    imports = runs_of(endpoint, transform, "IMPORT_LABELS")
    assert imports[-1][2] == {"InputS3Path": labels, "Replace": True}
    log = task_log()
    assert f"Deferring until Glue ML task run {backup_id} ends" in log
    assert f"Deferring until Glue ML task run {imports[-1][0]} ends" in log
