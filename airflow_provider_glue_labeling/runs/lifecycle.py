"""The life of a task's Glue ML task run, as plain decisions over what the task knows.

A task knows its :class:`Ledger`: what its task-state store holds (Airflow 3.3+; below it there
is no store and the ledger is ``None``), its try and ``max_tries``, and when its DAG run began.
From those and Glue's answers, these functions decide: a Clear means start again
(:func:`cleared`, for the labeling task too), when an earlier try may have started a run (:func:`adoption_window`), which
active run is this task's own (:func:`adopt`), and what to do with the import's backup export
(:func:`backup_step`). Nothing here calls AWS or Airflow; the clock is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from airflow_provider_glue_labeling.glue.statuses import ACTIVE_STATUSES, TaskRunStatus
from airflow_provider_glue_labeling.labels.files import as_prefix

# Runs a start may have made a little before the mark it left (the clocks of Glue and the worker).
ADOPTION_CLOCK_SKEW = timedelta(seconds=5)
# What a task keeps in its task-state store, besides its run's id (``RUN_ID_KEY``).
RUN_ID_KEY = "glue_ml_task_run_id"
STARTED_AT_KEY = "glue_ml_submit_started_at"  # when a try first started a run: the adoption window
FINISHED_KEY = "glue_ml_task_done"  # the run the task finished with: a later try comes from a Clear (the name 0.1 stored)
BACKUP_KEY = "glue_ml_backup_task_run_id"  # the import's backup export
KEYS = (RUN_ID_KEY, STARTED_AT_KEY, FINISHED_KEY, BACKUP_KEY)


@dataclass(frozen=True)
class Ledger:
    """What a task's task-state store holds of its runs (Airflow 3.3+).

    :param started_at: when a try of the task first started a run.
    :param finished: ``{"run", "max_tries"}``, left when the task finished (succeeded, or failed for good).
    :param backup_run_id: the import's backup export, until the import starts.
    """

    started_at: datetime | None = None
    finished: dict[str, Any] | None = None
    backup_run_id: str | None = None

    @classmethod
    def read(cls, store: Any) -> Ledger | None:
        """The ledger in a task-state store, or None when there is no store (Airflow < 3.3)."""
        if store is None:
            return None
        started_at, finished, backup = (store.get(key) for key in (STARTED_AT_KEY, FINISHED_KEY, BACKUP_KEY))
        return cls(
            started_at=datetime.fromisoformat(str(started_at)) if started_at else None,
            finished=finished if isinstance(finished, dict) else None,
            backup_run_id=str(backup) if backup else None,
        )


def finished_record(run_id: str, max_tries: int | None) -> dict[str, Any]:
    """What a finished task leaves in its store (:data:`FINISHED_KEY`)."""
    return {"run": run_id, "max_tries": max_tries}


def max_tries_of(context: Any) -> int | None:
    """The task instance's ``max_tries`` (in its context): the one rule of :func:`cleared` reads it."""
    return getattr(context.get("ti"), "max_tries", None)


def cleared(finished: Mapping[str, Any] | None, max_tries: int | None) -> bool:
    """Whether the task finished before and a user cleared it since: then it starts anew.

    This is the one rule that tells a Clear from a retry, for every task: a task that finished
    (a run's task: its store's :data:`FINISHED_KEY`; the labeling task: the marker beside the
    labels file it took) records the ``max_tries`` it had then. Airflow raises ``max_tries`` on a
    Clear, never on a retry. A try that died after starting or finishing its work leaves no such
    mark, or the same ``max_tries``: its retry reconnects to its run, or reuses its result.

    :param finished: what the task left when it finished (with ``max_tries``), or None.
    :param max_tries: the task instance's ``max_tries`` now.
    """
    return finished is not None and finished.get("max_tries") != max_tries


def adoption_window(
    ledger: Ledger | None, try_number: int | None, dag_run_began: datetime | None
) -> datetime | None:
    """Since when an earlier try of this task may have started a run; None when none can have.

    With a task-state store: the mark the first start left (no mark, nothing was started).
    Without (Airflow < 3.3, where no try's start is recorded): the DAG run's start, on a retry only.
    """
    if ledger is not None:
        return ledger.started_at
    if try_number is not None and try_number > 1:
        return dag_run_began
    return None


def differences(echoed: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """How a run's echoed start parameters differ from this task's; empty when they do not.

    S3 paths match with or without a trailing ``/``, as Glue treats them.

    :param echoed: a run's ``Properties`` group that echoes its start call.
    :param wanted: this task's start parameters, as Glue echoes them.
    """

    def same(a: Any, b: Any) -> bool:
        return as_prefix(a) == as_prefix(b) if isinstance(a, str) and isinstance(b, str) else a == b

    return [
        f"{key} {echoed.get(key)!r}, this task's {value!r}"
        for key, value in wanted.items()
        if not same(echoed.get(key), value)
    ]


@dataclass(frozen=True)
class Verdict:
    """Whether one active run is this task's own, and why (for the log)."""

    run_id: str
    started_on: datetime | None
    differs: list[str]

    @property
    def own(self) -> bool:
        return not self.differs

    def __str__(self) -> str:
        reason = "this task's own" if self.own else f"not this task's: {'; '.join(self.differs)}"
        return f"run {self.run_id} (started {self.started_on}): {reason}"


def adopt(
    runs: Iterable[dict[str, Any]], echo_key: str, echo: dict[str, Any]
) -> tuple[str | None, list[Verdict]]:
    """The run to adopt among a transform's active runs of the task's type, and a verdict on each.

    A run is this task's own when its ``Properties[echo_key]`` equal ``echo``; of several, the
    oldest. The caller lists only runs ``STARTING`` or ``RUNNING`` inside :func:`adoption_window`.

    :param runs: ``GetMLTaskRuns`` entries.
    :param echo_key: the ``Properties`` group that echoes the start (``ECHO_KEYS``).
    :param echo: this task's start parameters, as Glue echoes them.
    """
    oldest_first = sorted(runs, key=lambda r: r.get("StartedOn") or datetime.min.replace(tzinfo=UTC))
    verdicts = [
        Verdict(
            r["TaskRunId"],
            r.get("StartedOn"),
            differences((r.get("Properties") or {}).get(echo_key) or {}, echo),
        )
        for r in oldest_first
    ]
    return next((v.run_id for v in verdicts if v.own), None), verdicts


class BackupStep(StrEnum):
    """What the import does about its backup export, given the last one it knows of."""

    REUSE = "reuse"  # it succeeded: the labels are backed up
    WAIT = "wait"  # it is still going: wait for it
    START = "start"  # none, or it failed: export anew


def backup_step(status: str | None) -> BackupStep:
    """:class:`BackupStep` for the status of the known backup export (None: there is none)."""
    if status == TaskRunStatus.SUCCEEDED:
        return BackupStep.REUSE
    if status in ACTIVE_STATUSES:
        return BackupStep.WAIT
    return BackupStep.START
