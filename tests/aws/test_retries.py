"""A retry run in process, in the state an earlier try left: what it adopts, reconnects to or starts.

Each test gives the operator the task-state store (Airflow 3.3+) an earlier try would have left,
and the try number and DAG-run start that Airflow < 3.3 goes by; real boto3 clients against the
emulator. The same retries after real kills are in ``tests/dag_runs/test_durability.py``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.exceptions import GlueMLError
from airflow_provider_glue_labeling.hooks import GlueMLHook
from airflow_provider_glue_labeling.operators import (
    GlueMLImportLabelsOperator,
    GlueMLLabelingSetGenerationOperator,
)
from airflow_provider_glue_labeling.runs.lifecycle import BACKUP_KEY, RUN_ID_KEY, STARTED_AT_KEY
from airflow_provider_glue_labeling.sensors import GlueMLTaskRunSensor
from airflow_provider_glue_labeling.triggers import GlueMLTaskRunTrigger
from tests.helpers import Store, add_labels, bare_transform, client, put_labels, retry_context, runs_of

IN_PROCESS = {"aws_conn_id": None, "region_name": "us-east-1"}


def generator(transform_id: str, **kwargs) -> GlueMLLabelingSetGenerationOperator:
    arguments = {"output_s3_path": "s3://b-b/o/", **IN_PROCESS, **kwargs}
    return GlueMLLabelingSetGenerationOperator(task_id="g", transform_id=transform_id, **arguments)


def started(glue, transform_id: str, path: str = "s3://b-b/o/") -> str:
    """A run an earlier try started."""
    return glue.start_ml_labeling_set_generation_task_run(TransformId=transform_id, OutputS3Path=path)[
        "TaskRunId"
    ]


def a_mark() -> str:
    """The start mark an earlier try left: a moment ago."""
    return datetime.now(UTC).isoformat()


def test_retry_without_task_state_store_adopts_the_active_run(aws):
    """Airflow < 3.3 has no task_state_store: a retry looks for the run since the DAG run began."""
    glue = client("glue")
    transform_id = bare_transform(glue)
    emulator.configure(run_seconds=30)
    earlier = started(glue, transform_id)
    assert generator(transform_id, wait_for_completion=False).execute(retry_context()) == earlier
    assert [r["TaskRunId"] for r in glue.get_ml_task_runs(TransformId=transform_id)["TaskRuns"]] == [earlier]


def test_worker_dying_between_start_and_store_is_adopted_by_the_retry(aws, task_log):
    # The earlier try marked its start and started the run, then died before storing the run's id.
    glue = client("glue")
    transform_id = bare_transform(glue)
    emulator.configure(run_seconds=30)
    store = Store({STARTED_AT_KEY: a_mark()})
    time.sleep(0.01)
    earlier = started(glue, transform_id)
    started(glue, transform_id, "s3://b-b/another-task/")  # a sibling's: never adopted
    assert generator(transform_id, wait_for_completion=False).execute(retry_context(store)) == earlier
    log = task_log()
    assert f"Adopting Glue ML task run {earlier}, started by an earlier try of this task" in log
    assert "not this task's: OutputS3Path 's3://b-b/another-task/', this task's 's3://b-b/o/'" in log
    assert len(glue.get_ml_task_runs(TransformId=transform_id)["TaskRuns"]) == 2


def test_retry_after_a_kill_starts_anew_instead_of_waiting_for_the_stopping_run(transform, endpoint):
    glue, transform_id, path = client("glue", endpoint), transform, "s3://labels-bkt/o/"
    emulator.configure(run_seconds=30, stop_seconds=60)  # cancelled, the run is STOPPING for a minute
    killed = started(glue, transform_id, path)
    glue.cancel_ml_task_run(TransformId=transform_id, TaskRunId=killed)  # the killed try's on_kill
    store = Store({STARTED_AT_KEY: a_mark(), RUN_ID_KEY: killed})
    emulator.configure(run_seconds=0.3, stop_seconds=60)
    task = generator(transform_id, output_s3_path=path, waiter_delay=0.1, aws_conn_id="aws_default")
    new = task.execute(retry_context(store))
    runs = {r["TaskRunId"]: r["Status"] for r in glue.get_ml_task_runs(TransformId=transform_id)["TaskRuns"]}
    assert new != killed and runs == {killed: "STOPPING", new: "SUCCEEDED"}


def test_retry_reconnects_to_the_backup_export_of_a_killed_worker(transform, endpoint, task_log):
    add_labels(endpoint, transform, "first")
    labels = put_labels(endpoint, "replacement/labels.csv")
    glue = client("glue", endpoint)
    emulator.configure(polls_to_finish=2)  # the export outlasts the retry's first look, however slow
    # The killed try had started the backup export and stored its id; its import never started.
    store = Store({STARTED_AT_KEY: a_mark()})
    time.sleep(0.01)
    backup = glue.start_export_labels_task_run(TransformId=transform, OutputS3Path="s3://labels-bkt/backup/")
    store.set(BACKUP_KEY, backup["TaskRunId"])
    task = GlueMLImportLabelsOperator(
        task_id="import_labels",
        transform_id=transform,
        input_s3_path=labels,
        replace_all_labels=True,
        backup_s3_path="s3://labels-bkt/backup/",
        waiter_delay=0.1,
    )
    task.execute(retry_context(store))
    assert f"Reconnecting to the backup export run {backup['TaskRunId']}" in task_log()
    assert [(i, s) for i, s, _ in runs_of(endpoint, transform, "EXPORT_LABELS")] == [
        (backup["TaskRunId"], "SUCCEEDED")
    ]
    assert runs_of(endpoint, transform, "IMPORT_LABELS")[-1][1:] == (
        "SUCCEEDED",
        {"InputS3Path": labels, "Replace": True},
    )
    if AIRFLOW_V_3_3_PLUS:  # the labels may change from now on: a later start backs up anew
        assert BACKUP_KEY not in store


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


# -- throttling, 5xx and dropped connections in the middle of a wait ---------------------------------
FAULTS = ["throttle", "server_error", "reset"]


@pytest.fixture
def burst(transform, endpoint, monkeypatch):
    """A run whose polls 2 to 9 fail; it ends at its 4th answered poll. botocore retries nothing."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # our wait must ride the burst out itself
    glue, transform_id = client("glue", endpoint), transform
    run_id = started(glue, transform_id, "s3://labels-bkt/o/")
    emulator.configure(polls_to_finish=3)

    def check(kind):
        emulator.inject_fault("GetMLTaskRun", kind, calls=range(2, 10))
        return transform_id, run_id

    yield check
    assert len(emulator.calls("GetMLTaskRun")) == 12, "one poll, eight faults, three more polls"
    assert glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "SUCCEEDED"


@pytest.mark.parametrize("kind", FAULTS)
def test_a_burst_of_transient_errors_does_not_fail_the_wait_in_the_worker(burst, kind):
    transform_id, run_id = burst(kind)
    hook = GlueMLHook(aws_conn_id="aws_default")
    run = hook.wait_for_task_run(transform_id, run_id, waiter_delay=0.01, waiter_max_attempts=4)
    assert run["Status"] == "SUCCEEDED"


@pytest.mark.parametrize("kind", FAULTS)
def test_a_burst_of_transient_errors_does_not_fail_the_deferred_wait(burst, kind):
    transform_id, run_id = burst(kind)
    trigger = GlueMLTaskRunTrigger(
        transform_id=transform_id, task_run_id=run_id, waiter_delay=0.01, waiter_max_attempts=4
    )

    async def first_event():
        async for event in trigger.run():
            return event.payload

    assert asyncio.run(first_event())["status"] == "success"


@pytest.mark.parametrize("kind", FAULTS)
def test_a_burst_of_transient_errors_only_makes_the_sensor_poke_again(burst, kind):
    transform_id, run_id = burst(kind)
    sensor = GlueMLTaskRunSensor(task_id="wait", transform_id=transform_id, task_run_id=run_id)
    pokes = [sensor.poke({}) for _ in range(12)]
    assert [bool(p) for p in pokes] == [False] * 11 + [True]
    assert pokes[-1].xcom_value["Status"] == "SUCCEEDED"
