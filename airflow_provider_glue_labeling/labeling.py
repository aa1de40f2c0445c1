"""The labeling task: waits for people to label a labeling set, then checks their labels file.

:class:`GlueMLLabelingOperator` sits between "labeling set ready" and the import. On Airflow 3.1+
it is a human-in-the-loop task (:mod:`~.hitl`): listed in Required Actions, answered by the
labeling page's submit. The labeling page (:mod:`~.ui`) finds it waiting by its rendered template
fields.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.amazon.aws.sensors.base_aws import AwsBaseSensor
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_provider_glue_labeling import assets, hitl
from airflow_provider_glue_labeling.exceptions import NOTHING, GlueMLError, GlueMLFinalError, GlueMLInputError
from airflow_provider_glue_labeling.hooks import (
    AwsConnection,
    GlueMLHook,
    default_deferrable,
    default_poll_seconds,
)
from airflow_provider_glue_labeling.labels.agreement import AgreementError
from airflow_provider_glue_labeling.labels.files import (
    S3Files,
    beside,
    labels_file_problem,
    read_kept,
    schema_columns,
)
from airflow_provider_glue_labeling.labels.format import LabelingSet
from airflow_provider_glue_labeling.labels.team import Team
from airflow_provider_glue_labeling.lineage import GlueMLLineageMixin, Ref
from airflow_provider_glue_labeling.quality.rounds import record_agreement
from airflow_provider_glue_labeling.runs import lifecycle
from airflow_provider_glue_labeling.sensors import SensorDeadline
from airflow_provider_glue_labeling.validation import (
    check_bool,
    check_fraction,
    check_optional_s3_uri,
    check_positive,
    check_s3_uri,
    check_transform_id,
)
from airflow_provider_glue_labeling.versions import HAS_HITL

if TYPE_CHECKING:
    from airflow.sdk import Context


class GlueMLLabelingOperator(GlueMLLineageMixin, SensorDeadline, AwsBaseSensor[GlueMLHook]):
    """Wait for people to label a labeling set; return where the labels file landed, for the import.

    It sits between "labeling set ready" and :class:`GlueMLImportLabelsOperator`, waits for days
    if need be, then checks the labels file at ``labels_s3_path`` with the import's labels-file
    rules and that it labels every set of the labeling set. Returns ``labels_s3_path`` (XCom
    ``return_value``). A labels file already there when it starts is taken at once.

    On Airflow 3.1+ it is a human-in-the-loop task: it asks for the labels in the UI's Required
    Actions (a subject naming the transform, its sets and records; a body linking to the task's
    labeling page), tells the ``notifiers``, and waits holding nothing (``awaiting_input`` on 3.3+,
    deferred on 3.1 and 3.2) until the page's submit answers, or a person answers "Labels
    uploaded" once a labels file is in place some other way. On Airflow 2.11 and 3.0 (or with
    ``human_in_the_loop=False``) it watches ``labels_s3_path`` for the file: deferred, or in
    ``mode="poke"`` / ``"reschedule"`` as any sensor.

    Every way of waiting ends at ``timeout`` in ``AirflowSensorTimeout``, which is not retried
    (``soft_fail=True``: skipped). A Clear of a labeling task that took its labels means "label
    again": the labels file it took is kept aside, renamed ``_<name>.replaced-<UTC time>``, and
    the task waits anew.

    :param transform_id: the Glue ML transform. (templated)
    :param labeling_set_s3_path: the labeling set: the generation's ``output_s3_path`` or the
        sensor's ``S3Path`` (a prefix of files, or one file). (templated)
    :param labels_s3_path: ``s3://bucket/key`` where the labels file must land. (templated)
    :param history_s3_path: the evaluations' quality history (``GlueMLEvaluationOperator``'s
        ``history_s3_path``), if any: the labeling page charts it, and the labels' agreement is
        kept in it for the next evaluation's round. (templated)
    :param overlap: the share of the labeling set's sets labeled twice, blind, by two different
        people in the labeling page, from 0 (none, the default) to 1 (all): their agreement is
        measured and their disagreements settled (:mod:`~.labels.agreement`). (templated)
    :param min_agreement: the least Cohen's kappa (from -1 to 1) an overlapped set's two copies
        must reach unless an adjudicator settled the set: below it the page's submit is refused,
        and a labels file put in place another way is not taken (nothing is imported). None (the
        default): no gate. Needs ``overlap``. (templated)
    :param human_in_the_loop: ask in Required Actions (default: where Airflow has it, 3.1+).
    :param assigned_users: who may label and answer: user ids, or Airflow's ``HITLUser`` dicts
        (``{"id": ..., "name": ...}``); the labeling page refuses anyone else (403). Default:
        anyone who may edit the DAG's task instances. Airflow 3.1+.
    :param notifiers: Airflow notifiers told when the task asks for the labels (e.g. Slack,
        email). Airflow 3.1+, as ``assigned_users``.
    :param deferrable: watch for the file in the triggerer (default from ``[operators]
        default_deferrable``), when not a human-in-the-loop task.
    :param poke_interval: seconds between looks for the labels file (default: ``[glue_labeling]
        poll_seconds``, 60).
    :param timeout: seconds to wait (default 7 days; the request's ``response_timeout``).
    :param aws_conn_id: the Airflow AWS connection. (templated)
    :param region_name: the AWS region. (templated)
    :param verify: verify SSL certificates (or a CA bundle path). (templated)
    :param botocore_config: botocore client configuration, as a dict. (templated: the labeling
        page reads it from the task's rendered fields, to reach S3 and Glue as the task does)
    """

    aws_hook_class = GlueMLHook
    template_fields: Sequence[str] = aws_template_fields(
        "transform_id",
        "labeling_set_s3_path",
        "labels_s3_path",
        "history_s3_path",
        "overlap",
        "min_agreement",
        "botocore_config",
    )
    ui_color = "#ede4ff"

    def __init__(
        self,
        *,
        transform_id: str,
        labeling_set_s3_path: str,
        labels_s3_path: str,
        history_s3_path: str | None = None,
        overlap: float = 0.0,
        min_agreement: float | None = None,
        human_in_the_loop: bool | None = None,
        assigned_users: Any = None,
        notifiers: Any = None,
        deferrable: bool | None = None,
        poke_interval: float | None = None,
        timeout: float = 7 * 24 * 3600,
        **kwargs: Any,
    ) -> None:
        poke_interval = default_poll_seconds() if poke_interval is None else poke_interval
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.transform_id, self.history_s3_path = transform_id, history_s3_path
        self.overlap, self.min_agreement = overlap, min_agreement
        self.labeling_set_s3_path, self.labels_s3_path = labeling_set_s3_path, labels_s3_path
        self.human_in_the_loop = HAS_HITL if human_in_the_loop is None else human_in_the_loop
        self.assigned_users = assigned_users
        self.notifiers = (
            [] if notifiers is None else notifiers if isinstance(notifiers, list) else [notifiers]
        )
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        assets.add_labels_outlet(self)

    def lineage_inputs(self) -> list[Ref]:
        return [Ref("s3", self.labeling_set_s3_path)]

    def lineage_outputs(self) -> list[Ref]:
        return [Ref("s3", self.labels_s3_path)]

    def _labels_file(self) -> tuple[str, str]:
        """``(bucket, key)`` of ``labels_s3_path``, which names one file."""
        bucket, key = check_s3_uri("labels_s3_path", self.labels_s3_path)
        if not key or key.endswith("/"):
            raise GlueMLInputError(
                "labels_s3_path", self.labels_s3_path, "expected the key of one file, s3://bucket/key"
            )
        return bucket, key

    def _validate(self) -> list[dict[str, str]] | None:
        check_transform_id(self.transform_id)
        check_s3_uri("labeling_set_s3_path", self.labeling_set_s3_path)
        check_optional_s3_uri("history_s3_path", self.history_s3_path)
        self._agreement_settings()
        check_bool("deferrable", self.deferrable)
        check_bool("human_in_the_loop", self.human_in_the_loop)
        if self.human_in_the_loop and not HAS_HITL:
            raise GlueMLInputError(
                "human_in_the_loop", True, "human-in-the-loop tasks need Airflow 3.1+", explain_empty=False
            )
        check_positive("poke_interval", self.poke_interval, float)
        check_positive("timeout", self.timeout, float)
        self._labels_file()
        self.hook.require_region()
        assigned = hitl.users(self.assigned_users)
        for name, value in (("assigned_users", assigned), ("notifiers", self.notifiers)):
            if value and not self.human_in_the_loop:
                raise GlueMLInputError(
                    name,
                    getattr(self, name),
                    f"{name} belong to a human-in-the-loop task: human_in_the_loop=True (Airflow 3.1+)",
                )
        return assigned

    def _agreement_settings(self) -> tuple[float, float | None]:
        """``(overlap, min_agreement)``, checked (numbers rendered as text count as the numbers)."""
        overlap = check_fraction("overlap", self.overlap)
        if overlap is None:
            raise GlueMLInputError("overlap", self.overlap, "expected a number from 0 to 1 (0: no set twice)")
        min_agreement = check_fraction(
            "min_agreement", None if self.min_agreement in NOTHING else self.min_agreement, -1.0
        )
        if min_agreement is not None and not overlap:
            raise GlueMLInputError(
                "min_agreement",
                self.min_agreement,
                "a gate on the agreement of sets labeled twice: give an overlap above 0 (e.g. overlap=0.2)",
                explain_empty=False,
            )
        return overlap, min_agreement

    def execute(self, context: Context) -> Any:
        assigned = self._validate()
        s3 = AwsConnection.of(self).s3()
        self._label_again_if_cleared(s3, context)
        bucket, key = self._labels_file()
        if s3.exists(bucket, key):
            return self._accept(s3, context)
        labeling = LabelingSet.parse(s3.read_files(self.labeling_set_s3_path, "labeling_set_s3_path"))
        if not labeling.sets:
            raise GlueMLError(
                f"No labeling set at labeling_set_s3_path {self.labeling_set_s3_path}: nothing to label "
                "(expected the generation's output_s3_path, or the sensor's S3Path)",
                transform_id=self.transform_id,
            )
        self.log.info(
            "Waiting for the labels of the labeling set %s (%d sets, %d records) at %s",
            self.labeling_set_s3_path,
            len(labeling.sets),
            labeling.records(),
            self.labels_s3_path,
        )
        if self.human_in_the_loop:
            hitl.ask(
                self,
                context,
                subject=f"Label {labeling.records()} records in {len(labeling.sets)} sets for the Glue "
                f"FindMatches transform {self.transform_id}",
                body=self._request_body(context),
                assigned_users=assigned,
                notifiers=self.notifiers,
                timeout=self.timeout,
            )
        if self.deferrable:
            from airflow_provider_glue_labeling.triggers import GlueMLLabelsFileTrigger

            trigger = GlueMLLabelsFileTrigger(
                deadline=time.time() + self.timeout,
                bucket_name=bucket,
                bucket_key=key,
                poke_interval=self.poke_interval,
                **AwsConnection.of(self).arguments(),
            )
            self.defer(
                trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout)
            )
        return super().execute(context)

    def poke(self, context: Context) -> PokeReturnValue | bool:
        s3 = AwsConnection.of(self).s3()
        if not s3.exists(*self._labels_file()):
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._accept(s3, context))

    def waiting_for(self) -> str:
        return f"no labels file at {self.labels_s3_path}"

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """The wait's end: the file seen by the trigger, a person's answer, or the timeout."""
        event = event or {}
        if event.get("status") == "timeout" or event.get("error_type") == "timeout":
            self.timed_out()
        if "error" in event or event.get("status") == "error":
            raise GlueMLError(
                f"Waiting for the labels file {self.labels_s3_path} failed: "
                f"{event.get('error') or event.get('message') or event}"
            )
        s3 = AwsConnection.of(self).s3()
        answer = hitl.answer_in(event)
        if answer is not None:
            self.log.info("%s answered %s", answer.by, answer.chosen)
            if not s3.exists(*self._labels_file()):
                raise GlueMLError(
                    f"{answer.by} answered {hitl.LABELS_UPLOADED!r}, but there is no labels file at "
                    f"{self.labels_s3_path}: put it there, then clear this task to ask again",
                    transform_id=self.transform_id,
                )
        return self._accept(s3, context)

    def _request_body(self, context: Context) -> str:
        """The request's text (Markdown): what to label, and a link to the task's labeling page."""
        from airflow.configuration import conf

        from airflow_provider_glue_labeling.plugins import URL_PREFIX

        ti = context["ti"]
        ids = "/".join(quote(str(part), safe="") for part in (ti.dag_id, ti.run_id, ti.task_id, ti.map_index))
        page = f"{conf.get('api', 'base_url', fallback='').rstrip('/')}{URL_PREFIX}/tasks/{ids}"
        return (
            f"Label the labeling set `{self.labeling_set_s3_path}` on the [labeling page]({page}): "
            f"its **Submit** writes the labels file and answers this request.\n\n"
            f"Labels put in place another way (a spreadsheet upload) go to `{self.labels_s3_path}`; "
            f"then answer **{hitl.LABELS_UPLOADED}**. Either way they are checked as Glue's import "
            "checks them before the DAG goes on."
        )

    def _marker(self) -> tuple[str, str]:
        """Where the task notes which task instance took the labels file (hidden from Glue)."""
        bucket, key = self._labels_file()
        return bucket, beside(key, ".taken.json")

    @staticmethod
    def _identity(context: Context) -> dict[str, Any]:
        ti = context["ti"]
        return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index}

    def _label_again_if_cleared(self, s3: S3Files, context: Context) -> None:
        """A Clear after this task instance took the labels file: keep that file aside, wait anew.

        Told from a retry by the one rule of :func:`~.runs.lifecycle.cleared`: the marker records
        the ``max_tries`` the task had when it took the file. A retry (a try that failed after it
        took the file: its asset event, its XCom, a killed worker) takes the same file again.
        """
        bucket, marker = self._marker()
        found = s3.read_version(bucket, marker)
        taken = json.loads(found[0]) if found is not None else None
        if not isinstance(taken, dict) or taken.get("taken_by") != self._identity(context):
            return
        if not lifecycle.cleared(taken, lifecycle.max_tries_of(context)):
            self.log.info(
                "An earlier try of this task took %s (at %s): taking it again",
                self.labels_s3_path,
                taken.get("at"),
            )
            return
        _, key = self._labels_file()
        if s3.exists(bucket, key):
            aside = beside(key, datetime.now(UTC).strftime(".replaced-%Y%m%dT%H%M%SZ"))
            s3.move(bucket, key, aside)
            self.log.info(
                "This task took %s before it was cleared: labeling again (the old file is kept at s3://%s/%s)",
                self.labels_s3_path,
                bucket,
                aside,
            )
        s3.delete(bucket, marker)

    def _accept(self, s3: S3Files, context: Context) -> str:
        """Check the labels file (the import's rules, every set labeled, and with ``min_agreement``
        the agreement of the overlapped sets' copies); return its path."""
        bucket, key = self._labels_file()
        sets = s3.read_files(self.labeling_set_s3_path, "labeling_set_s3_path")
        schema = schema_columns(self.hook, self.transform_id)
        problem = labels_file_problem(s3.read(bucket, key), schema, self.labels_s3_path, self.log, sets)
        if problem:
            raise GlueMLError(f"Labels file {self.labels_s3_path} {problem}", transform_id=self.transform_id)
        agreement = self._agreement(s3, sets)
        self.log.info(
            "Labels file %s labels the %d file(s) of %s",
            self.labels_s3_path,
            len(sets),
            self.labeling_set_s3_path,
        )
        taken = {"taken_by": self._identity(context), "at": datetime.now(UTC).isoformat(timespec="seconds")}
        marker = {**taken, "max_tries": lifecycle.max_tries_of(context)}  # a later Clear raises it
        s3.write(*self._marker(), json.dumps(marker).encode())
        extra = {"transform_id": self.transform_id, **taken}
        assets.record_labels_event(self, context, {**extra, "agreement": agreement} if agreement else extra)
        return self.labels_s3_path

    def _agreement(self, s3: S3Files, sets: list[bytes]) -> dict[str, Any] | None:
        """With an ``overlap``: the agreement of the copies the labeling page kept beside the labels
        file (:meth:`~.labels.agreement.Team.summary`), logged, gated by ``min_agreement`` and
        kept in the quality history for the next evaluation. The page's submit passed the same
        gate; a labels file put in place another way meets it here.

        :raises GlueMLFinalError: a set below ``min_agreement`` that no adjudicator settled.
        """
        overlap, min_agreement = self._agreement_settings()
        if not overlap:
            return None
        bucket, key = self._labels_file()
        kept = read_kept(s3, bucket, key)
        team = Team.of(LabelingSet.parse(sets), overlap, kept["first"], kept["second"], kept["settled"])
        try:
            team.gate(min_agreement)
        except AgreementError as error:
            raise GlueMLFinalError(
                f"Labels file {self.labels_s3_path} not taken: {error}", transform_id=self.transform_id
            ) from None
        summary = team.summary()
        self.log.info(
            "Agreement of the %d overlapped set(s) labeled twice (%d compared): kappa %s, F1 %s; labelers %s",
            summary["overlapped_sets"],
            summary["compared_sets"],
            summary["kappa"],
            summary["f1"],
            summary["labelers"],
        )
        if self.history_s3_path:
            record_agreement(s3, self.history_s3_path, self.transform_id, self.labels_s3_path, summary)
        return summary
