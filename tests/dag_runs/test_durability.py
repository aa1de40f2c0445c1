"""A task's process killed mid-wait, for real: SIGKILL then a retry reconnects; SIGTERM cancels the run.

The decisions behind them (adopt, reconnect, start anew after a kill) are tested in process in
``tests/aws/test_retries.py`` and ``tests/unit/test_lifecycle.py``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_3_PLUS

import airflow_provider_glue_labeling.emulator as emulator
from tests.helpers import DAG_FILE, LOGICAL_DATE, client, load_test_dags, wait_for


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


def test_sigkill_mid_wait_then_retry_reconnects_to_the_same_run(endpoint, transform, task_log):
    # The run ends at its 7th poll, not by the clock: however slowly the retry starts, it is still going.
    emulator.configure(polls_to_finish=6)
    task = start_task_process(transform)
    wait_for(lambda: len(emulator.calls("GetMLTaskRun")) >= 2, process=task)  # started, stored, now waiting
    task.send_signal(signal.SIGKILL)
    assert task.wait(timeout=30) == -signal.SIGKILL
    ((run_id, status),) = generation_runs(endpoint, transform)
    assert status == "RUNNING"

    # The scheduler's retry, in this process: the task's next try in the same DAG run.
    assert load_test_dags().retry_task("generate_durable", LOGICAL_DATE, "generate") == "success"
    # Airflow 3.3 reconnects from its task-state store; below it, the retry adopts the active run.
    expected = "Reconnecting to existing job" if AIRFLOW_V_3_3_PLUS else f"Adopting Glue ML task run {run_id}"
    assert expected in task_log()
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
