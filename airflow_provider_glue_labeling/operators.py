"""Operators that start Glue ML task runs (labeling sets, label import and export, evaluation), and
the labeling task that waits for people's labels (:mod:`~.labeling`) and the review set built from a
matching job's output (:mod:`~.review`), both importable from here.

Every run operator shares one flow (:class:`~.runs.flow.GlueMLTaskRunOperator`): check the
input, start the run (or reconnect to the one an earlier try started), then defer to the
triggerer, wait in the worker, or return the TaskRunId at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from airflow_provider_glue_labeling.evaluation import DECISION_KEY, GlueMLEvaluationOperator
from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLInputError
from airflow_provider_glue_labeling.glue.polling import task_run_from_event
from airflow_provider_glue_labeling.glue.statuses import TaskType
from airflow_provider_glue_labeling.hooks import AwsConnection
from airflow_provider_glue_labeling.labeling import GlueMLLabelingOperator
from airflow_provider_glue_labeling.labels.files import labels_file_problem, schema_columns
from airflow_provider_glue_labeling.lineage import Ref
from airflow_provider_glue_labeling.review import GlueMLReviewSetOperator
from airflow_provider_glue_labeling.runs import lifecycle
from airflow_provider_glue_labeling.runs.flow import GlueMLTaskRunOperator
from airflow_provider_glue_labeling.validation import (
    check_bool,
    check_s3_uri,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "DECISION_KEY",
    "GlueMLEvaluationOperator",
    "GlueMLExportLabelsOperator",
    "GlueMLImportLabelsOperator",
    "GlueMLLabelingOperator",
    "GlueMLLabelingSetGenerationOperator",
    "GlueMLReviewSetOperator",
    "GlueMLTaskRunOperator",
]


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

    def echoed_start(self) -> dict[str, Any] | None:
        return {"OutputS3Path": self.output_s3_path}

    def lineage_outputs(self) -> list[Ref]:
        return [Ref("s3", self.output_s3_path)]


class GlueMLLabelingSetGenerationOperator(_OutputPathOperator):
    """Generate a labeling set for a FindMatches transform (``StartMLLabelingSetGenerationTaskRun``).

    Glue writes about 100 records in about 10 sets, as CSV with the columns
    ``labeling_set_id,label`` and the source columns. Returns the TaskRunId (XCom
    ``return_value``) whether or not it waits.

    :param output_s3_path: ``s3://bucket/prefix`` where Glue writes the labeling set. (templated)
    """

    task_type = TaskType.LABELING_SET_GENERATION

    def lineage_inputs(self) -> list[Ref]:
        return [Ref("tables")]


class GlueMLExportLabelsOperator(_OutputPathOperator):
    """Export every label of a transform to S3 (``StartExportLabelsTaskRun``); returns the TaskRunId.

    :param output_s3_path: ``s3://bucket/prefix`` where Glue writes the labels. (templated)
    """

    task_type = TaskType.EXPORT_LABELS

    def lineage_inputs(self) -> list[Ref]:
        return [Ref("transform")]


class GlueMLImportLabelsOperator(GlueMLTaskRunOperator):
    """Import labels into a transform (``StartImportLabelsTaskRun``); returns the TaskRunId.

    Before starting, the labels file (or every file under the prefix) is read from S3 and
    checked: it exists, is not empty, is at most 10 MB, is CSV starting with the columns
    ``labeling_set_id,label`` and has no row without a ``labeling_set_id``. With
    ``replace_all_labels=True`` the current labels are first exported to ``backup_s3_path``, and
    that export is waited for (deferred when deferrable) even with ``wait_for_completion=False``.
    When it waits for its run, its success is an event of the transform's asset (:mod:`~.assets`).

    :param input_s3_path: ``s3://bucket/key`` of the labels file, or a prefix of files. (templated)
    :param replace_all_labels: forget every earlier label (default False: add to them).
    :param backup_s3_path: where to export the current labels before a replace. (templated)
    :param allow_label_loss: allow ``replace_all_labels=True`` without a backup.
    """

    task_type = TaskType.IMPORT_LABELS
    updates_transform = True
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
        self.input_s3_path, self.backup_s3_path = input_s3_path, backup_s3_path
        self.replace_all_labels, self.allow_label_loss = replace_all_labels, allow_label_loss
        self.backup_run_id: str | None = None

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

    def echoed_start(self) -> dict[str, Any] | None:
        return {"InputS3Path": self.input_s3_path, "Replace": self.replace_all_labels}

    def event_facts(self, run: dict[str, Any]) -> dict[str, Any]:
        return {"input_s3_path": self.input_s3_path, "replace_all_labels": self.replace_all_labels}

    def lineage_inputs(self) -> list[Ref]:
        return [Ref("s3", self.input_s3_path)]

    def lineage_outputs(self) -> list[Ref]:
        return [Ref("transform")]

    def check_inputs(self, context: Context) -> None:
        """Read the labels file(s) and refuse what Glue would refuse, before any run starts.

        Glue reads the file with the transform's IAM role, not Airflow's: when Airflow may not
        read it (access denied), the check is skipped with a warning and Glue has the last word.
        """
        s3 = AwsConnection.of(self).s3()
        bucket, key = check_s3_uri("input_s3_path", self.input_s3_path)
        try:
            keys = s3.files_at(bucket, key)
            if not keys:
                raise GlueMLError(
                    f"Labels file s3://{bucket}/{key} not found (no object at or under that path)",
                    transform_id=self.transform_id,
                )
            schema = schema_columns(self.hook, self.transform_id)
            for name in keys:
                where = f"s3://{bucket}/{name}"
                problem = labels_file_problem(s3.read(bucket, name), schema, where, self.log)
                if problem:
                    raise GlueMLError(f"Labels file {where} {problem}", transform_id=self.transform_id)
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

    def before_start(self, context: Context) -> None:
        """With ``replace_all_labels``, back the current labels up first (see :meth:`back_up_labels`)."""
        if self.replace_all_labels and self.backup_s3_path:
            self.back_up_labels(context)

    def back_up_labels(self, context: Context) -> None:
        """Export the current labels to ``backup_s3_path``; a transform with none has nothing to lose.

        The export is waited for like the import (deferred or in the worker). A later try
        reuses it: by its id in the task-state store, or (Airflow < 3.3) by adopting the
        active export that echoes ``backup_s3_path``.
        """
        known = self.backup_run_id or (self.ledger.backup_run_id if self.ledger else None)
        status = self.hook.get_task_run(self.transform_id, known)["Status"] if known else None
        step = lifecycle.backup_step(status)
        if step is lifecycle.BackupStep.REUSE:
            self.log.info("Labels already backed up by export run %s", known)
            return
        backup_id = known if step is lifecycle.BackupStep.WAIT else None
        backup_id = backup_id or self.find_own_run(
            context, TaskType.EXPORT_LABELS, {"OutputS3Path": self.backup_s3_path}
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
                TaskType.EXPORT_LABELS, self.transform_id, OutputS3Path=self.backup_s3_path
            )
            store = self._store(context)
            if store is not None:
                store.set(lifecycle.BACKUP_KEY, backup_id)
        self.backup_run_id = backup_id
        self.wait(backup_id, "execute_after_backup")
        self.log.info("Labels backed up by export run %s", backup_id)

    def after_start(self, context: Context) -> None:
        """The labels may change from now on: a later start backs up anew."""
        store = self._store(context)
        if store is not None and (self.backup_run_id or (self.ledger and self.ledger.backup_run_id)):
            store.delete(lifecycle.BACKUP_KEY)

    def execute_after_backup(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Go on from the deferred wait for the backup export: start the import (and wait for it).

        :param context: the task's context.
        :param event: the trigger's event for the export run.
        """
        self.backup_run_id = task_run_from_event(event)["TaskRunId"]
        self.log.info("Labels backed up by export run %s", self.backup_run_id)
        return self.run_task(context)

    def running_run_id(self) -> str | None:
        """The import, or before it starts the backup export."""
        return self.task_run_id or self.backup_run_id
