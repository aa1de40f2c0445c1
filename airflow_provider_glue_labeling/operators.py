"""Operators that start Glue ML task runs: labeling sets, label import/export and evaluation.

Every operator shares one flow (:class:`GlueMLTaskRunOperator`): check the input, start the run
(or reconnect to the one an earlier try started), then defer to the triggerer, wait in the worker,
or return the TaskRunId at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, ResumableJobMixin

from airflow_provider_glue_labeling.exceptions import (
    ACTIVE_STATUSES,
    GlueMLError,
    GlueMLFinalError,
    GlueMLInputError,
    TaskRunStatus,
)
from airflow_provider_glue_labeling.history import (
    KEEP_LABELING,
    decide,
    make_round,
    read_rounds,
    record_round,
    table,
)
from airflow_provider_glue_labeling.hooks import (
    DEFAULT_TASK_RUN_TIMEOUT_SECONDS,
    GlueMLHook,
    connection_arguments,
    default_deferrable,
    summarize,
    task_run_from_event,
)
from airflow_provider_glue_labeling.links import GlueMLTransformLink
from airflow_provider_glue_labeling.validation import (
    check_bool,
    check_fraction,
    check_optional_s3_uri,
    check_positive,
    check_s3_uri,
    check_transform_id,
    hidden_file,
    labels_file_problems,
    unlabeled_sets_problem,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

ADOPTION_CLOCK_SKEW = timedelta(seconds=5)
# What the task keeps in its task-state store (Airflow 3.3+), besides its run id (``external_id_key``).
SUBMIT_MARK_KEY = "glue_ml_submit_started_at"  # when a try first started a run: the adoption window
DONE_KEY = "glue_ml_task_done"  # the run the task finished with: a later try comes from a Clear
BACKUP_KEY = "glue_ml_backup_task_run_id"  # the import's backup export
DECISION_KEY = "teaching_decision"  # XCom: an evaluation's plateau-rule decision and its reason
METRICS = (
    ("F1", "min_f1"),
    ("Precision", "min_precision"),
    ("Recall", "min_recall"),
    ("AreaUnderPRCurve", "min_area_under_pr_curve"),
)


class GlueMLTaskRunOperator(ResumableJobMixin, AwsBaseOperator[GlueMLHook]):
    """Base of the operators: start one Glue ML task run, then defer, wait or return its id.

    Subclasses set ``task_type`` and give the start call's parameters in :meth:`start_parameters`.

    :param transform_id: the Glue ML transform (FindMatches). (templated)
    :param wait_for_completion: wait until the run ends (default True); when False the
        TaskRunId is returned at once, e.g. for :class:`~.sensors.GlueMLTaskRunSensor`, even
        when ``deferrable`` is set.
    :param deferrable: do the wait in the triggerer instead of the worker (default: ``[operators]
        default_deferrable``, read when the task is created).
    :param waiter_delay: seconds between status polls.
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
    echo_key: ClassVar[str] = ""  # the group of a run's Properties that echoes its start (see echo)
    template_fields: Sequence[str] = aws_template_fields("transform_id")
    operator_extra_links = (GlueMLTransformLink(),)
    external_id_key = "glue_ml_task_run_id"
    ui_color = "#ede4ff"

    def __init__(
        self,
        *,
        transform_id: str,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        waiter_delay: int = 60,
        waiter_max_attempts: int | None = None,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transform_id = transform_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.cancel_on_kill = cancel_on_kill
        self.task_run_id: str | None = None

    # -- what subclasses change ---------------------------------------------------------------
    def validate(self) -> None:
        """Check the rendered parameters; raise :class:`GlueMLInputError` before any AWS call."""
        check_transform_id(self.transform_id)
        check_bool("wait_for_completion", self.wait_for_completion)
        check_bool("deferrable", self.deferrable)
        check_positive("waiter_delay", self.waiter_delay, float)
        if self.waiter_max_attempts is not None:
            check_positive("waiter_max_attempts", self.waiter_max_attempts)
        self.hook.require_region()

    @property
    def max_polls(self) -> int:
        """``waiter_max_attempts``, by default as many as 48 hours take: Glue's default run timeout."""
        if self.waiter_max_attempts is not None:
            return self.waiter_max_attempts
        return math.ceil(DEFAULT_TASK_RUN_TIMEOUT_SECONDS / self.waiter_delay)

    def start_parameters(self) -> dict[str, Any]:
        """The start call's parameters besides ``TransformId``, in AWS's spelling."""
        return {}

    def before_start(self, context: Context) -> None:
        """Work that must succeed before a new run is started (e.g. the import's backup export)."""

    def complete(self, run: dict[str, Any], context: Context) -> Any:
        """The task's result once its run SUCCEEDED (``run`` is a :func:`~.hooks.summarize` dict)."""
        return run["TaskRunId"]

    # -- the shared flow ------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self.validate()
        self._result: Any = None
        self._start_anew_if_cleared(context)
        return self.execute_resumable(context)

    def _store(self, context: Context) -> Any:
        """The task-state store (Airflow 3.3+), unless ``durable=False``; else None."""
        return context.get("task_state_store") if getattr(self, "durable", True) else None

    def _start_anew_if_cleared(self, context: Context) -> None:
        """Forget the runs of a try that finished: the task runs again because a user cleared it.

        The store outlives a Clear; only a finished task leaves :data:`DONE_KEY` in it. A try
        that died after starting or finishing its run leaves no such mark, and its retry
        reconnects to that run or reuses its result.
        """
        store = self._store(context)
        done = store.get(DONE_KEY) if store is not None else None
        if not isinstance(done, dict):
            return
        if done.get("max_tries") == _max_tries(context):
            # Airflow raises max_tries on a Clear, never on a retry: this try follows one that died
            # after the task had finished its work; it reuses that run's result.
            return
        self.log.info(
            "This task finished with Glue ML task run %s and was cleared since: starting anew",
            done.get("run"),
        )
        for key in (self.external_id_key, SUBMIT_MARK_KEY, DONE_KEY, BACKUP_KEY):
            store.delete(key)

    def _mark_done(self, context: Context, run_id: str) -> None:
        store = self._store(context)
        if store is not None:
            store.set(DONE_KEY, {"run": run_id, "max_tries": _max_tries(context)})

    def check_inputs(self, context: Context) -> None:
        """Checks of what the run will read (e.g. S3 files), before a run is adopted or started.

        :param context: the task's context.
        """

    def echo(self) -> dict[str, Any] | None:
        """What Glue echoes of this task's start call in a run's ``Properties``, under :attr:`echo_key`.

        It tells this task's runs from other tasks' runs on the same transform. None (an evaluation
        run echoes nothing): a run is never adopted, only reconnected to by its stored id.

        :return: the parameters as Glue echoes them, or None.
        """
        return None

    def submit_job(self, context: Context) -> str:
        self.check_inputs(context)
        adopted = self._find_own_run(context, self.task_type, self.echo_key, self.echo())
        if adopted:
            self.log.info("Adopting Glue ML task run %s, started by an earlier try of this task", adopted)
            self.task_run_id = adopted
            return adopted
        self._mark_start(context)
        self.before_start(context)
        self.task_run_id = self.hook.start_task_run(
            self.task_type, self.transform_id, **self.start_parameters()
        )
        store = self._store(context)
        if store is not None and store.get(BACKUP_KEY):
            store.delete(BACKUP_KEY)  # the labels may change from now on: a later start backs up anew
        self.log.info("Started Glue ML %s task run %s", self.task_type, self.task_run_id)
        return self.task_run_id

    def _mark_start(self, context: Context) -> None:
        """Record when this task first started a run: the adoption window of its later tries."""
        store = self._store(context)
        if store is not None and not store.get(SUBMIT_MARK_KEY):
            store.set(SUBMIT_MARK_KEY, datetime.now(UTC).isoformat())

    def _adoption_window(self, context: Context) -> datetime | None:
        """When this task's earlier tries may have started a run, or None when none can have.

        With a task-state store: the mark the first start left (no mark, nothing started).
        Without (Airflow < 3.3, where no earlier try's start is recorded): the DAG run's
        start, on a retry only.
        """
        store = self._store(context)
        if store is not None:
            mark = store.get(SUBMIT_MARK_KEY)
            return datetime.fromisoformat(str(mark)) if mark else None
        ti, dag_run = context.get("ti"), context.get("dag_run")
        return run_began(dag_run) if ti is not None and ti.try_number > 1 and dag_run is not None else None

    def _find_own_run(
        self, context: Context, task_type: str, echo_key: str, echo: dict[str, Any] | None
    ) -> str | None:
        """An active run that an earlier try of this task started but never recorded.

        That happens when a worker dies between the start call and ``task_state_store.set``,
        and on Airflow < 3.3, which has no store. Only a run of ``task_type`` started inside
        the window (:meth:`_adoption_window`) whose ``Properties[echo_key]`` equal ``echo`` is
        this task's own; each run looked at is logged with the reason it was or was not adopted.
        """
        since = self._adoption_window(context)
        if since is None or echo is None:
            return None
        active = self.hook.list_task_runs(
            self.transform_id,
            task_type=task_type,
            statuses=(TaskRunStatus.STARTING, TaskRunStatus.RUNNING),  # STOPPING: being cancelled
            started_after=since - ADOPTION_CLOCK_SKEW,
        )
        own = []
        for run in sorted(active, key=lambda r: r.get("StartedOn") or datetime.min.replace(tzinfo=UTC)):
            differs = differences((run.get("Properties") or {}).get(echo_key) or {}, echo)
            verdict = f"not this task's: {differs}" if differs else "this task's own"
            self.log.info(
                "Active %s run %s (started %s): %s",
                task_type,
                run["TaskRunId"],
                run.get("StartedOn"),
                verdict,
            )
            if not differs:
                own.append(run["TaskRunId"])
        if not active:
            self.log.info(
                "No active %s run of %s started since %s: nothing to adopt",
                task_type,
                self.transform_id,
                since.isoformat(),
            )
        return own[0] if own else None

    def get_job_status(self, external_id: Any, context: Context) -> str:
        return self.hook.get_task_run(self.transform_id, str(external_id))["Status"]

    def is_job_active(self, status: str) -> bool:
        """A run to reconnect to: STARTING or RUNNING. A STOPPING run was cancelled (e.g. by a
        user's kill): the next try starts a new one."""
        return status in (TaskRunStatus.STARTING, TaskRunStatus.RUNNING)

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
            self._mark_done(context, run_id)
            self._result = run_id
            return run_id
        run = self._wait(run_id, "execute_complete")
        self._result = self._finish(summarize(run), context)
        return self._result

    def _wait(self, run_id: str, method_name: str) -> dict[str, Any]:
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
        """:meth:`complete`, then record that the task is done (a later try comes from a Clear).

        A failure no retry can change (e.g. the quality gate) is an end too.
        """
        try:
            result = self.complete(run, context)
        except GlueMLFinalError:
            self._mark_done(context, run["TaskRunId"])
            raise
        self._mark_done(context, run["TaskRunId"])
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
        if self.cancel_on_kill and self.task_run_id:
            self.log.info("Cancelling Glue ML task run %s", self.task_run_id)
            try:
                self.hook.cancel_task_run(self.transform_id, self.task_run_id)
            except GlueMLError as error:
                self.log.warning("Could not cancel Glue ML task run %s: %s", self.task_run_id, error)


class _OutputPathOperator(GlueMLTaskRunOperator):
    """A task run that writes to ``output_s3_path`` (labeling-set generation and label export)."""

    template_fields: Sequence[str] = aws_template_fields("transform_id", "output_s3_path")

    def __init__(self, *, output_s3_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.output_s3_path = output_s3_path

    def validate(self) -> None:
        super().validate()
        check_s3_uri("output_s3_path", self.output_s3_path)

    def start_parameters(self) -> dict[str, Any]:
        return {"OutputS3Path": self.output_s3_path}

    def echo(self) -> dict[str, Any] | None:
        return {"OutputS3Path": self.output_s3_path}


class GlueMLLabelingSetGenerationOperator(_OutputPathOperator):
    """Generate a labeling set for a FindMatches transform (``StartMLLabelingSetGenerationTaskRun``).

    Glue writes about 100 records in about 10 sets, as CSV with the columns
    ``labeling_set_id,label`` and the source columns. Returns the TaskRunId (XCom
    ``return_value``) whether or not it waits.

    :param output_s3_path: ``s3://bucket/prefix`` where Glue writes the labeling set. (templated)
    """

    task_type = "LABELING_SET_GENERATION"
    echo_key = "LabelingSetGenerationTaskRunProperties"


class GlueMLExportLabelsOperator(_OutputPathOperator):
    """Export every label of a transform to S3 (``StartExportLabelsTaskRun``); returns the TaskRunId.

    :param output_s3_path: ``s3://bucket/prefix`` where Glue writes the labels. (templated)
    """

    task_type = "EXPORT_LABELS"
    echo_key = "ExportLabelsTaskRunProperties"


class GlueMLImportLabelsOperator(GlueMLTaskRunOperator):
    """Import labels into a transform (``StartImportLabelsTaskRun``); returns the TaskRunId.

    Before starting, the labels file (or every file under the prefix) is read from S3 and
    checked: it exists, is not empty, is at most 10 MB, is CSV starting with the columns
    ``labeling_set_id,label`` and has no row without a ``labeling_set_id``. With
    ``replace_all_labels=True`` the current labels are first exported to ``backup_s3_path``, and
    that export is waited for (deferred when deferrable) even with ``wait_for_completion=False``.

    :param input_s3_path: ``s3://bucket/key`` of the labels file, or a prefix of files. (templated)
    :param replace_all_labels: forget every earlier label (default False: add to them).
    :param backup_s3_path: where to export the current labels before a replace. (templated)
    :param allow_label_loss: allow ``replace_all_labels=True`` without a backup.
    """

    task_type = "IMPORT_LABELS"
    echo_key = "ImportLabelsTaskRunProperties"
    template_fields: Sequence[str] = aws_template_fields("transform_id", "input_s3_path", "backup_s3_path")

    def __init__(
        self,
        *,
        input_s3_path: str,
        replace_all_labels: bool = False,
        backup_s3_path: str | None = None,
        allow_label_loss: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_s3_path = input_s3_path
        self.replace_all_labels = replace_all_labels
        self.backup_s3_path = backup_s3_path
        self.allow_label_loss = allow_label_loss
        self._backed_up = False

    def validate(self) -> None:
        super().validate()
        check_s3_uri("input_s3_path", self.input_s3_path)
        check_bool("replace_all_labels", self.replace_all_labels)
        check_bool("allow_label_loss", self.allow_label_loss)
        if self.backup_s3_path is not None:
            check_s3_uri("backup_s3_path", self.backup_s3_path)
        elif self.replace_all_labels and not self.allow_label_loss:
            raise GlueMLInputError(
                "backup_s3_path",
                None,
                "replace_all_labels=True forgets every earlier label: give backup_s3_path='s3://...' to "
                "export them first, or allow_label_loss=True to replace them without a backup",
                explain_empty=False,
            )

    def start_parameters(self) -> dict[str, Any]:
        return {"InputS3Path": self.input_s3_path, "ReplaceAllLabels": self.replace_all_labels}

    def echo(self) -> dict[str, Any] | None:
        return {"InputS3Path": self.input_s3_path, "Replace": self.replace_all_labels}

    def check_inputs(self, context: Context) -> None:
        self._check_labels_files()

    def before_start(self, context: Context) -> None:
        if self.replace_all_labels and self.backup_s3_path:
            self._back_up_labels(context)

    def _back_up_labels(self, context: Context) -> None:
        """Export the current labels to ``backup_s3_path``; a transform with none has nothing to lose.

        The export is waited for like the import (deferred or in the worker). A later try
        reuses it: by its id in the task-state store, or (Airflow < 3.3) by adopting the
        active export that echoes ``backup_s3_path``.
        """
        if self._backed_up:  # resumed from the deferred wait for the backup
            return
        store = self._store(context)
        backup_id = store.get(BACKUP_KEY) if store is not None else None
        if backup_id:
            status = self.hook.get_task_run(self.transform_id, str(backup_id))["Status"]
            if status == TaskRunStatus.SUCCEEDED:
                self.log.info("Labels already backed up by export run %s", backup_id)
                return
            if status not in ACTIVE_STATUSES:
                backup_id = None  # it failed: back up again
        backup_id = backup_id or self._find_own_run(
            context, "EXPORT_LABELS", "ExportLabelsTaskRunProperties", {"OutputS3Path": self.backup_s3_path}
        )
        if backup_id:
            self.log.info("Reconnecting to the backup export run %s", backup_id)
        elif not self.hook.get_transform(self.transform_id).get("LabelCount"):
            # Glue refuses to export an empty label set ("No labelset exists for transformId").
            self.log.info(
                "Transform %s has no labels yet: no backup needed before replacing", self.transform_id
            )
            return
        else:
            self.log.info("Backing up the current labels to %s before replacing them", self.backup_s3_path)
            backup_id = self.hook.start_task_run(
                "EXPORT_LABELS", self.transform_id, OutputS3Path=self.backup_s3_path
            )
            if store is not None:
                store.set(BACKUP_KEY, backup_id)
        self.task_run_id = str(backup_id)  # on_kill cancels the export while it runs
        self._wait(self.task_run_id, "execute_after_backup")
        self.log.info("Labels backed up by export run %s", backup_id)

    def execute_after_backup(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Go on from the deferred wait for the backup export: start the import (and wait for it).

        :param context: the task's context.
        :param event: the trigger's event for the export run.
        """
        run = task_run_from_event(event)
        self.log.info("Labels backed up by export run %s", run["TaskRunId"])
        self._backed_up = True
        return self.execute(context)

    def _check_labels_files(self) -> None:
        """Read the labels file(s) and refuse what Glue would refuse, before any run starts.

        Glue reads the file with the transform's IAM role, not Airflow's: when Airflow may not
        read it (access denied), the check is skipped with a warning and Glue has the last word.
        """
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from botocore.exceptions import ClientError

        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)
        bucket, key = check_s3_uri("input_s3_path", self.input_s3_path)
        try:
            keys = files_at(s3, bucket, key)
            if not keys:
                raise GlueMLError(
                    f"Labels file s3://{bucket}/{key} not found (no object at or under that path)",
                    transform_id=self.transform_id,
                )
            schema = schema_columns(self.hook, self.transform_id)
            for name in keys:
                _, problem = read_labels_file(self.log, s3, bucket, name, schema)
                if problem:
                    raise GlueMLError(
                        f"Labels file s3://{bucket}/{name} {problem}", transform_id=self.transform_id
                    )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in ("AccessDenied", "403", "Forbidden"):
                raise
            self.log.warning(
                "Airflow may not read the labels file %s (%s); Glue reads it with the transform's IAM role, "
                "so the import starts unchecked",
                self.input_s3_path,
                code,
            )
            return
        self.log.info("Checked %d labels file(s) under %s", len(keys), self.input_s3_path)


class GlueMLEvaluationOperator(GlueMLTaskRunOperator):
    """Evaluate a transform (``StartMLEvaluationTaskRun``) and gate on its quality.

    After the run it reads ``EvaluationMetrics.FindMatchesMetrics`` from ``GetMLTransform`` and
    returns them as Glue gives them (``Precision``, ``Recall``, ``F1``, ``AreaUnderPRCurve``,
    ``ConfusionMatrix`` ...). With thresholds it logs each metric against its threshold and fails
    when one is below. When it does not wait, it returns the TaskRunId.

    :param min_f1: lowest acceptable F1 (0..1), or None. (templated)
    :param min_precision: lowest acceptable precision (0..1), or None. (templated)
    :param min_recall: lowest acceptable recall (0..1), or None. (templated)
    :param min_area_under_pr_curve: lowest acceptable area under the precision-recall curve,
        or None. (templated; use ``render_template_as_native_obj=True`` for numbers from params)
    :param history_s3_path: an S3 prefix where each evaluation records its round (time,
        ``LabelCount``, metrics, confusion matrix, DAG and run) as an object of its own, read
        back by :func:`~airflow_provider_glue_labeling.history.read_history`; the log shows the
        rounds as a table. (templated)
    :param min_gain: with it, the evaluation decides whether more labels are worth asking for
        instead of gating: "good enough" when every threshold is met, "plateau" when F1 rose by
        less than ``min_gain`` over the last ``over_rounds`` rounds, else "keep labeling". The
        decision and its reason go to the log and to XCom ``teaching_decision``; a threshold not
        met does not fail the task. A transform with no labels yet is not evaluated: keep
        labeling. Needs ``history_s3_path``.
    :param over_rounds: how many rounds back the plateau rule compares F1 with (default 2).
        (``min_gain`` and ``over_rounds`` are templated)
    """

    task_type = "EVALUATION"
    template_fields: Sequence[str] = aws_template_fields(
        "transform_id",
        "min_f1",
        "min_precision",
        "min_recall",
        "min_area_under_pr_curve",
        "history_s3_path",
        "min_gain",
        "over_rounds",
    )

    def __init__(
        self,
        *,
        min_f1: float | None = None,
        min_precision: float | None = None,
        min_recall: float | None = None,
        min_area_under_pr_curve: float | None = None,
        history_s3_path: str | None = None,
        min_gain: float | None = None,
        over_rounds: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_f1 = min_f1
        self.min_precision = min_precision
        self.min_recall = min_recall
        self.min_area_under_pr_curve = min_area_under_pr_curve
        self.history_s3_path = history_s3_path
        self.min_gain = min_gain
        self.over_rounds = over_rounds

    def validate(self) -> None:
        super().validate()
        for _, parameter in METRICS:
            setattr(self, parameter, check_fraction(parameter, getattr(self, parameter)))
        self.history_s3_path = check_optional_s3_uri("history_s3_path", self.history_s3_path)
        self.min_gain = check_fraction("min_gain", self.min_gain)
        if isinstance(self.over_rounds, str) and self.over_rounds.strip().isdigit():
            self.over_rounds = int(self.over_rounds)  # rendered as text by a template
        check_positive("over_rounds", self.over_rounds, int)
        if self.min_gain is not None and self.history_s3_path is None:
            raise GlueMLInputError(
                "history_s3_path",
                None,
                f"the plateau rule (min_gain={self.min_gain}) compares rounds: give an S3 prefix to keep them",
                explain_empty=False,
            )
        gates = [f"{p}={getattr(self, p)}" for _, p in METRICS if getattr(self, p) is not None]
        gates += [f"min_gain={self.min_gain}"] if self.min_gain is not None else []
        if self.history_s3_path is not None:
            gates.append(f"history_s3_path={self.history_s3_path}")
        if gates and not self.wait_for_completion:
            raise GlueMLInputError(
                "wait_for_completion",
                False,
                f"the quality gate ({', '.join(gates)}) needs the evaluation's result: keep "
                "wait_for_completion=True, or drop the thresholds to only start the run",
                explain_empty=False,
            )

    def complete(self, run: dict[str, Any], context: Context) -> Any:
        transform = self.hook.get_transform(self.transform_id)
        metrics = (transform.get("EvaluationMetrics") or {}).get("FindMatchesMetrics")
        if not metrics:
            raise GlueMLError(
                f"Evaluation run {run['TaskRunId']} of transform '{self.transform_id}' succeeded but "
                "GetMLTransform has no EvaluationMetrics.FindMatchesMetrics",
                transform_id=self.transform_id,
                task_run_id=run["TaskRunId"],
            )
        thresholds = {m: getattr(self, p) for m, p in METRICS}
        rows, failed = quality_gate(metrics, thresholds)
        self.log.info("Evaluation of %s (run %s):\n%s", self.transform_id, run["TaskRunId"], rows)
        if self.history_s3_path is not None:
            rounds = self._record_round(context, transform, run["TaskRunId"], self.history_s3_path)
            if self.min_gain is not None:
                self._decide(context, decide(rounds, self.min_gain, self.over_rounds, thresholds))
                return metrics
        if failed:
            raise GlueMLFinalError(
                f"Glue ML transform '{self.transform_id}' is below its quality gate: {', '.join(failed)}",
                transform_id=self.transform_id,
                task_run_id=run["TaskRunId"],
            )
        return metrics

    def execute(self, context: Context) -> Any:
        if self.min_gain is not None:
            self.validate()
            if not self.hook.get_transform(self.transform_id).get("LabelCount"):
                # Glue refuses to evaluate a transform with no labels (MLTransformNotReadyException).
                reason = f"transform {self.transform_id} has no labels yet: label a first round"
                self._decide(context, {"decision": KEEP_LABELING, "reason": reason})
                return None
        return super().execute(context)

    def _record_round(
        self, context: Context, transform: dict[str, Any], task_run_id: str, path: str
    ) -> list[dict[str, Any]]:
        """Record this evaluation as a round of the history at ``path``; log and return every round."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)
        ti = context["ti"]
        key = record_round(s3, path, make_round(transform, task_run_id, ti.dag_id, ti.run_id))
        rounds = read_rounds(s3, path, self.transform_id)
        self.log.info("Recorded round %d at %s; the rounds so far:\n%s", len(rounds), key, table(rounds))
        return rounds

    def _decide(self, context: Context, decision: dict[str, str]) -> None:
        self.log.info("Teaching decision: %s (%s)", decision["decision"], decision["reason"])
        context["ti"].xcom_push(key=DECISION_KEY, value=decision)


class GlueMLLabelingOperator(AwsBaseOperator[GlueMLHook]):
    """Wait for people to label a labeling set; return where the labels file landed, for the import.

    It sits between "labeling set ready" and :class:`GlueMLImportLabelsOperator`: it waits, for
    days if need be (deferred, no worker held), until a labels file is at ``labels_s3_path``,
    however it got there, then checks it with the import's labels-file rules and that it labels
    every set of the labeling set. Returns ``labels_s3_path`` (XCom ``return_value``).

    :param transform_id: the Glue ML transform. (templated)
    :param labeling_set_s3_path: the labeling set: the generation's ``output_s3_path`` or the
        sensor's ``S3Path`` (a prefix of files, or one file). (templated)
    :param labels_s3_path: ``s3://bucket/key`` where the labels file must land. (templated)
    :param history_s3_path: the evaluations' quality history (``GlueMLEvaluationOperator``'s
        ``history_s3_path``), if any: the labeling page charts it. (templated)
    :param deferrable: wait in the triggerer (default from ``[operators] default_deferrable``).
    :param poke_interval: seconds between looks for the labels file.
    :param timeout: seconds to wait for it (default 7 days); then ``AirflowSensorTimeout``.
    :param aws_conn_id: the Airflow AWS connection. (templated)
    :param region_name: the AWS region. (templated)
    :param verify: verify SSL certificates (or a CA bundle path). (templated)
    :param botocore_config: botocore client configuration, as a dict.
    """

    aws_hook_class = GlueMLHook
    template_fields: Sequence[str] = aws_template_fields(
        "transform_id", "labeling_set_s3_path", "labels_s3_path", "history_s3_path"
    )
    ui_color = "#ede4ff"

    def __init__(
        self,
        *,
        transform_id: str,
        labeling_set_s3_path: str,
        labels_s3_path: str,
        history_s3_path: str | None = None,
        deferrable: bool | None = None,
        poke_interval: float = 60,
        timeout: float = 7 * 24 * 3600,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transform_id = transform_id
        self.labeling_set_s3_path = labeling_set_s3_path
        self.labels_s3_path = labels_s3_path
        self.history_s3_path = history_s3_path
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poke_interval = poke_interval
        self.timeout = timeout

    def _validate(self) -> tuple[str, str]:
        check_transform_id(self.transform_id)
        check_s3_uri("labeling_set_s3_path", self.labeling_set_s3_path)
        self.history_s3_path = check_optional_s3_uri("history_s3_path", self.history_s3_path)
        check_bool("deferrable", self.deferrable)
        check_positive("poke_interval", self.poke_interval, float)
        check_positive("timeout", self.timeout, float)
        self.hook.require_region()
        bucket, key = check_s3_uri("labels_s3_path", self.labels_s3_path)
        if not key or key.endswith("/"):
            raise GlueMLInputError(
                "labels_s3_path", self.labels_s3_path, "expected the key of one file, s3://bucket/key"
            )
        return bucket, key

    def _s3(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)

    def execute(self, context: Context) -> str:
        bucket, key = self._validate()
        s3 = self._s3()
        if s3.check_for_key(key, bucket):
            return self._accept()
        self.log.info(
            "Waiting for the labels of the labeling set %s at %s",
            self.labeling_set_s3_path,
            self.labels_s3_path,
        )
        if self.deferrable:
            from airflow.providers.amazon.aws.triggers.s3 import S3KeyTrigger

            trigger = S3KeyTrigger(
                bucket_name=bucket,
                bucket_key=key,
                poke_interval=self.poke_interval,
                **connection_arguments(self),
            )
            self.defer(
                trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout)
            )
        deadline = time.monotonic() + self.timeout
        while not s3.check_for_key(key, bucket):
            if time.monotonic() >= deadline:
                raise AirflowSensorTimeout(f"No labels file at {self.labels_s3_path} after {self.timeout:g}s")
            time.sleep(self.poke_interval)
        return self._accept()

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        if not event or event.get("status") == "error":
            raise GlueMLError(f"Waiting for the labels file {self.labels_s3_path} failed: {event}")
        return self._accept()

    def _accept(self) -> str:
        """Check the labels file (the import's rules, and every set labeled); return its path."""
        s3 = self._s3()
        bucket, key = check_s3_uri("labels_s3_path", self.labels_s3_path)
        data, problem = read_labels_file(
            self.log, s3, bucket, key, schema_columns(self.hook, self.transform_id)
        )
        set_bucket, set_key = check_s3_uri("labeling_set_s3_path", self.labeling_set_s3_path)
        sets = read_files(s3, set_bucket, set_key)
        problem = problem or unlabeled_sets_problem(sets, data)
        if problem:
            raise GlueMLError(f"Labels file {self.labels_s3_path} {problem}", transform_id=self.transform_id)
        self.log.info(
            "Labels file %s labels the %d file(s) of %s",
            self.labels_s3_path,
            len(sets),
            self.labeling_set_s3_path,
        )
        return self.labels_s3_path


def schema_columns(hook: GlueMLHook, transform_id: str) -> list[str]:
    """The transform's source columns (``GetMLTransform`` ``Schema``; empty when it has none)."""
    return [c["Name"] for c in hook.get_transform(transform_id).get("Schema") or []]


def read_labels_file(log: Any, s3: Any, bucket: str, key: str, schema: list[str]) -> tuple[bytes, str | None]:
    """Read one labels file and check it by the labels-file rules; log the warnings.

    :return: the file's bytes, and what makes Glue refuse it (None when nothing does).
    """
    data = s3.get_key(key, bucket).get()["Body"].read()
    problem, warnings = labels_file_problems(data, schema)
    for warning in warnings:
        log.warning("Labels file s3://%s/%s: %s", bucket, key, warning)
    return data, problem


def read_files(s3: Any, bucket: str, key: str) -> list[bytes]:
    """The bytes of each file :func:`files_at` finds (through the hook's client, which threads share)."""
    return [s3.conn.get_object(Bucket=bucket, Key=k)["Body"].read() for k in files_at(s3, bucket, key)]


def files_at(s3: Any, bucket: str, key: str) -> list[str]:
    """The object at ``key``, or every object under it as a prefix but marker files."""
    if key and not key.endswith("/") and s3.check_for_key(key, bucket):
        return [key]
    prefix = key if not key or key.endswith("/") else key + "/"
    listed = s3.list_keys(bucket, prefix=prefix) or []
    return [k for k in listed if not k.endswith("/") and not hidden_file(k)]


def _max_tries(context: Context) -> int | None:
    return getattr(context.get("ti"), "max_tries", None)


def differences(echoed: dict[str, Any], wanted: dict[str, Any]) -> str:
    """How a run's echoed start parameters differ from this task's (``""`` when they do not).

    :param echoed: a run's ``Properties`` group that echoes its start call.
    :param wanted: this task's start parameters, as Glue echoes them.
    """

    def same(a: Any, b: Any) -> bool:
        return a.rstrip("/") == b.rstrip("/") if isinstance(a, str) and isinstance(b, str) else a == b

    return "; ".join(
        f"{key} {echoed.get(key)!r}, this task's {value!r}"
        for key, value in wanted.items()
        if not same(echoed.get(key), value)
    )


def run_began(dag_run: Any) -> datetime | None:
    """When the DAG run began: its start, or (Airflow 3.1/3.2 in ``dag.test()`` leave it unset) its run_after."""
    return dag_run.start_date or getattr(dag_run, "run_after", None)


def quality_gate(metrics: dict[str, Any], thresholds: dict[str, float | None]) -> tuple[str, list[str]]:
    """A text table of each metric against its threshold, and the failures (``"F1 0.61 < 0.80"``)."""
    lines = [f"{'metric':<18} {'value':>8} {'threshold':>10}  result"]
    failed = []
    for name, threshold in thresholds.items():
        value = metrics.get(name)
        if threshold is None:
            verdict = "-"
        elif value is None or value < threshold:
            verdict = "FAIL"
            failed.append(f"{name} {value} < {threshold}")
        else:
            verdict = "pass"
        shown = f"{value:.4f}" if isinstance(value, int | float) else str(value)
        limit = "-" if threshold is None else f"{threshold:.4f}"
        lines.append(f"{name:<18} {shown:>8} {limit:>10}  {verdict}")
    matrix = metrics.get("ConfusionMatrix") or {}
    if matrix:
        lines.append(
            "confusion matrix   " + " ".join(f"{k.removeprefix('Num')}={v}" for k, v in matrix.items())
        )
    return "\n".join(lines), failed
