"""On a real deployment (scheduler and triggerer as processes, and Airflow 3's api-server): a user's kill."""

from __future__ import annotations

import pytest

import airflow_provider_glue_labeling.emulator as emulator
from tests.helpers import ROOT, client


@pytest.fixture
def airflow_deployment(airflow_db, tmp_path):
    from dev.airflow_env import PRISTINE_DB
    from dev.deployment import deployment

    dags = {"tests": ROOT / "tests" / "dags"}
    with deployment(tmp_path / "home", dags, airflow_db / PRISTINE_DB) as running:
        yield running


def generation_runs(endpoint, transform_id):
    """Each generation run's output path → (TaskRunId, Status)."""
    runs = client("glue", endpoint).get_ml_task_runs(TransformId=transform_id)["TaskRuns"]
    return {
        r["Properties"]["LabelingSetGenerationTaskRunProperties"]["OutputS3Path"]: (
            r["TaskRunId"],
            r["Status"],
        )
        for r in runs
    }


def test_marking_a_deferred_task_failed_cancels_its_run_and_a_triggerer_restart_does_not(
    transform, endpoint, airflow_deployment
):
    from dev.deployment import wait_until

    deployment = airflow_deployment
    emulator.configure(run_seconds=600)
    run_id = deployment.trigger("deferred_kill", {"transform_id": transform})

    def states():
        return deployment.states("deferred_kill", run_id, ["cancel", "keep"])

    def polls():
        return len(emulator.calls("GetMLTaskRun"))

    both_deferred = {"cancel": "deferred", "keep": "deferred"}
    wait_until(lambda: states() == both_deferred, 180, "both waits deferred", deployment.logs)
    wait_until(lambda: len(generation_runs(endpoint, transform)) == 3, 120, "three runs", deployment.logs)
    wait_until(lambda: polls() >= 6, 60, "the triggerer polling", deployment.logs)
    runs = generation_runs(endpoint, transform)
    (cancel_id, _), (keep_id, _) = runs["s3://labels-bkt/cancel/"], runs["s3://labels-bkt/keep/"]

    # The triggerer stops and comes back: the waits go on (the mapped one too), nothing is cancelled.
    deployment.stop("triggerer")
    deployment.start("triggerer")
    before = polls()
    wait_until(lambda: polls() >= before + 4, 120, "the restarted triggerer polling", deployment.logs)
    assert emulator.calls("CancelMLTaskRun") == []
    assert states() == both_deferred

    # A user marks both failed, as in the UI.
    for task_id in ("cancel", "keep"):
        deployment.mark("deferred_kill", run_id, task_id, "failed")
    wait_until(lambda: emulator.calls("CancelMLTaskRun"), 120, "the cancel", deployment.logs)
    wait_until(
        lambda: generation_runs(endpoint, transform)["s3://labels-bkt/cancel/"][1] == "STOPPED",
        30,
        "the run to stop",
        deployment.logs,
    )
    assert [c[2]["TaskRunId"] for c in emulator.calls("CancelMLTaskRun")] == [cancel_id]
    assert generation_runs(endpoint, transform)["s3://labels-bkt/keep/"] == (keep_id, "RUNNING")
    assert generation_runs(endpoint, transform)["s3://labels-bkt/mapped/"][1] == "RUNNING"
    assert states() == {"cancel": "failed", "keep": "failed"}
