"""GlueMLHook: every AWS Glue ML call of the provider, and the errors it raises."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import botocore.session
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.common.compat.sdk import conf

from airflow_provider_glue_labeling import exceptions
from airflow_provider_glue_labeling.glue.errors import no_region, translate_errors
from airflow_provider_glue_labeling.glue.polling import TaskRunPoll
from airflow_provider_glue_labeling.glue.statuses import ACTIVE_STATUSES, START_CALLS, ErrorCode
from airflow_provider_glue_labeling.labels.files import S3Files

if not TYPE_CHECKING:  # to type checkers, the module has only the names it defines

    def __getattr__(name: str) -> Any:
        """``hooks.GlueMLError``, where 0.1.0 had it: deprecated, import it from :mod:`~.exceptions`."""
        return exceptions.moved_here(__name__, name, ("GlueMLError",))


@dataclass(frozen=True)
class AwsConnection:
    """A task's four AWS connection fields: every S3 and Glue access for a task is made from them.

    The task itself, its triggers, the labeling page and the quality history all reach AWS
    through this one value, so a ``botocore_config`` (a proxy, a retry mode, timeouts) applies
    to each of them as it does to the task.

    :param aws_conn_id: the Airflow AWS connection.
    :param region_name: the AWS region.
    :param verify: verify SSL certificates (or a CA bundle path).
    :param botocore_config: botocore client configuration, as a dict.
    """

    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    verify: bool | str | None = None
    botocore_config: Mapping[str, Any] | None = field(default=None, hash=False)

    @classmethod
    def of(cls, task: Any) -> AwsConnection:
        """The connection fields of an operator, sensor or trigger of this provider.

        :param task: anything with ``aws_conn_id``, ``region_name``, ``verify`` and ``botocore_config``.
        """
        return cls(task.aws_conn_id, task.region_name, task.verify, task.botocore_config)

    @classmethod
    def rendered(cls, fields: Mapping[str, Any]) -> AwsConnection:
        """The connection fields a task instance's rendered template fields hold.

        Airflow keeps a rendered None as the text ``"None"`` and a ``verify`` flag as ``"True"`` or
        ``"False"``; ``botocore_config`` is kept as a dict.

        :param fields: the rendered template fields (``RenderedTaskInstanceFields``).
        :raises ValueError: a ``botocore_config`` that is not a dict.
        """
        value = {n: None if fields.get(n) in exceptions.NOTHING else fields.get(n) for n in CONNECTION_FIELDS}
        verify = value["verify"]
        if isinstance(verify, str):
            verify = {"True": True, "False": False}.get(verify, verify)
        config = value["botocore_config"]
        if config is not None and not isinstance(config, Mapping):
            raise ValueError(f"botocore_config {config!r} is not a dict of botocore client configuration")
        return cls(value["aws_conn_id"], value["region_name"], verify, config)

    def arguments(self) -> dict[str, Any]:
        """The fields as the Amazon provider's triggers take them (and as this provider's do)."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": dict(self.botocore_config) if self.botocore_config is not None else None,
        }

    def key(self) -> tuple[Any, ...]:
        """A hashable key: clients made for equal keys are interchangeable (a cache's key)."""
        config = json.dumps(self.botocore_config, sort_keys=True, default=str)
        return (self.aws_conn_id, self.region_name, str(self.verify), config)

    def hook_arguments(self, **config: Any) -> dict[str, Any]:
        """The fields as an ``AwsBaseHook`` takes them.

        :param config: botocore configuration defaults, under the task's own ``botocore_config``.
        """
        merged = {**config, **(self.botocore_config or {})}
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "config": merged or None,
        }

    def glue(self, **config: Any) -> GlueMLHook:
        """A Glue ML hook over these fields.

        :param config: botocore configuration defaults, under the task's own ``botocore_config``.
        """
        return GlueMLHook(**self.hook_arguments(**config))

    def s3(self) -> S3Files:
        """The S3 objects these fields reach."""
        return S3Files(_S3Hook(**self.hook_arguments()))


# The connection fields, as a task's template fields name them.
CONNECTION_FIELDS = ("aws_conn_id", "region_name", "verify", "botocore_config")


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read now (so a changed setting applies at once)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def default_poll_seconds() -> float:
    """``[glue_labeling] poll_seconds`` (default 60): seconds between looks when a task gives none."""
    return conf.getfloat("glue_labeling", "poll_seconds", fallback=60.0)


def _calling_class(function: str) -> str | None:
    """The class of ``self`` in the innermost frame running a method named ``function``; "Unknown"
    when that frame has no ``self``; None when no frame runs it."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == function:
            caller = frame.f_locals.get("self")
            return "Unknown" if caller is None else type(caller).__name__
        frame = frame.f_back
    return None


def _executor_class() -> str | None:
    """As the Amazon provider finds an executor: the last class of the first module on the stack
    that has a class named ``BaseExecutor``."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        classes = [name for name, value in frame.f_globals.items() if isinstance(value, type)]
        if "BaseExecutor" in classes:
            return classes[-1]
        frame = frame.f_back
    return None


class CallerFromFrames(AwsBaseHook):
    """The Amazon provider's hook, naming its caller without ``inspect.stack()``.

    Each client a hook makes carries its caller in the user agent (``Caller/<class>``). The
    Amazon provider finds it with ``inspect.stack()``, which also reads the source lines of
    every frame on the stack, up to three times a client: under a task, more CPU than making the
    client otherwise takes. This walks the same frames, reading no source, and finds the same
    class: the innermost ``execute``'s, ``poke``'s for a sensor, else an executor's
    (``tests/aws/test_hooks.py`` compares both).
    """

    def _get_caller(self, target_function_name: str = "execute") -> str:
        try:
            caller = _calling_class(target_function_name)
            if caller == "BaseSensorOperator":
                caller = _calling_class("poke")
            return caller or _executor_class() or "Unknown"
        except Exception:  # as the Amazon provider's: the user agent never fails a call
            return "Unknown"


class _S3Hook(CallerFromFrames, S3Hook):
    """The Amazon provider's ``S3Hook``, naming its caller as :class:`CallerFromFrames` does."""


class GlueMLHook(CallerFromFrames):
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
            raise exceptions.GlueMLInputError("region_name", None, no_region(self.aws_conn_id))
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
        except exceptions.GlueMLError as error:
            if error.code == ErrorCode.CONCURRENT_RUNS_EXCEEDED:
                raise self._concurrency_error(error) from error
            raise

    def _concurrency_error(self, error: exceptions.GlueMLError) -> exceptions.GlueMLError:
        transform_id = error.transform_id or ""
        try:
            active = self.list_task_runs(transform_id, statuses=ACTIVE_STATUSES)
        except exceptions.GlueMLError as listing:
            runs = f"(the active runs could not be listed: {listing})"
        else:
            runs = "; ".join(
                f"{r['TaskRunId']} {r.get('Properties', {}).get('TaskType', '?')} {r['Status']} "
                f"since {r['StartedOn'].isoformat() if r.get('StartedOn') else '?'}"
                for r in active
            )
        return exceptions.GlueMLError(
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
            except exceptions.GlueMLError as error:
                delay = poll.after_error(error)
            if delay is None:
                return run
            sleep(delay)
