"""Triggers: :class:`GlueMLTaskRunTrigger` waits for a Glue ML task run to finish,
:class:`GlueMLLabelsFileTrigger` for a labels file, until a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.triggers.s3 import S3KeyTrigger
from airflow.triggers.base import BaseTrigger, TriggerEvent
from botocore.exceptions import NoRegionError

from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLInputError
from airflow_provider_glue_labeling.glue.errors import no_region, translate_errors
from airflow_provider_glue_labeling.glue.polling import TaskRunPoll, error_event, summarize
from airflow_provider_glue_labeling.hooks import AwsConnection, GlueMLHook
from airflow_provider_glue_labeling.versions import HAS_TASK_SDK, TRIGGER_HAS_ON_KILL

# Connections each shared client keeps open: 10,000 waits polling every 60 s make about
# 170 calls a second, which 50 connections carry without queueing at up to ~250 ms a call.
POOL_CONNECTIONS = 50


class SharedClients:
    """One aiobotocore Glue client per connection, shared by every wait of a triggerer.

    A client is keyed by the event loop and the trigger's ``aws_conn_id``, ``region_name``,
    ``verify`` and ``botocore_config``: the connection is looked up and the client made once per
    key, then reference-counted and closed when its last wait ends. A wait that fails or is
    cancelled only gives its reference back; the client, its connection pool and its
    (refreshable) credentials stay with the other waits.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], _Entry] = {}

    @staticmethod
    def key(trigger: GlueMLTaskRunTrigger) -> tuple[Any, ...]:
        return (id(asyncio.get_running_loop()), *AwsConnection.of(trigger).key())

    @contextlib.asynccontextmanager
    async def use(self, trigger: GlueMLTaskRunTrigger) -> AsyncIterator[Any]:
        """Lend the shared client for ``trigger``'s connection for the duration of the block."""
        key = self.key(trigger)
        entry = await self._entry(key, trigger)
        entry.users += 1
        try:
            yield entry.client.result()
        finally:
            entry.users -= 1
            if entry.users == 0 and self._entries.get(key) is entry:
                del self._entries[key]
                await entry.context.__aexit__(None, None, None)

    async def _entry(self, key: tuple[Any, ...], trigger: GlueMLTaskRunTrigger) -> _Entry:
        while True:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(asyncio.get_running_loop().create_future())
                try:
                    entry.context = await trigger.hook().get_async_conn()
                    client = await entry.context.__aenter__()
                except BaseException as error:
                    del self._entries[key]
                    entry.client.cancel()  # the waits queued on it try for themselves
                    if isinstance(error, NoRegionError):
                        raise GlueMLInputError("region_name", None, no_region(trigger.aws_conn_id)) from None
                    raise
                entry.client.set_result(client)
                return entry
            try:
                await asyncio.shield(entry.client)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if entry.client.cancelled() and not (current and current.cancelling()):
                    continue
                raise
            return entry


@dataclasses.dataclass
class _Entry:
    client: asyncio.Future[Any]
    context: Any = None
    users: int = 0


CLIENTS = SharedClients()
_CHECKS: set[asyncio.Future[None]] = set()  # cancelled waits' checks still going (see run)
# A deferred task's states after a user's action: marked failed, success or skipped, or cleared.
# A deferral's timeout (SCHEDULED, to fail) is no kill, as on Airflow 3.3, where on_kill skips it.
KILLED_STATES = frozenset({None, "failed", "success", "skipped", "removed", "restarting"})


class GlueMLTaskRunTrigger(BaseTrigger):
    """Poll ``GetMLTaskRun`` until the run ends; fire one event with the outcome.

    The event is ``{"status": "success", "task_run": <summary>}`` or
    ``{"status": "error", "message": ..., "run_status": ..., "error_string": ...}``; turn it back
    into a result or an error with :func:`~.glue.polling.task_run_from_event`.

    :param transform_id: the ML transform.
    :param task_run_id: the task run to wait for.
    :param waiter_delay: seconds between polls.
    :param waiter_max_attempts: polls before giving up.
    :param aws_conn_id: the Airflow AWS connection.
    :param region_name: the AWS region.
    :param verify: whether to verify SSL certificates, or a CA bundle path.
    :param botocore_config: botocore client configuration as a dict.
    :param cancel_on_kill: cancel the run when a user kills the deferred task (marks it failed or
        success, or clears it); never when the triggerer restarts or hands the wait to another.
        Airflow 3.3+ calls :meth:`on_kill` for that; below, the cancelled wait reads its task's
        state and cancels only for a user's action (:data:`KILLED_STATES`).
    """

    SERIALIZED_FIELDS = (
        "transform_id",
        "task_run_id",
        "waiter_delay",
        "waiter_max_attempts",
        "aws_conn_id",
        "region_name",
        "verify",
        "botocore_config",
        "cancel_on_kill",
    )

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
        cancel_on_kill: bool = False,
    ) -> None:
        super().__init__()
        self.transform_id, self.task_run_id = transform_id, task_run_id
        self.waiter_delay, self.waiter_max_attempts = waiter_delay, waiter_max_attempts
        self.aws_conn_id, self.region_name, self.verify = aws_conn_id, region_name, verify
        self.botocore_config, self.cancel_on_kill = botocore_config, cancel_on_kill

    @classmethod
    def for_task(
        cls, task: Any, task_run_id: str, *, waiter_delay: float, waiter_max_attempts: int
    ) -> GlueMLTaskRunTrigger:
        """The trigger a deferring operator or sensor hands over, with all its connection fields."""
        return cls(
            transform_id=task.transform_id,
            task_run_id=task_run_id,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            cancel_on_kill=getattr(task, "cancel_on_kill", False),
            **AwsConnection.of(task).arguments(),
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            f: getattr(self, f) for f in self.SERIALIZED_FIELDS
        }

    def hook(self) -> GlueMLHook:
        """The hook for this trigger's connection (its pool size defaults to ``POOL_CONNECTIONS``)."""
        return AwsConnection.of(self).glue(max_pool_connections=POOL_CONNECTIONS)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poll = TaskRunPoll(
            self.transform_id, self.task_run_id, self.waiter_delay, self.waiter_max_attempts, self.log
        )
        try:
            async with CLIENTS.use(self) as client:
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
        except asyncio.CancelledError:
            # Below Airflow 3.3 a user's kill reaches the trigger only as this cancellation, as does a
            # triggerer's shutdown or hand-over: cancel the run only when the task's state shows a kill.
            # The triggerer may cancel this wait again while it asks; the question and the cancel run in
            # a task of their own, so that neither is cut off half-way (an answer left unread would
            # derail the triggerer's next message).
            if self.cancel_on_kill and not TRIGGER_HAS_ON_KILL:
                check = asyncio.ensure_future(self._cancel_if_killed())
                _CHECKS.add(check)
                check.add_done_callback(_CHECKS.discard)
                await asyncio.shield(check)
            raise
        except (GlueMLError, GlueMLInputError) as error:
            yield TriggerEvent(error_event(error, self.transform_id, self.task_run_id))

    async def on_kill(self) -> None:
        """Cancel the run (``cancel_on_kill``); a failed cancel is logged, never raised."""
        if not self.cancel_on_kill:
            return
        self.log.info("Task killed: cancelling Glue ML task run %s", self.task_run_id)
        try:
            async with CLIENTS.use(self) as client:
                with translate_errors(
                    "cancel_ml_task_run", self.transform_id, self.task_run_id, self.region_name
                ):
                    await client.cancel_ml_task_run(TransformId=self.transform_id, TaskRunId=self.task_run_id)
        except (GlueMLError, GlueMLInputError) as error:
            self.log.warning("Could not cancel Glue ML task run %s: %s", self.task_run_id, error)

    async def _cancel_if_killed(self) -> None:
        if await self._task_was_killed():
            await self.on_kill()

    async def _task_was_killed(self) -> bool:
        """Whether a user acted on this trigger's task instance (see :data:`KILLED_STATES`)."""
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return False
        try:
            state = await _task_state(ti)
        except Exception as error:  # a cancel on doubt would stop runs at every triggerer restart
            self.log.warning("Could not read the state of task %s: %s; not cancelling", ti.task_id, error)
            return False
        return state in KILLED_STATES


async def _task_state(ti: Any) -> str | None:
    """The task instance's current state: from the triggerer's supervisor on Airflow 3, the DB on 2."""
    if not HAS_TASK_SDK:  # Airflow 2: the triggerer reads the metadata DB
        return await asyncio.to_thread(_task_state_in_db, ti)
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    # Awaited on the trigger's own loop: Airflow 3.1's bridge for sync calls from a thread
    # (RuntimeTaskInstance.get_task_states) can interleave with the runner's own messages.
    comms: Any = task_runner.SUPERVISOR_COMMS
    answer = await comms.asend(
        GetTaskStates(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index)
    )
    # the execution API names a mapped task instance "<task_id>_<map_index>"
    name = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
    states = answer.task_states.get(ti.run_id, {})
    if name not in states:
        raise LookupError(f"the triggerer's supervisor knows no task instance {name} in {ti.run_id}")
    state = states[name]
    return None if state is None else str(state)


def _task_state_in_db(ti: Any) -> str | None:
    """The task instance's state in the metadata DB (None: cleared)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(
            select(TaskInstance.state).where(
                TaskInstance.dag_id == ti.dag_id,
                TaskInstance.task_id == ti.task_id,
                TaskInstance.run_id == ti.run_id,
                TaskInstance.map_index == ti.map_index,
            )
        )


class GlueMLLabelsFileTrigger(S3KeyTrigger):
    """The Amazon provider's :class:`S3KeyTrigger` with a deadline of its own: at ``deadline`` it
    yields ``{"status": "timeout"}``.

    Airflow ends a deferral at its ``timeout`` on a deployment; where no triggerer keeps time
    (``dag.test()`` runs a trigger inline) this deadline ends the wait all the same.

    :param deadline: when to give up, in seconds since the epoch.
    :param kwargs: :class:`S3KeyTrigger`'s arguments.
    """

    def __init__(self, *, deadline: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, arguments = super().serialize()
        return f"{__name__}.{type(self).__name__}", {**arguments, "deadline": self.deadline}

    @cached_property
    def hook(self) -> S3Hook:
        """The S3 hook of the task's connection fields, made where every other access is made."""
        return AwsConnection.of(self).s3().hook

    async def run(self) -> AsyncIterator[TriggerEvent]:
        looks: Any = super().run()
        try:
            event = await asyncio.wait_for(anext(looks), timeout=max(0.0, self.deadline - time.time()))
        except TimeoutError:
            event = TriggerEvent(
                {"status": "timeout", "message": f"No file at s3://{self.bucket_name}/{self.bucket_key}"}
            )
        finally:
            await looks.aclose()
        yield event
