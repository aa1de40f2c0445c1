"""The provider's errors and the task-run status names, shared by every module."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

NOTHING = ("None", "null", "")  # what an empty XCom or template renders to


class TaskRunStatus(StrEnum):
    """Glue's ``TaskStatusType`` (botocore glue 2017-03-31)."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"


# STOPPING is not an end: the run still holds one of the transform's concurrent-run slots.
ACTIVE_STATUSES = (TaskRunStatus.STARTING, TaskRunStatus.RUNNING, TaskRunStatus.STOPPING)
FAILURE_STATUSES = frozenset({TaskRunStatus.FAILED, TaskRunStatus.STOPPED, TaskRunStatus.TIMEOUT})


class GlueMLError(AirflowException):
    """A Glue ML transform or task run failed, or a call about one did.

    :param message: what happened, naming the transform, the run, the status and Glue's text.
    :param transform_id: the transform concerned.
    :param task_run_id: the task run concerned, if any.
    :param status: the run's final status, if it ended.
    :param error_string: Glue's ``ErrorString`` of the run, or the AWS error message.
    :param code: the AWS error code of a failed call.
    :param transient: True when retrying the same call may succeed (throttling, 5xx, network).
    """

    def __init__(
        self,
        message: str,
        *,
        transform_id: str | None = None,
        task_run_id: str | None = None,
        status: str | None = None,
        error_string: str | None = None,
        code: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.transform_id = transform_id
        self.task_run_id = task_run_id
        self.status = status
        self.error_string = error_string
        self.code = code
        self.transient = transient


class GlueMLInputError(ValueError, AirflowFailException):
    """A parameter's value breaks a rule; the message names the parameter, the value and the rule.

    A retry would meet the same value, so the task fails without retrying."""

    def __init__(self, parameter: str, value: Any, rule: str, *, explain_empty: bool = True) -> None:
        hint = ""
        if explain_empty and value is None:
            hint = " (not given, or an upstream XCom or template rendered to nothing)"
        elif explain_empty and value in NOTHING:
            hint = " (an upstream XCom or template rendered to nothing)"
        super().__init__(f"Invalid {parameter}={value!r}{hint}: {rule}")
        self.parameter = parameter
        self.value = value


class GlueMLFinalError(GlueMLError, AirflowFailException):
    """A failure no retry can change: a failed quality gate, or a watched run that ended failed.

    The task fails without retrying (and a sensor with ``soft_fail`` is skipped, in every mode).
    An operator whose own run failed raises :class:`GlueMLError` instead: its retry starts anew.
    """

    @classmethod
    def from_error(cls, error: GlueMLError) -> GlueMLFinalError:
        """The same error, marked final."""
        return cls(
            str(error),
            transform_id=error.transform_id,
            task_run_id=error.task_run_id,
            status=error.status,
            error_string=error.error_string,
            code=error.code,
        )
