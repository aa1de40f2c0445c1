"""How a task run is waited for: one rule for the worker's wait, the sensor and the trigger."""

from __future__ import annotations

from typing import Any

from airflow_provider_glue_labeling.exceptions import GlueMLError
from airflow_provider_glue_labeling.glue.errors import POLL_LIMIT, run_failure
from airflow_provider_glue_labeling.glue.statuses import FAILURE_STATUSES, S3_PATH_PROPERTIES, TaskRunStatus


def task_run_done(transform_id: str, run: dict[str, Any]) -> bool:
    """True when the run SUCCEEDED, False while it runs; raise :class:`GlueMLError` if it failed."""
    status = run.get("Status")
    if status == TaskRunStatus.SUCCEEDED:
        return True
    if status in FAILURE_STATUSES:
        raise run_failure(transform_id, run)
    return False


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """A small JSON-able summary of a finished task run: id, status, type, time and S3 path."""
    properties = run.get("Properties") or {}
    s3_path = next(
        (properties[group][key] for group, key in S3_PATH_PROPERTIES if key in properties.get(group, {})),
        None,
    )
    return {
        "TaskRunId": run.get("TaskRunId"),
        "Status": run.get("Status"),
        "TaskType": properties.get("TaskType"),
        "ExecutionTime": run.get("ExecutionTime"),
        "S3Path": s3_path,
    }


def error_event(error: Exception, transform_id: str, task_run_id: str) -> dict[str, Any]:
    """The trigger's event for a wait that ended in ``error``; :func:`task_run_from_event` reads it back."""
    return {
        "status": "error",
        "message": str(error),
        "transform_id": transform_id,
        "task_run_id": task_run_id,
        "run_status": getattr(error, "status", None),
        "error_string": getattr(error, "error_string", None),
        "code": getattr(error, "code", None),
    }


def task_run_from_event(event: dict[str, Any] | None) -> dict[str, Any]:
    """The run summary of a success event; raise :class:`GlueMLError` for an error event."""
    if not event:
        raise GlueMLError("The Glue ML task run trigger returned no event")
    if event.get("status") != "success":
        raise GlueMLError(
            event.get("message") or f"Glue ML task run trigger failed: {event}",
            transform_id=event.get("transform_id"),
            task_run_id=event.get("task_run_id"),
            status=event.get("run_status"),
            error_string=event.get("error_string"),
            code=event.get("code"),
        )
    return event["task_run"]


class Backoff:
    """Delays between retries of transient errors: 1, 2, 4 ... seconds, capped at ``ceiling``."""

    def __init__(self, ceiling: float, first: float = 1.0) -> None:
        self.ceiling, self.first = max(ceiling, 0.0), first
        self.reset()

    def reset(self) -> None:
        """Start again from the first delay (after a call that went through)."""
        self.next = min(self.first, self.ceiling)

    def __call__(self) -> float:
        delay, self.next = self.next, min(self.next * 2, self.ceiling)
        return delay


class TaskRunPoll:
    """The waiting rule shared by the synchronous wait, the sensor's trigger and the operators'.

    The first ``GetMLTaskRun`` is immediate, then one every ``waiter_delay`` seconds, at most
    ``waiter_max_attempts`` in all: a run of length T costs ceil(T/delay)+1 calls. Transient
    errors (throttling, 5xx, dropped connections) are retried with backoff and use up no attempt;
    any other error, a failed run or running out of attempts raises :class:`GlueMLError`.
    """

    def __init__(
        self, transform_id: str, task_run_id: str, waiter_delay: float, waiter_max_attempts: int, log: Any
    ) -> None:
        self.transform_id, self.task_run_id = transform_id, task_run_id
        self.delay, self.max_attempts = waiter_delay, waiter_max_attempts
        self.attempts = 0
        self.backoff = Backoff(waiter_delay)
        self.log = log

    def after(self, run: dict[str, Any]) -> float | None:
        """Seconds until the next poll, or None when the run SUCCEEDED; raise when it failed."""
        self.backoff.reset()
        if task_run_done(self.transform_id, run):
            return None
        self.attempts += 1
        status = run.get("Status")
        if self.attempts >= self.max_attempts:
            raise GlueMLError(
                f"Glue ML task run '{self.task_run_id}' of transform '{self.transform_id}' did not finish "
                f"after {self.attempts} polls {self.delay}s apart; last status {status}",
                transform_id=self.transform_id,
                task_run_id=self.task_run_id,
                status=status,
                code=POLL_LIMIT,
            )
        self.log.info("Glue ML task run %s is %s (poll %d)", self.task_run_id, status, self.attempts)
        return self.delay

    def after_error(self, error: GlueMLError) -> float:
        """Seconds until a retry of a transient error; re-raise any other error."""
        if not error.transient:
            raise error
        delay = self.backoff()
        self.log.warning("Transient error, polling again in %.1fs: %s", delay, error)
        return delay
