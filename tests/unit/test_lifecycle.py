"""The run lifecycle's decisions, as plain functions: Clears, adoption windows, own runs, backups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_glue_labeling.runs.lifecycle import (
    BACKUP_KEY,
    FINISHED_KEY,
    STARTED_AT_KEY,
    BackupStep,
    Ledger,
    adopt,
    adoption_window,
    backup_step,
    cleared,
    differences,
    finished_record,
)
from tests.helpers import Store

NOV_1 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
ECHO_KEY = "LabelingSetGenerationTaskRunProperties"


def run(run_id, path, minutes=0, **properties):
    return {
        "TaskRunId": run_id,
        "StartedOn": NOV_1 + timedelta(minutes=minutes),
        "Properties": {ECHO_KEY: {"OutputS3Path": path, **properties}},
    }


def test_no_store_is_no_ledger_and_an_empty_store_an_empty_one():
    assert Ledger.read(None) is None
    assert Ledger.read(Store()) == Ledger()


def test_the_ledger_reads_what_a_task_left_in_its_store():
    store = Store(
        {
            STARTED_AT_KEY: "2026-11-01T10:00:00+00:00",
            FINISHED_KEY: finished_record("tsk-1", 3),
            BACKUP_KEY: "tsk-b",
        }
    )
    assert Ledger.read(store) == Ledger(
        started_at=NOV_1, finished={"run": "tsk-1", "max_tries": 3}, backup_run_id="tsk-b"
    )


@pytest.mark.parametrize(
    ("ledger", "max_tries", "expected"),
    [
        (None, 3, False),  # Airflow < 3.3: no store, every try starts anew anyway
        (Ledger(), 3, False),  # never finished: a retry reconnects
        (
            Ledger(finished={"run": "tsk-1", "max_tries": 3}),
            3,
            False,
        ),  # died after finishing: reuse its result
        (Ledger(finished={"run": "tsk-1", "max_tries": 3}), 5, True),  # a Clear raised max_tries: start anew
    ],
    ids=["no-store", "not-finished", "retry-after-finishing", "cleared"],
)
def test_a_clear_is_told_from_a_retry_by_max_tries(ledger, max_tries, expected):
    assert cleared(ledger and ledger.finished, max_tries) is expected


def test_the_adoption_window_opens_at_the_first_start_mark_with_a_store():
    assert (
        adoption_window(Ledger(started_at=NOV_1), try_number=2, dag_run_began=NOV_1 - timedelta(hours=1))
        == NOV_1
    )
    # a store with no mark: no try started anything, so there is nothing to adopt, even on a retry
    assert adoption_window(Ledger(), try_number=2, dag_run_began=NOV_1) is None


def test_without_a_store_the_window_opens_at_the_dag_run_on_a_retry_only():
    began = NOV_1 - timedelta(hours=1)
    assert adoption_window(None, try_number=2, dag_run_began=began) == began
    assert adoption_window(None, try_number=1, dag_run_began=began) is None
    assert adoption_window(None, try_number=None, dag_run_began=began) is None


def test_differences_name_each_parameter_and_ignore_a_trailing_slash():
    assert differences({"OutputS3Path": "s3://b/out"}, {"OutputS3Path": "s3://b/out/"}) == []
    assert differences(
        {"InputS3Path": "s3://b/a.csv", "Replace": False}, {"InputS3Path": "s3://b/a.csv", "Replace": True}
    ) == ["Replace False, this task's True"]
    assert differences({}, {"OutputS3Path": "s3://b/o/"}) == ["OutputS3Path None, this task's 's3://b/o/'"]


def test_only_a_run_that_echoes_this_tasks_start_is_adopted_the_oldest_first():
    runs = [
        run("tsk-late", "s3://b/mine/", minutes=3),
        run("tsk-other", "s3://b/sibling/", minutes=1),
        run("tsk-early", "s3://b/mine", minutes=2),
    ]
    adopted, verdicts = adopt(runs, ECHO_KEY, {"OutputS3Path": "s3://b/mine/"})
    assert adopted == "tsk-early"
    assert [(v.run_id, v.own) for v in verdicts] == [
        ("tsk-other", False),
        ("tsk-early", True),
        ("tsk-late", True),
    ]
    assert str(verdicts[0]) == (
        "run tsk-other (started 2026-11-01 10:01:00+00:00): not this task's: "
        "OutputS3Path 's3://b/sibling/', this task's 's3://b/mine/'"
    )
    assert str(verdicts[1]).endswith(": this task's own")


def test_nothing_is_adopted_from_other_tasks_runs_or_from_none():
    assert adopt([run("tsk-1", "s3://b/other/")], ECHO_KEY, {"OutputS3Path": "s3://b/mine/"})[0] is None
    assert adopt([], ECHO_KEY, {"OutputS3Path": "s3://b/mine/"}) == (None, [])


@pytest.mark.parametrize(
    ("status", "step"),
    [
        (None, BackupStep.START),
        ("SUCCEEDED", BackupStep.REUSE),
        ("STARTING", BackupStep.WAIT),
        ("RUNNING", BackupStep.WAIT),
        ("STOPPING", BackupStep.WAIT),  # still holds the transform: its end decides
        ("FAILED", BackupStep.START),
        ("STOPPED", BackupStep.START),
        ("TIMEOUT", BackupStep.START),
    ],
)
def test_the_backup_export_is_reused_waited_for_or_started_anew(status, step):
    assert backup_step(status) is step
