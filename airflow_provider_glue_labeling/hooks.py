"""GlueMLHook: every AWS Glue ML call of the provider, and the errors it raises."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import botocore.session
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.common.compat.sdk import conf

from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLInputError
from airflow_provider_glue_labeling.exceptions import TaskRunStatus as TaskRunStatus
from airflow_provider_glue_labeling.glue.errors import no_region, translate_errors
from airflow_provider_glue_labeling.glue.polling import TaskRunPoll
from airflow_provider_glue_labeling.glue.statuses import ACTIVE_STATUSES, START_CALLS, ErrorCode


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


def default_poll_seconds() -> float:
    """``[glue_labeling] poll_seconds`` (default 60): seconds between looks when a task gives none."""
    return conf.getfloat("glue_labeling", "poll_seconds", fallback=60.0)


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
            if error.code == ErrorCode.CONCURRENT_RUNS_EXCEEDED:
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
    ) -> list[dict[str, Any]]:
        """Every task run of a transform matching the filter, newest first (all pages).

        :param task_type: only runs of this ``TaskType``.
        :param statuses: only runs in these statuses (one ``GetMLTaskRuns`` filter per status).
        :param started_after: only runs started after this time.
        """
        base: dict[str, Any] = {}
        if task_type:
            base["TaskRunType"] = task_type
        if started_after:
            base["StartedAfter"] = started_after
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
