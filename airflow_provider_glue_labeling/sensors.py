"""GlueMLTaskRunSensor: waits for a Glue ML task run, in poke/reschedule mode or deferred; and the
deadline rule every wait of the provider shares (:class:`SensorDeadline`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, PokeReturnValue

from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLFinalError
from airflow_provider_glue_labeling.glue.errors import POLL_LIMIT
from airflow_provider_glue_labeling.glue.polling import summarize, task_run_done, task_run_from_event
from airflow_provider_glue_labeling.glue.statuses import FAILURE_STATUSES
from airflow_provider_glue_labeling.hooks import GlueMLHook, default_deferrable, default_poll_seconds
from airflow_provider_glue_labeling.lineage import GlueMLLineageMixin
from airflow_provider_glue_labeling.validation import check_positive, check_task_run_id, check_transform_id

if TYPE_CHECKING:
    from airflow.sdk import Context


class SensorDeadline:
    """A wait's deadline, the same in every mode: ``AirflowSensorTimeout`` (not retried), or a skip
    with ``soft_fail``, whether the worker, the triggerer or Airflow's deferral timeout saw it pass.

    Airflow 3 turns a deferral past its ``timeout`` into ``AirflowSensorTimeout`` itself; Airflow 2
    raises a ``TaskDeferralError`` instead, which would be retried: :meth:`resume_execution` maps it.
    """

    timeout: float
    soft_fail: bool
    log: Any

    def waiting_for(self) -> str:
        """What the wait was for, to end the timeout's message."""
        raise NotImplementedError

    def timed_out(self, why: str = "") -> NoReturn:
        timeout = AirflowSensorTimeout(f"Sensor timed out after {self.timeout:g}s: {self.waiting_for()}{why}")
        if self.soft_fail:
            self.log.warning("%s; skipped (soft_fail)", timeout)
            raise AirflowSkipException(str(timeout))
        raise timeout

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        error = str((next_kwargs or {}).get("error", ""))
        if next_method == "__fail__" and "timeout" in error.lower():
            self.timed_out(f" ({error})")
        return super().resume_execution(next_method, next_kwargs, context)  # type: ignore[misc]


class GlueMLTaskRunSensor(GlueMLLineageMixin, SensorDeadline, AwsBaseSensor[GlueMLHook]):
    """Wait until a Glue ML task run SUCCEEDED; fail when it ends FAILED, STOPPED or TIMEOUT.

    A STOPPING run is waited for: it still holds one of the transform's concurrent-run slots.

    The error names the transform, the run, the status and Glue's ``ErrorString``. The XCom
    value is a summary of the finished run: ``TaskRunId``, ``Status``, ``TaskType``,
    ``ExecutionTime`` and ``S3Path`` (the run's output or input path). Throttling, 5xx and
    dropped connections only make a poke return False.

    :param transform_id: the Glue ML transform. (templated)
    :param task_run_id: the task run, e.g. ``generate.output`` of an operator. (templated)
    :param poke_interval: seconds between looks (default: ``[glue_labeling] poll_seconds``, 60).
    :param deferrable: wait in the triggerer (default from ``[operators] default_deferrable``);
        ``poke_interval`` is then the delay between polls, and ``timeout`` a wall-clock deadline
        that ends in ``AirflowSensorTimeout`` as in poke mode (not retried).
    :param aws_conn_id: the Airflow AWS connection. (templated)
    :param region_name: the AWS region. (templated)
    :param verify: verify SSL certificates (or a CA bundle path). (templated)
    :param botocore_config: botocore client configuration, as a dict.
    """

    aws_hook_class = GlueMLHook
    template_fields: Sequence[str] = aws_template_fields("transform_id", "task_run_id")
    ui_color = "#ede4ff"

    def __init__(
        self,
        *,
        transform_id: str,
        task_run_id: str,
        deferrable: bool | None = None,
        poke_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        poke_interval = default_poll_seconds() if poke_interval is None else poke_interval
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.transform_id = transform_id
        self.task_run_id = task_run_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    def _validate(self) -> None:
        check_transform_id(self.transform_id)
        check_task_run_id(self.task_run_id)
        if self.deferrable:  # the triggerer polls every poke_interval seconds
            check_positive("poke_interval", self.poke_interval, float)
        self.hook.require_region()

    def execute(self, context: Context) -> Any:
        self._validate()
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_glue_labeling.triggers import GlueMLTaskRunTrigger  # only when deferring

        # The deadline is wall-clock: Airflow ends the deferral after ``timeout`` seconds, and the
        # sensor (as in poke mode) raises AirflowSensorTimeout. The trigger's own poll limit, one
        # poll at or past the deadline, only stands in where no triggerer keeps time (``dag.test()``).
        trigger = GlueMLTaskRunTrigger.for_task(
            self,
            self.task_run_id,
            waiter_delay=self.poke_interval,
            waiter_max_attempts=math.ceil(self.timeout / self.poke_interval) + 1,
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def poke(self, context: Context) -> PokeReturnValue | bool:
        try:
            run = self.hook.get_task_run(self.transform_id, self.task_run_id)
        except GlueMLError as error:
            if error.transient:
                self.log.warning("Transient error, poking again later: %s", error)
                return False
            raise
        try:
            done = task_run_done(self.transform_id, run)
        except GlueMLError as error:
            raise GlueMLFinalError.from_error(error) from None  # the run ended: it cannot change
        if done:
            return PokeReturnValue(is_done=True, xcom_value=summarize(run))
        self.log.info("Glue ML task run %s is %s", self.task_run_id, run.get("Status"))
        return False

    def waiting_for(self) -> str:
        return f"Glue ML task run {self.task_run_id} of transform {self.transform_id} had not ended"

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            run = task_run_from_event(event)
        except GlueMLError as error:
            if error.status in FAILURE_STATUSES:  # the run ended: it cannot change
                raise GlueMLFinalError.from_error(error) from None
            if error.code != POLL_LIMIT:
                raise
            still = error.status
        else:
            self.log.info("Glue ML task run %s %s", run["TaskRunId"], run["Status"])
            return run
        self.timed_out(f"; it is still {still}")  # outside the except: the poll limit is no cause
