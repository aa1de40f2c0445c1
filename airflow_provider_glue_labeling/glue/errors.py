"""Glue's errors as the provider reports them: each names the transform, the run and the region."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from airflow_provider_glue_labeling.exceptions import GlueMLError
from airflow_provider_glue_labeling.glue.statuses import TRANSIENT_CODES, ErrorCode

POLL_LIMIT = "PollLimitReached"  # the code of a wait that ran out of polls


def no_region(aws_conn_id: str | None) -> str:
    """The error text when neither the task, its connection nor the environment names a region."""
    connection = (
        f"connection '{aws_conn_id}'" if aws_conn_id else "the default boto3 session (aws_conn_id=None)"
    )
    return (
        f"No AWS region for {connection}: give the task region_name='eu-west-1' (say), put "
        '"region_name" in the connection\'s extra, or set AWS_DEFAULT_REGION'
    )


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


def _message(code: str, message: str, transform_id: str, task_run_id: str | None, where: str) -> str:
    run = f"task run '{task_run_id}' of " if task_run_id else ""
    if code == ErrorCode.ENTITY_NOT_FOUND and "No labelset exists" in message:
        return f"Glue ML transform '{transform_id}' has no labels yet{where}, so there is nothing to export: {message}"
    if code == ErrorCode.ENTITY_NOT_FOUND:
        return f"Glue ML {run}transform '{transform_id}' not found{where}: {message}"
    if code == ErrorCode.TRANSFORM_NOT_READY:
        return f"Glue ML transform '{transform_id}' is not ready{where} (import labels first): {message}"
    return ""


@contextlib.contextmanager
def translate_errors(
    operation: str, transform_id: str, task_run_id: str | None = None, region: str | None = None
) -> Iterator[None]:
    """Turn botocore's errors of one Glue call into :class:`GlueMLError` with a clear message.

    Throttling, Glue's faults (5xx) and dropped connections are marked ``transient``.
    """
    where = f" in region {region}" if region else ""
    of_run = f"task run '{task_run_id}' of " if task_run_id else ""
    try:
        yield
    except ClientError as error:
        info = error.response.get("Error", {})
        code, message = info.get("Code", "Unknown"), info.get("Message", str(error))
        status_code = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        text = _message(code, message, transform_id, task_run_id, where) or (
            f"Glue {operation} failed for {of_run}transform '{transform_id}'{where}: {code}: {message}"
        )
        raise GlueMLError(
            text,
            transform_id=transform_id,
            task_run_id=task_run_id,
            error_string=message,
            code=code,
            transient=code in TRANSIENT_CODES or status_code >= 500,
        ) from error
    except (ConnectionError, HTTPClientError) as error:
        raise GlueMLError(
            f"Glue {operation} for {of_run}transform '{transform_id}'{where} lost its connection: {error}",
            transform_id=transform_id,
            task_run_id=task_run_id,
            code=type(error).__name__,
            transient=True,
        ) from error
