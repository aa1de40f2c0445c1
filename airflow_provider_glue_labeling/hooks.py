"""GlueMLHook: every AWS Glue ML call of the provider, and the errors it raises."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import botocore.session
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.common.compat.sdk import conf
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from airflow_provider_glue_labeling.exceptions import (
    ACTIVE_STATUSES,
    FAILURE_STATUSES,
    GlueMLError,
    GlueMLInputError,
    TaskRunStatus,
)

# A task run's default timeout: GetMLTransform's Timeout defaults to 2,880 minutes.
DEFAULT_TASK_RUN_TIMEOUT_SECONDS = 2880 * 60
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceException",
        "OperationTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
    }
)
START_CALLS = {
    "LABELING_SET_GENERATION": "start_ml_labeling_set_generation_task_run",
    "IMPORT_LABELS": "start_import_labels_task_run",
    "EXPORT_LABELS": "start_export_labels_task_run",
    "EVALUATION": "start_ml_evaluation_task_run",
}
POLL_LIMIT = "PollLimitReached"  # the error code of a wait that ran out of polls
S3_PATH_PROPERTIES = (
    ("LabelingSetGenerationTaskRunProperties", "OutputS3Path"),
    ("ImportLabelsTaskRunProperties", "InputS3Path"),
    ("ExportLabelsTaskRunProperties", "OutputS3Path"),
)


def no_region(aws_conn_id: str | None) -> str:
    """The error text when neither the task, its connection nor the environment names a region."""
    connection = (
        f"connection '{aws_conn_id}'" if aws_conn_id else "the default boto3 session (aws_conn_id=None)"
    )
    return (
        f"No AWS region for {connection}: give the task region_name='eu-west-1' (say), put "
        '"region_name" in the connection\'s extra, or set AWS_DEFAULT_REGION'
    )


def connection_arguments(task: Any) -> dict[str, Any]:
    """A task's AWS connection arguments, as the Amazon provider's triggers and hooks take them.

    :param task: an operator or sensor of this provider (``AwsBaseOperator``/``AwsBaseSensor``).
    """
    return {
        "aws_conn_id": task.aws_conn_id,
        "region_name": task.region_name,
        "verify": task.verify,
        "botocore_config": task.botocore_config,
    }


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read now (so a changed setting applies at once)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def is_transient(error: BaseException) -> bool:
    """True for an error that a later retry of the same call may not meet again."""
    return isinstance(error, GlueMLError) and error.transient


def run_failure(transform_id: str, run: dict[str, Any]) -> GlueMLError:
    """The error for a run that ended in a failure status, with Glue's ``ErrorString``."""
    status, error_string = run.get("Status"), run.get("ErrorString")
    task_type = (run.get("Properties") or {}).get("TaskType", "task")
    return GlueMLError(
        f"Glue ML {task_type} run '{run.get('TaskRunId')}' of transform '{transform_id}' ended "
        f"{status}: {error_string or 'Glue gave no ErrorString'}",
        transform_id=transform_id,
        task_run_id=run.get("TaskRunId"),
        status=status,
        error_string=error_string,
    )


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


def _where(region: str | None) -> str:
    return f" in region {region}" if region else ""


def _of_run(task_run_id: str | None) -> str:
    return f"task run '{task_run_id}' of " if task_run_id else ""


@contextlib.contextmanager
def translate_errors(
    operation: str, transform_id: str, task_run_id: str | None = None, region: str | None = None
) -> Iterator[None]:
    """Turn botocore errors of one Glue call into :class:`GlueMLError` with a clear message."""
    try:
        yield
    except ClientError as error:
        where, run = _where(region), _of_run(task_run_id)
        info = error.response.get("Error", {})
        code, message = info.get("Code", "Unknown"), info.get("Message", str(error))
        status_code = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        transient = code in TRANSIENT_CODES or status_code >= 500
        if code == "EntityNotFoundException" and "No labelset exists" in message:
            text = f"Glue ML transform '{transform_id}' has no labels yet{where}, so there is nothing to export: {message}"
        elif code == "EntityNotFoundException":
            text = f"Glue ML {run}transform '{transform_id}' not found{where}: {message}"
        elif code == "MLTransformNotReadyException":
            text = f"Glue ML transform '{transform_id}' is not ready{where} (import labels first): {message}"
        else:
            text = f"Glue {operation} failed for {run}transform '{transform_id}'{where}: {code}: {message}"
        raise GlueMLError(
            text,
            transform_id=transform_id,
            task_run_id=task_run_id,
            error_string=message,
            code=code,
            transient=transient,
        ) from error
    except (ConnectionError, HTTPClientError) as error:
        raise GlueMLError(
            f"Glue {operation} for {_of_run(task_run_id)}transform '{transform_id}'{_where(region)} "
            f"lost its connection: {error}",
            transform_id=transform_id,
            task_run_id=task_run_id,
            code=type(error).__name__,
            transient=True,
        ) from error


class GlueMLHook(AwsBaseHook):
    """Interact with AWS Glue ML transforms and their task runs (FindMatches teaching).

    Additional arguments (such as ``aws_conn_id``, ``region_name``, ``verify`` and ``config``)
    are passed to :class:`~airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "glue"
        super().__init__(*args, **kwargs)

    def require_region(self) -> str:
        """The region calls will go to; raise :class:`GlueMLInputError` naming the connection if none.

        Reads the task's ``region_name``, the connection's extra and boto's own configuration
        (``AWS_DEFAULT_REGION``, the config file), without any AWS call.
        """
        region = self.conn_config.region_name or botocore.session.get_session().get_config_variable("region")
        if not region:
            raise GlueMLInputError("region_name", None, no_region(self.aws_conn_id))
        return region

    def _call(self, operation: str, transform_id: str, task_run_id: str | None = None, **params: Any) -> Any:
        if task_run_id is not None:
            params["TaskRunId"] = task_run_id
        with translate_errors(operation, transform_id, task_run_id, self.conn_region_name):
            return getattr(self.conn, operation)(TransformId=transform_id, **params)

    def start_task_run(self, task_type: str, transform_id: str, **params: Any) -> str:
        """Start a task run of ``task_type`` (a key of ``START_CALLS``) and return its TaskRunId.

        :param task_type: ``LABELING_SET_GENERATION``, ``IMPORT_LABELS``, ``EXPORT_LABELS`` or ``EVALUATION``.
        :param transform_id: the ML transform.
        :param params: the call's other parameters in AWS's spelling, e.g. ``OutputS3Path``.
        """
        try:
            return self._call(START_CALLS[task_type], transform_id, **params)["TaskRunId"]
        except GlueMLError as error:
            if error.code == "ConcurrentRunsExceededException":
                raise self._concurrency_error(error) from error
            raise

    def _concurrency_error(self, error: GlueMLError) -> GlueMLError:
        transform_id = error.transform_id or ""
        try:
            active = self.list_task_runs(transform_id, statuses=ACTIVE_STATUSES)
        except GlueMLError as listing:
            runs = f"(the active runs could not be listed: {listing})"
        else:
            runs = "; ".join(
                f"{r['TaskRunId']} {r.get('Properties', {}).get('TaskType', '?')} {r['Status']} "
                f"since {r['StartedOn'].isoformat() if r.get('StartedOn') else '?'}"
                for r in active
            )
        return GlueMLError(
            f"Glue ML transform '{transform_id}' has too many concurrent task runs "
            f"({error.error_string}). Active: {runs or 'none listed'}",
            transform_id=transform_id,
            error_string=error.error_string,
            code=error.code,
        )

    def get_task_run(self, transform_id: str, task_run_id: str) -> dict[str, Any]:
        """Return ``GetMLTaskRun`` for one run."""
        return self._call("get_ml_task_run", transform_id, task_run_id)

    def list_task_runs(
        self,
        transform_id: str,
        *,
        task_type: str | None = None,
        statuses: tuple[str, ...] | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Every task run of a transform matching the filter, newest first (all pages).

        :param task_type: only runs of this ``TaskType``.
        :param statuses: only runs in these statuses (one ``GetMLTaskRuns`` filter per status).
        :param started_after: only runs started after this time.
        :param started_before: only runs started before this time.
        """
        base: dict[str, Any] = {}
        if task_type:
            base["TaskRunType"] = task_type
        if started_after:
            base["StartedAfter"] = started_after
        if started_before:
            base["StartedBefore"] = started_before
        filters = [{**base, "Status": s} for s in statuses] if statuses else [base]
        runs: list[dict[str, Any]] = []
        for task_filter in filters:
            token: str | None = None
            while True:
                page = self._call(
                    "get_ml_task_runs",
                    transform_id,
                    Filter=task_filter,
                    Sort={"Column": "STARTED", "SortDirection": "DESCENDING"},
                    MaxResults=1000,
                    **({"NextToken": token} if token else {}),
                )
                runs.extend(page.get("TaskRuns", []))
                token = page.get("NextToken")
                if not token:
                    break
        return sorted(runs, key=lambda r: r.get("StartedOn") or datetime.min, reverse=True)

    def cancel_task_run(self, transform_id: str, task_run_id: str) -> str:
        """Cancel a run (``CancelMLTaskRun``); return the status Glue reports."""
        return self._call("cancel_ml_task_run", transform_id, task_run_id)["Status"]

    def get_transform(self, transform_id: str) -> dict[str, Any]:
        """Return ``GetMLTransform``: status, ``LabelCount``, ``EvaluationMetrics`` ..."""
        return self._call("get_ml_transform", transform_id)

    def wait_for_task_run(
        self,
        transform_id: str,
        task_run_id: str,
        *,
        waiter_delay: float,
        waiter_max_attempts: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll until the run SUCCEEDED and return it; raise :class:`GlueMLError` when it fails.

        See :class:`TaskRunPoll` for the timing and for what counts as an attempt.
        """
        poll = TaskRunPoll(transform_id, task_run_id, waiter_delay, waiter_max_attempts, self.log)
        while True:
            try:
                run = self.get_task_run(transform_id, task_run_id)
                delay = poll.after(run)
            except GlueMLError as error:
                delay = poll.after_error(error)
            if delay is None:
                return run
            sleep(delay)
