"""The operators' shared flow: check the input, start the run (or reconnect), then defer, wait or return.

:class:`GlueMLTaskRunOperator` carries out what :mod:`~.lifecycle` decides: it reads the ledger,
asks Glue, starts or adopts the run, defers to the triggerer or waits in the worker, and pushes
the result. The concrete operators (``operators.py``) give only their start call's parameters
and what to do with a finished run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import ResumableJobMixin

from airflow_provider_glue_labeling import assets
from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLFinalError
from airflow_provider_glue_labeling.glue.polling import summarize, task_run_from_event
from airflow_provider_glue_labeling.glue.statuses import (
    DEFAULT_TASK_RUN_TIMEOUT_SECONDS,
    ECHO_KEYS,
    RUNNING_STATUSES,
    TaskRunStatus,
)
from airflow_provider_glue_labeling.hooks import GlueMLHook, default_deferrable, default_poll_seconds
from airflow_provider_glue_labeling.lineage import GlueMLLineageMixin
from airflow_provider_glue_labeling.links import GlueMLTransformLink
from airflow_provider_glue_labeling.runs import lifecycle
from airflow_provider_glue_labeling.validation import check_bool, check_positive, check_transform_id

if TYPE_CHECKING:
    from airflow.sdk import Context


class GlueMLTaskRunOperator(GlueMLLineageMixin, ResumableJobMixin, AwsBaseOperator[GlueMLHook]):
    """Base of the operators: start one Glue ML task run, then defer, wait or return its id.

    Subclasses set ``task_type`` and give the start call's parameters in :meth:`start_parameters`.

    :param transform_id: the Glue ML transform (FindMatches). (templated)
    :param wait_for_completion: wait until the run ends (default True); when False the
        TaskRunId is returned at once, e.g. for :class:`~.sensors.GlueMLTaskRunSensor`, even
        when ``deferrable`` is set.
    :param deferrable: do the wait in the triggerer instead of the worker (default: ``[operators]
        default_deferrable``, read when the task is created).
    :param waiter_delay: seconds between status polls (default: ``[glue_labeling] poll_seconds``, 60).
    :param waiter_max_attempts: status polls before the wait gives up (default: enough for 48
        hours, Glue's default task-run timeout).
    :param cancel_on_kill: cancel the run when a user kills the task, waiting in the worker or
        deferred (default True).
    :param durable: keep the run's id in the task-state store (Airflow 3.3+), so that a retry
        reconnects to its run and a Clear starts anew (default True; ``ResumableJobMixin``).
    :param aws_conn_id: the Airflow AWS connection. (templated)
    :param region_name: the AWS region. (templated)
    :param verify: verify SSL certificates (or a CA bundle path). (templated)
    :param botocore_config: botocore client configuration, as a dict.
    """

    aws_hook_class = GlueMLHook
    task_type: ClassVar[str]
    # The run changes the transform: the transform's asset is an outlet (see :mod:`~.assets`).
    updates_transform: ClassVar[bool] = False
    template_fields: Sequence[str] = aws_template_fields("transform_id")
    operator_extra_links = (GlueMLTransformLink(),)
    external_id_key = lifecycle.RUN_ID_KEY
    ui_color = "#ede4ff"

    def __init__(
        self,
        *,
        transform_id: str,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        waiter_delay: float | None = None,
        waiter_max_attempts: int | None = None,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transform_id, self.wait_for_completion = transform_id, wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.waiter_delay = default_poll_seconds() if waiter_delay is None else waiter_delay
        self.waiter_max_attempts, self.cancel_on_kill = waiter_max_attempts, cancel_on_kill
        self.task_run_id: str | None = None
        self.ledger: lifecycle.Ledger | None = None  # what the task-state store holds, read once a try
        if self.updates_transform:
            assets.add_transform_outlet(self)

    # -- what subclasses change ---------------------------------------------------------------
    def validate(self) -> None:
        """Check the rendered parameters; raise :class:`GlueMLInputError` before any AWS call."""
        check_transform_id(self.transform_id)
        check_bool("wait_for_completion", self.wait_for_completion)
        check_bool("deferrable", self.deferrable)
        check_positive("waiter_delay", self.waiter_delay, float)
        if self.waiter_max_attempts is not None:
            check_positive("waiter_max_attempts", self.waiter_max_attempts)
        assets.check_transform_outlets(self)
        self.hook.require_region()

    def start_parameters(self) -> dict[str, Any]:
        """The start call's parameters besides ``TransformId``, in AWS's spelling."""
        return {}

    def echoed_start(self) -> dict[str, Any] | None:
        """What Glue echoes of this task's start call in a run's ``Properties`` (``ECHO_KEYS``).

        It tells this task's runs from other tasks' runs on the same transform. None (an evaluation
        run echoes nothing): a run is never adopted, only reconnected to by its stored id.
        """
        return None

    def check_inputs(self, context: Context) -> None:
        """Checks of what the run will read (e.g. S3 files), before a run is adopted or started."""

    def before_start(self, context: Context) -> None:
        """Work that must succeed before a new run is started (e.g. the import's backup export)."""

    def after_start(self, context: Context) -> None:
        """Work once a new run has started (e.g. the import forgets its backup export)."""

    def result(self, run: dict[str, Any], context: Context) -> Any:
        """The task's result once its run SUCCEEDED (``run`` is a :func:`~.glue.polling.summarize` dict)."""
        return run["TaskRunId"]

    def lineage_run_type(self) -> str | None:
        return self.task_type

    def event_facts(self, run: dict[str, Any]) -> dict[str, Any]:
        """What the transform's asset event says of the finished run, besides the transform and run."""
        return {}

    # -- the shared flow ------------------------------------------------------------------------
    @property
    def max_polls(self) -> int:
        """``waiter_max_attempts``, by default as many as 48 hours take: Glue's default run timeout."""
        if self.waiter_max_attempts is not None:
            return self.waiter_max_attempts
        return math.ceil(DEFAULT_TASK_RUN_TIMEOUT_SECONDS / self.waiter_delay)

    def execute(self, context: Context) -> Any:
        self.validate()
        return self.run_task(context)

    def run_task(self, context: Context) -> Any:
        """The task once its input is valid: start anew after a Clear, then the resumable flow."""
        self._result: Any = None
        store = self._store(context)
        # Read once a try: on Airflow 3.3 each look into the store is a call to the API server.
        self.ledger = lifecycle.Ledger.read(store)
        if self.ledger is not None and lifecycle.cleared(
            self.ledger.finished, lifecycle.max_tries_of(context)
        ):
            self.log.info(
                "This task finished with Glue ML task run %s and was cleared since: starting anew",
                (self.ledger.finished or {}).get("run"),
            )
            for key in lifecycle.KEYS:
                store.delete(key)
            self.ledger = lifecycle.Ledger()
        return self.execute_resumable(context)

    def _store(self, context: Context) -> Any:
        """The task-state store (Airflow 3.3+), unless ``durable=False``; else None."""
        return context.get("task_state_store") if getattr(self, "durable", True) else None

    def _record_finished(self, context: Context, run_id: str) -> None:
        """Record that the task finished with ``run_id``: a later try comes from a Clear."""
        store = self._store(context)
        if store is not None:
            store.set(
                lifecycle.FINISHED_KEY, lifecycle.finished_record(run_id, lifecycle.max_tries_of(context))
            )

    def submit_job(self, context: Context) -> str:
        self.check_inputs(context)
        adopted = self.find_own_run(context, self.task_type, self.echoed_start())
        if adopted:
            self.log.info("Adopting Glue ML task run %s, started by an earlier try of this task", adopted)
            self.task_run_id = adopted
            return adopted
        store = self._store(context)
        if store is not None and self.ledger is not None and self.ledger.started_at is None:
            started_at = datetime.now(UTC)
            store.set(lifecycle.STARTED_AT_KEY, started_at.isoformat())
            self.ledger = dataclasses.replace(self.ledger, started_at=started_at)
        self.before_start(context)
        self.task_run_id = self.hook.start_task_run(
            self.task_type, self.transform_id, **self.start_parameters()
        )
        self.after_start(context)
        self.log.info("Started Glue ML %s task run %s", self.task_type, self.task_run_id)
        return self.task_run_id

    def find_own_run(self, context: Context, task_type: str, echo: dict[str, Any] | None) -> str | None:
        """An active run of ``task_type`` that an earlier try of this task started but never recorded.

        That happens when a worker dies between the start call and ``task_state_store.set``, and
        on Airflow < 3.3, which has no store. See :func:`~.lifecycle.adoption_window` and
        :func:`~.lifecycle.adopt`; each run looked at is logged with its verdict.
        """
        ti, dag_run = context.get("ti"), context.get("dag_run")
        since = lifecycle.adoption_window(self.ledger, getattr(ti, "try_number", None), run_began(dag_run))
        if since is None or echo is None:
            return None
        active = self.hook.list_task_runs(
            self.transform_id,
            task_type=task_type,
            statuses=RUNNING_STATUSES,  # not STOPPING: that one is being cancelled
            started_after=since - lifecycle.ADOPTION_CLOCK_SKEW,
        )
        adopted, verdicts = lifecycle.adopt(active, ECHO_KEYS[task_type], echo)
        for verdict in verdicts:
            self.log.info("Active %s %s", task_type, verdict)
        if not verdicts:
            self.log.info(
                "No active %s run of %s started since %s: nothing to adopt",
                task_type,
                self.transform_id,
                since.isoformat(),
            )
        return adopted

    def get_job_status(self, external_id: Any, context: Context) -> str:
        return self.hook.get_task_run(self.transform_id, str(external_id))["Status"]

    def is_job_active(self, status: str) -> bool:
        """A run to reconnect to: STARTING or RUNNING. A STOPPING run was cancelled (e.g. by a
        user's kill): the next try starts a new one."""
        return status in RUNNING_STATUSES

    def is_job_succeeded(self, status: str) -> bool:
        return status == TaskRunStatus.SUCCEEDED

    def _track(self, external_id: Any, context: Context) -> str:
        """Remember the run (for ``on_kill``) and link the task to its transform."""
        self.task_run_id = str(external_id)
        GlueMLTransformLink.persist(
            context=context,
            operator=self,
            region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition,
            transform_id=self.transform_id,
        )
        return self.task_run_id

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        run_id = self._track(external_id, context)
        if not self.wait_for_completion:
            self._record_finished(context, run_id)
            self._result = run_id
            return run_id
        run = self.wait(run_id, "execute_complete")
        self._result = self._finish(summarize(run), context)
        return self._result

    def wait(self, run_id: str, method_name: str) -> dict[str, Any]:
        """Wait for the run in the worker and return it, or defer and go on in ``method_name``."""
        if self.deferrable:
            self.log.info("Deferring until Glue ML task run %s ends", run_id)
            from airflow_provider_glue_labeling.triggers import GlueMLTaskRunTrigger  # only when deferring

            trigger = GlueMLTaskRunTrigger.for_task(
                self, run_id, waiter_delay=self.waiter_delay, waiter_max_attempts=self.max_polls
            )
            self.defer(trigger=trigger, method_name=method_name)
        return self.hook.wait_for_task_run(
            self.transform_id,
            run_id,
            waiter_delay=self.waiter_delay,
            waiter_max_attempts=self.max_polls,
        )

    def _finish(self, run: dict[str, Any], context: Context) -> Any:
        """:meth:`result`, then record that the task finished; a failure no retry can change too."""
        self.task_run_id = run["TaskRunId"]  # a resumed task knows its run from the trigger's event
        try:
            result = self.result(run, context)
        except GlueMLFinalError:
            self._record_finished(context, run["TaskRunId"])
            raise
        self._record_finished(context, run["TaskRunId"])
        facts = self.event_facts(run)
        assets.record_event(
            self, context, assets.event_extra(self.transform_id, run["TaskRunId"], self.task_type, **facts)
        )
        return result

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        if self._result is not None:
            return self._result
        run_id = self._track(external_id, context)
        return self._finish(summarize(self.hook.get_task_run(self.transform_id, run_id)), context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        run = task_run_from_event(event)
        self.log.info("Glue ML task run %s %s", run["TaskRunId"], run["Status"])
        return self._finish(run, context)

    def on_kill(self) -> None:
        """Cancel the run (``cancel_on_kill``); a failed cancel is logged, never raised."""
        run_id = self.running_run_id()
        if self.cancel_on_kill and run_id:
            self.log.info("Cancelling Glue ML task run %s", run_id)
            try:
                self.hook.cancel_task_run(self.transform_id, run_id)
            except GlueMLError as error:
                self.log.warning("Could not cancel Glue ML task run %s: %s", run_id, error)

    def running_run_id(self) -> str | None:
        """The run this task is waiting for, which a kill cancels."""
        return self.task_run_id


def run_began(dag_run: Any) -> datetime | None:
    """When the DAG run began: its start, or (Airflow 3.1/3.2 in ``dag.test()`` leave it unset) its run_after."""
    if dag_run is None:
        return None
    return dag_run.start_date or getattr(dag_run, "run_after", None)
