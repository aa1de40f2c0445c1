"""End-to-end: the operator and the sensor in real DAG runs (dag.test) against the emulator server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.sensors import GlueMLTaskRunSensor
from tests.helpers import TRIES, client
from tests.helpers import run_dag as run


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_generate_then_sensor_passes_task_run_id_downstream(mode, transform, endpoint, tmp_path):
    state, states, result = run(f"generate_then_sensor_{mode}", transform, tmp_path)
    assert state == "success", states
    runs = client("glue", endpoint).get_ml_task_runs(TransformId=transform)["TaskRuns"]
    assert [r["TaskRunId"] for r in runs] == [result["task_run_id"]]
    assert result["summary"] == {
        "TaskRunId": result["task_run_id"],
        "Status": "SUCCEEDED",
        "TaskType": "LABELING_SET_GENERATION",
        "ExecutionTime": runs[0]["ExecutionTime"],
        "S3Path": "s3://labels-bkt/labeling/",
    }
    listed = client("s3", endpoint).list_objects_v2(Bucket="labels-bkt", Prefix="labeling/")
    assert [o["Key"] for o in listed["Contents"]] == [f"labeling/{result['task_run_id']}.csv"]


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
@pytest.mark.parametrize(
    ("status", "error_string"),
    [
        ("FAILED", "The labeling set could not be written"),
        ("STOPPED", "Task run was stopped"),
        ("TIMEOUT", "Task run timed out after 2880 minutes"),
    ],
)
def test_sensor_fails_with_status_and_error_string(mode, status, error_string, transform, tmp_path, capfd):
    emulator.force_outcome(status, error_string)
    state, states, result = run(f"generate_then_sensor_{mode}", transform, tmp_path)
    assert state == "failed"
    assert states["generate"] == "success" and states["wait"] == "failed"
    assert result is None
    assert TRIES["wait"] == 1, "a run that ended cannot change: no retry (the sensor has retries=2)"
    logged = "".join(capfd.readouterr())
    assert f"of transform '{transform}' ended {status}: {error_string}" in logged


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_sensor_timeout_fails_the_same_in_every_mode_without_retrying(mode, transform, tmp_path, task_log):
    emulator.configure(run_seconds=30)
    _state, states, _ = run(f"sensor_deadline_{mode}", transform, tmp_path)
    assert states == {"generate": "success", "wait": "failed"}
    assert TRIES["wait"] == 1, "a timeout is not retried (the sensor has retries=2)"
    log = task_log()
    assert "AirflowSensorTimeout" in log
    assert "polls 0.3s apart" not in log
    if mode == "deferrable":
        assert "Sensor timed out after 1s: Glue ML task run" in log and "is still RUNNING" in log


def deferred_sensor(**kwargs) -> GlueMLTaskRunSensor:
    return GlueMLTaskRunSensor(
        task_id="wait",
        transform_id="tfm-0123456789abcdef0123456789abcdef",
        task_run_id="tsk-0123456789abcdef0123456789abcdef",
        deferrable=True,
        region_name="us-east-1",
        **kwargs,
    )


def test_deferred_sensor_hands_airflow_its_timeout_as_a_deadline():
    sensor = deferred_sensor(poke_interval=60, timeout=0.2)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert deferred.value.timeout == timedelta(seconds=0.2)
    assert deferred.value.trigger.waiter_max_attempts == 2  # the first poll, and one past the deadline


@pytest.mark.parametrize("soft_fail", [False, True])
def test_a_deferral_past_its_deadline_is_a_sensor_timeout_on_every_airflow(soft_fail):
    """Airflow resumes a deferral that timed out with ``__fail__``; Airflow 2 would retry it."""
    sensor = deferred_sensor(timeout=5, soft_fail=soft_fail)
    expected = AirflowSkipException if soft_fail else AirflowSensorTimeout
    for error in ("Trigger timeout", "Trigger/execution timeout"):  # Airflow 3's words, and 2's
        with pytest.raises(expected, match="Sensor timed out after 5s"):
            sensor.resume_execution("__fail__", {"error": error}, {})


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_operator_waits_and_returns_task_run_id(mode, transform, endpoint, tmp_path):
    emulator.configure(polls_to_finish=2)  # three polls, however busy the machine: within the DAG's six
    state, states, result = run(f"generate_and_wait_{mode}", transform, tmp_path)
    assert state == "success", states
    assert len(emulator.calls("GetMLTaskRun")) == 3
    run_ = client("glue", endpoint).get_ml_task_run(TransformId=transform, TaskRunId=result["task_run_id"])
    assert run_["Status"] == "SUCCEEDED"
