"""The provider's errors, and the old homes 0.1.0 gave two of them (deprecated)."""

from __future__ import annotations

import warnings
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

NOTHING = ("None", "null", "")  # what an empty XCom or template renders to


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
        self.transform_id, self.task_run_id, self.status = transform_id, task_run_id, status
        self.error_string, self.code, self.transient = error_string, code, transient


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


def moved_here(module: str, name: str, names: tuple[str, ...]) -> Any:
    """The error ``name`` that 0.1.0 had in ``module``, with a :class:`DeprecationWarning`.

    ``module``'s ``__getattr__`` calls it for a name the module does not define; any name
    other than ``names`` is an :class:`AttributeError`, as for any module.

    :param module: the old home, ``__name__`` of the calling module.
    :param name: the name looked up in it.
    :param names: the errors 0.1.0 had there, all of them defined here.
    """
    if name not in names:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(
        f"{module}.{name} is deprecated since 0.2.0: import {name} from {__name__}",
        DeprecationWarning,
        stacklevel=3,
    )
    return globals()[name]
