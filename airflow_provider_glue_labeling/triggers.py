"""GlueMLTaskRunTrigger: waits in the triggerer for a Glue ML task run to finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_glue_labeling.hooks import (
    GlueMLError,
    GlueMLHook,
    TaskRunPoll,
    summarize,
    translate_errors,
)


class GlueMLTaskRunTrigger(BaseTrigger):
    """Poll ``GetMLTaskRun`` until the run ends; fire one event with the outcome.

    The event is ``{"status": "success", "task_run": <summary>}`` or
    ``{"status": "error", "message": ..., "run_status": ..., "error_string": ...}``; turn it back
    into a result or an error with :func:`task_run_from_event`.

    :param transform_id: the ML transform.
    :param task_run_id: the task run to wait for.
    :param waiter_delay: seconds between polls.
    :param waiter_max_attempts: polls before giving up.
    :param aws_conn_id: the Airflow AWS connection.
    :param region_name: the AWS region.
    :param verify: whether to verify SSL certificates, or a CA bundle path.
    :param botocore_config: botocore client configuration as a dict.
    """

    def __init__(
        self,
        *,
        transform_id: str,
        task_run_id: str,
        waiter_delay: float = 60,
        waiter_max_attempts: int = 1440,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.transform_id = transform_id
        self.task_run_id = task_run_id
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "transform_id": self.transform_id,
                "task_run_id": self.task_run_id,
                "waiter_delay": self.waiter_delay,
                "waiter_max_attempts": self.waiter_max_attempts,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            },
        )

    def hook(self) -> GlueMLHook:
        return GlueMLHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poll = TaskRunPoll(
            self.transform_id, self.task_run_id, self.waiter_delay, self.waiter_max_attempts, self.log
        )
        try:
            async with await self.hook().get_async_conn() as client:
                while True:
                    try:
                        with translate_errors(
                            "get_ml_task_run", self.transform_id, self.task_run_id, self.region_name
                        ):
                            run = await client.get_ml_task_run(
                                TransformId=self.transform_id, TaskRunId=self.task_run_id
                            )
                        delay = poll.after(run)
                    except GlueMLError as error:
                        delay = poll.after_error(error)
                    if delay is None:
                        yield TriggerEvent({"status": "success", "task_run": summarize(run)})
                        return
                    await asyncio.sleep(delay)
        except GlueMLError as error:
            yield TriggerEvent(
                {
                    "status": "error",
                    "message": str(error),
                    "transform_id": self.transform_id,
                    "task_run_id": self.task_run_id,
                    "run_status": error.status,
                    "error_string": error.error_string,
                    "code": error.code,
                }
            )


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
