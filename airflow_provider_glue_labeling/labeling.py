"""The labeling task: waits for people to label a labeling set, then checks their labels file.

:class:`GlueMLLabelingOperator` sits between "labeling set ready" and the import. The labeling
page (:mod:`~.ui`) finds it waiting by its rendered template fields.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowSensorTimeout

from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLInputError
from airflow_provider_glue_labeling.hooks import (
    GlueMLHook,
    connection_arguments,
    default_deferrable,
    default_poll_seconds,
)
from airflow_provider_glue_labeling.labels.files import S3Files, labels_file_problem, schema_columns
from airflow_provider_glue_labeling.validation import (
    check_bool,
    check_optional_s3_uri,
    check_positive,
    check_s3_uri,
    check_transform_id,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


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
    :param poke_interval: seconds between looks for the labels file (default: ``[glue_labeling]
        poll_seconds``, 60).
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
        poke_interval: float | None = None,
        timeout: float = 7 * 24 * 3600,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transform_id, self.history_s3_path = transform_id, history_s3_path
        self.labeling_set_s3_path, self.labels_s3_path = labeling_set_s3_path, labels_s3_path
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poke_interval = default_poll_seconds() if poke_interval is None else poke_interval
        self.timeout = timeout

    def _labels_file(self) -> tuple[str, str]:
        """``(bucket, key)`` of ``labels_s3_path``, which names one file."""
        bucket, key = check_s3_uri("labels_s3_path", self.labels_s3_path)
        if not key or key.endswith("/"):
            raise GlueMLInputError(
                "labels_s3_path", self.labels_s3_path, "expected the key of one file, s3://bucket/key"
            )
        return bucket, key

    def execute(self, context: Context) -> str:
        check_transform_id(self.transform_id)
        check_s3_uri("labeling_set_s3_path", self.labeling_set_s3_path)
        check_optional_s3_uri("history_s3_path", self.history_s3_path)
        check_bool("deferrable", self.deferrable)
        check_positive("poke_interval", self.poke_interval, float)
        check_positive("timeout", self.timeout, float)
        self.hook.require_region()
        bucket, key = self._labels_file()
        s3 = S3Files.of(self)
        if s3.exists(bucket, key):
            return self._accept(s3)
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
        while not s3.exists(bucket, key):
            if time.monotonic() >= deadline:
                raise AirflowSensorTimeout(f"No labels file at {self.labels_s3_path} after {self.timeout:g}s")
            time.sleep(self.poke_interval)
        return self._accept(s3)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        if not event or event.get("status") == "error":
            raise GlueMLError(f"Waiting for the labels file {self.labels_s3_path} failed: {event}")
        return self._accept(S3Files.of(self))

    def _accept(self, s3: S3Files) -> str:
        """Check the labels file (the import's rules, and every set labeled); return its path."""
        bucket, key = self._labels_file()
        sets = s3.read_files(self.labeling_set_s3_path, "labeling_set_s3_path")
        schema = schema_columns(self.hook, self.transform_id)
        problem = labels_file_problem(s3.read(bucket, key), schema, self.labels_s3_path, self.log, sets)
        if problem:
            raise GlueMLError(f"Labels file {self.labels_s3_path} {problem}", transform_id=self.transform_id)
        self.log.info(
            "Labels file %s labels the %d file(s) of %s",
            self.labels_s3_path,
            len(sets),
            self.labeling_set_s3_path,
        )
        return self.labels_s3_path
