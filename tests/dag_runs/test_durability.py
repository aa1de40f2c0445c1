"""Durable under kills, retries, faults and restarts: no duplicate runs, no lost waits, clear errors."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.exceptions import GlueMLError
from airflow_provider_glue_labeling.operators import GlueMLLabelingSetGenerationOperator
from airflow_provider_glue_labeling.triggers import GlueMLTaskRunTrigger
from tests.helpers import DAG_FILE, LOGICAL_DATE, bare_transform, client, run_dag, wait_for


def generation_runs(endpoint, transform_id):
    runs = client("glue", endpoint).get_ml_task_runs(
        TransformId=transform_id, Filter={"TaskRunType": "LABELING_SET_GENERATION"}
    )["TaskRuns"]
    return [(r["TaskRunId"], r["Status"]) for r in runs]


def start_task_process(transform_id):
    conf = {
        "transform_id": transform_id,
        "output_s3_path": "s3://labels-bkt/out/",
        "result_file": "/dev/null",
    }
    return subprocess.Popen(
        [sys.executable, str(DAG_FILE), "run", "generate_durable", LOGICAL_DATE, json.dumps(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def retry_task_process():
    return subprocess.run(
        [sys.executable, str(DAG_FILE), "retry", "generate_durable", LOGICAL_DATE, "generate"],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_sigkill_mid_wait_then_retry_reconnects_to_the_same_run(endpoint, transform):
    # The run ends at its 7th poll, not by the clock: however slowly the retry starts, it is still going.
    emulator.configure(polls_to_finish=6)
    task = start_task_process(transform)
    wait_for(lambda: len(emulator.calls("GetMLTaskRun")) >= 2, process=task)  # started, stored, now waiting
    task.send_signal(signal.SIGKILL)
    assert task.wait(timeout=30) == -signal.SIGKILL
    ((run_id, status),) = generation_runs(endpoint, transform)
    assert status == "RUNNING"

    retry = retry_task_process()
    assert "TASK STATE success" in retry.stdout, retry.stdout[-3000:] + retry.stderr[-3000:]
    # Airflow 3.3 reconnects from its task-state store; below it, the retry adopts the active run.
    expected = "Reconnecting to existing job" if AIRFLOW_V_3_3_PLUS else f"Adopting Glue ML task run {run_id}"
    assert expected in retry.stdout + retry.stderr
    assert generation_runs(endpoint, transform) == [(run_id, "SUCCEEDED")]


def test_worker_dying_between_start_and_store_is_adopted_by_the_retry(endpoint, transform):
    # The run ends at its 3rd poll, all of them the retry's: it outlasts any slow start-up.
    emulator.configure(polls_to_finish=2)
    emulator.inject_fault("StartMLLabelingSetGenerationTaskRun", "slow_reply", calls=[1], seconds=20)
    task = start_task_process(transform)
    wait_for(
        lambda: generation_runs(endpoint, transform), process=task
    )  # Glue started it; the worker never heard back
    task.send_signal(signal.SIGKILL)
    task.wait(timeout=30)
    ((run_id, _),) = generation_runs(endpoint, transform)

    retry = retry_task_process()
    assert "TASK STATE success" in retry.stdout, retry.stdout[-3000:] + retry.stderr[-3000:]
    assert f"Adopting Glue ML task run {run_id}" in retry.stdout + retry.stderr
    assert generation_runs(endpoint, transform) == [(run_id, "SUCCEEDED")]


def test_sigterm_runs_on_kill_and_leaves_the_run_stopped(endpoint, transform):
    emulator.configure(run_seconds=30)
    task = start_task_process(transform)
    wait_for(lambda: len(emulator.calls("GetMLTaskRun")) >= 2, process=task)
    task.send_signal(signal.SIGTERM)
    output, _ = task.communicate(timeout=60)
    ((run_id, _),) = generation_runs(endpoint, transform)
    assert f"Cancelling Glue ML task run {run_id}" in output
    wait_for(lambda: generation_runs(endpoint, transform) == [(run_id, "STOPPED")], timeout=10)
    assert [c[2]["TaskRunId"] for c in emulator.calls("CancelMLTaskRun")] == [run_id]


def test_retry_after_a_kill_starts_anew_instead_of_waiting_for_the_stopping_run(endpoint, transform):
    emulator.configure(run_seconds=30, stop_seconds=60)  # cancelled, the run is STOPPING for a minute
    task = start_task_process(transform)
    wait_for(lambda: len(emulator.calls("GetMLTaskRun")) >= 2, process=task)
    task.send_signal(signal.SIGTERM)  # on_kill cancels the run
    wait_for(lambda: emulator.calls("CancelMLTaskRun"), process=task)
    task.kill()  # the worker is gone; its run is still STOPPING
    task.communicate(timeout=60)
    ((killed, status),) = generation_runs(endpoint, transform)
    assert status == "STOPPING"
    emulator.configure(run_seconds=0.6, stop_seconds=60)

    retry = retry_task_process()
    assert "TASK STATE success" in retry.stdout, retry.stdout[-3000:] + retry.stderr[-3000:]
    runs = dict(generation_runs(endpoint, transform))
    assert runs.pop(killed) in ("STOPPING", "STOPPED")
    assert list(runs.values()) == ["SUCCEEDED"]


def test_cancel_on_kill_false_leaves_the_run_going(aws):
    glue = client("glue")
    transform_id = bare_transform(glue)
    emulator.configure(run_seconds=30)
    for cancel in (False, True):
        task = GlueMLLabelingSetGenerationOperator(
            task_id="g",
            transform_id=transform_id,
            output_s3_path="s3://b-b/o/",
            wait_for_completion=False,
            cancel_on_kill=cancel,
            aws_conn_id=None,
            region_name="us-east-1",
        )
        run_id = task.execute({})
        task.on_kill()
        expected = "STOPPING" if cancel else "RUNNING"
        time.sleep(0.15)
        assert glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == expected


def test_on_kill_logs_a_failed_cancel_and_never_raises(aws, task_log):
    glue = client("glue")
    transform_id = bare_transform(glue)
    task = GlueMLLabelingSetGenerationOperator(
        task_id="g",
        transform_id=transform_id,
        output_s3_path="s3://b-b/o/",
        wait_for_completion=False,
        aws_conn_id=None,
        region_name="us-east-1",
    )
    run_id = task.execute({})
    glue.cancel_ml_task_run(TransformId=transform_id, TaskRunId=run_id)
    time.sleep(0.4)  # STOPPED: Glue refuses to cancel it again
    task.on_kill()
    assert f"Could not cancel Glue ML task run {run_id}" in task_log()


@pytest.mark.parametrize("kind", ["throttle", "server_error", "reset"])
@pytest.mark.parametrize(
    "dag_id", ["generate_and_wait_poke", "generate_and_wait_deferrable", "generate_then_sensor_poke"]
)
def test_transient_burst_during_a_wait_does_not_fail_it(
    transform, endpoint, tmp_path, monkeypatch, kind, dag_id
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore retries nothing: our wait must ride it out
    emulator.configure(polls_to_finish=3)  # the run ends at its 4th answered poll, however slow the task
    emulator.inject_fault("GetMLTaskRun", kind, calls=range(2, 10))
    state, states, result = run_dag(dag_id, transform, tmp_path)
    assert state == "success", states
    assert len(emulator.calls("GetMLTaskRun")) == 12, "one poll, eight faults, three more polls"
    assert generation_runs(endpoint, transform) == [(result["task_run_id"], "SUCCEEDED")]


def test_triggerer_restart_mid_wait_resumes_from_serialize(transform, endpoint):
    emulator.configure(run_seconds=1.5)
    glue = client("glue", endpoint)
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform, OutputS3Path="s3://labels-bkt/o/"
    )["TaskRunId"]
    trigger = GlueMLTaskRunTrigger(
        transform_id=transform,
        task_run_id=run_id,
        waiter_delay=0.2,
        waiter_max_attempts=50,
        region_name="us-east-1",
    )

    async def first_event(running):
        async for event in running.run():
            return event.payload

    async def killed_mid_wait():
        task = asyncio.ensure_future(first_event(trigger))
        while len(emulator.calls("GetMLTaskRun")) < 2:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(killed_mid_wait())
    assert glue.get_ml_task_run(TransformId=transform, TaskRunId=run_id)["Status"] != "SUCCEEDED"
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith("GlueMLTaskRunTrigger")
    event = asyncio.run(first_event(GlueMLTaskRunTrigger(**kwargs)))
    assert event["status"] == "success" and event["task_run"]["TaskRunId"] == run_id


def test_concurrent_runs_exceeded_names_the_active_runs(aws):
    glue = client("glue")
    transform_id = bare_transform(glue)
    emulator.configure(run_seconds=30)
    active = [
        glue.start_ml_labeling_set_generation_task_run(TransformId=transform_id, OutputS3Path="s3://b-b/o/")[
            "TaskRunId"
        ]
        for _ in range(3)
    ]
    task = GlueMLLabelingSetGenerationOperator(
        task_id="g",
        transform_id=transform_id,
        output_s3_path="s3://b-b/o/",
        aws_conn_id=None,
        region_name="us-east-1",
    )
    with pytest.raises(GlueMLError) as excinfo:
        task.execute({})
    message = str(excinfo.value)
    assert f"Glue ML transform '{transform_id}' has too many concurrent task runs" in message
    for run_id in active:
        assert f"{run_id} LABELING_SET_GENERATION" in message
    assert "since 20" in message


def test_retry_without_task_state_store_adopts_the_active_run(aws):
    """Airflow < 3.3 has no task_state_store: a retry looks for the run since the DAG run began."""
    glue = client("glue")
    transform_id = bare_transform(glue)
    emulator.configure(run_seconds=30)
    earlier = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path="s3://b-b/o/"
    )["TaskRunId"]
    context = {
        "ti": SimpleNamespace(try_number=2, stats_tags={}),
        "dag_run": SimpleNamespace(start_date=datetime.now(UTC) - timedelta(minutes=1)),
    }
    task = GlueMLLabelingSetGenerationOperator(
        task_id="g",
        transform_id=transform_id,
        output_s3_path="s3://b-b/o/",
        aws_conn_id=None,
        region_name="us-east-1",
        wait_for_completion=False,
    )
    assert task.execute(context) == earlier
    assert [r["TaskRunId"] for r in glue.get_ml_task_runs(TransformId=transform_id)["TaskRuns"]] == [earlier]
