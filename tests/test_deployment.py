"""On a real deployment (api-server, scheduler, triggerer as processes): what a user's kill does."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

import airflow_provider_glue_labeling.emulator as emulator
from tests.conftest import ROOT, client

pytestmark = pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS,
    reason="the deployment harness runs Airflow 3's api-server, scheduler and triggerer",
)


@pytest.fixture
def airflow_deployment(airflow_db, tmp_path):
    from dev.deployment import deployment

    with deployment(
        tmp_path / "home", {"tests": ROOT / "tests" / "dags"}, airflow_db / "airflow.db"
    ) as running:
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
    api = deployment.client()
    answer = api.post(
        f"{deployment.url}/api/v2/dags/deferred_kill/dagRuns",
        json={"logical_date": None, "conf": {"transform_id": transform}},
        timeout=10,
    )
    assert answer.ok, answer.text
    run_id = answer.json()["dag_run_id"]

    def states():
        return {
            t: deployment.task_instance(api, "deferred_kill", run_id, t)["state"] for t in ("cancel", "keep")
        }

    def polls():
        return len(emulator.calls("GetMLTaskRun"))

    wait_until(
        lambda: states() == {"cancel": "deferred", "keep": "deferred"},
        180,
        "both waits deferred",
        deployment.logs,
    )
    wait_until(lambda: polls() >= 4, 60, "the triggerer polling", deployment.logs)
    runs = generation_runs(endpoint, transform)
    (cancel_id, _), (keep_id, _) = runs["s3://labels-bkt/cancel/"], runs["s3://labels-bkt/keep/"]

    # The triggerer stops and comes back: the waits go on, nothing is cancelled.
    deployment.stop("triggerer")
    deployment.start("triggerer")
    before = polls()
    wait_until(lambda: polls() >= before + 4, 120, "the restarted triggerer polling", deployment.logs)
    assert emulator.calls("CancelMLTaskRun") == []
    assert states() == {"cancel": "deferred", "keep": "deferred"}

    # A user marks both failed, as the UI does through the REST API.
    for task_id in ("cancel", "keep"):
        answer = api.patch(
            f"{deployment.url}/api/v2/dags/deferred_kill/dagRuns/{run_id}/taskInstances/{task_id}",
            json={"new_state": "failed"},
            timeout=10,
        )
        assert answer.ok, answer.text
    wait_until(lambda: emulator.calls("CancelMLTaskRun"), 120, "the cancel", deployment.logs)
    wait_until(
        lambda: generation_runs(endpoint, transform)["s3://labels-bkt/cancel/"][1] == "STOPPED",
        30,
        "the run to stop",
        deployment.logs,
    )
    assert [c[2]["TaskRunId"] for c in emulator.calls("CancelMLTaskRun")] == [cancel_id]
    assert generation_runs(endpoint, transform)["s3://labels-bkt/keep/"] == (keep_id, "RUNNING")
    assert states() == {"cancel": "failed", "keep": "failed"}
