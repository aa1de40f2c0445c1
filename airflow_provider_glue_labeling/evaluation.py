"""The evaluation operator: evaluate a transform, gate on its quality, and decide whether more labels help.

Importable from :mod:`~.operators` as every operator is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_provider_glue_labeling import assets
from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLFinalError, GlueMLInputError
from airflow_provider_glue_labeling.glue.statuses import TaskType
from airflow_provider_glue_labeling.hooks import AwsConnection
from airflow_provider_glue_labeling.lineage import Ref
from airflow_provider_glue_labeling.quality import decision
from airflow_provider_glue_labeling.quality.metrics import METRICS, find_matches_metrics
from airflow_provider_glue_labeling.quality.rounds import (
    AGREEMENT_FACTS,
    make_round,
    newest_agreement,
    read_rounds,
    record_round,
    table,
)
from airflow_provider_glue_labeling.runs.flow import GlueMLTaskRunOperator
from airflow_provider_glue_labeling.validation import (
    check_bool,
    check_count,
    check_fraction,
    check_optional_s3_uri,
    check_positive,
    check_s3_uri,
    rendered_flag,
    rendered_int,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

DECISION_KEY = "teaching_decision"  # XCom: an evaluation's plateau-rule decision and its reason


class GlueMLEvaluationOperator(GlueMLTaskRunOperator):
    """Evaluate a transform (``StartMLEvaluationTaskRun``) and gate on its quality.

    After the run it reads ``EvaluationMetrics.FindMatchesMetrics`` from ``GetMLTransform`` and
    returns them as Glue gives them (``Precision``, ``Recall``, ``F1``, ``AreaUnderPRCurve``,
    ``ConfusionMatrix`` ...). With thresholds it logs each metric against its threshold and fails
    when one is below. When it does not wait, it returns the TaskRunId. When it waits, its success
    is an event of the transform's asset (:mod:`~.assets`) carrying the metrics and the decision.

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
        instead of gating (:func:`~airflow_provider_glue_labeling.history.decide`): "good
        enough", "plateau" when the evidence of the rounds says another round gains F1 less than
        ``min_gain``, else "keep labeling", saying why. The decision, its reason and numbers go
        to the log and to XCom ``teaching_decision``; a threshold not met does not fail the task.
        A transform with no labels yet is not evaluated. Needs ``history_s3_path``.
    :param over_rounds: the recent trend of F1 is fitted over this many rounds before the last,
        and the last (default 3: four rounds; at least three are used).
    :param label_floor: no plateau before the evaluation tested at least this many matching and
        this many non-matching pairs (default 50, chosen on the stopping benchmark; dedupe asks
        for 10, Zingg for 30-40 matches).
    :param require_lower_bound: meet ``min_f1``, ``min_precision`` and ``min_recall`` with the
        lower end of the metric's 95 % interval (default True); False holds them to the
        estimate, which runs high with a few hundred labels.
    :param max_labels: the label budget of the plateau rule: once the transform has this many
        labels and the rule would still keep labeling, the decision is "budget spent", a stop
        (default None: no budget). Needs ``min_gain``.
    :param max_rounds: likewise, once this many rounds have added labels (default None). (These
        six are templated; text renders read as numbers and ``True``/``False``, ``None`` as None)
    """

    task_type = TaskType.EVALUATION
    updates_transform = True
    template_fields: Sequence[str] = aws_template_fields(
        "transform_id",
        "min_f1",
        "min_precision",
        "min_recall",
        "min_area_under_pr_curve",
        "history_s3_path",
        "min_gain",
        "over_rounds",
        "label_floor",
        "require_lower_bound",
        "max_labels",
        "max_rounds",
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
        over_rounds: int = 3,
        label_floor: int = decision.LABEL_FLOOR,
        require_lower_bound: bool = True,
        max_labels: int | None = None,
        max_rounds: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_f1, self.min_precision, self.min_recall = min_f1, min_precision, min_recall
        self.min_area_under_pr_curve = min_area_under_pr_curve
        self.history_s3_path, self.min_gain, self.over_rounds = history_s3_path, min_gain, over_rounds
        self.label_floor, self.require_lower_bound = label_floor, require_lower_bound
        self.max_labels, self.max_rounds = max_labels, max_rounds
        self._verdict: dict[str, Any] = {}
        self._history_object: str | None = None

    def lineage_inputs(self) -> list[Ref]:
        return [Ref("transform")]

    def lineage_outputs(self) -> list[Ref]:
        """The round recorded in the history (its prefix before the run ends), if one is kept."""
        recorded = self._history_object or self.history_s3_path
        return [Ref("s3", recorded)] if isinstance(recorded, str) and recorded.startswith("s3://") else []

    def lineage_metrics(self) -> dict[str, Any] | None:
        return self._verdict.get("metrics")

    def gate(self) -> decision.Gate:
        """The rendered quality gate and plateau rule, checked, text renders read as values."""
        return decision.Gate(
            thresholds={metric: check_fraction(p, getattr(self, p)) for metric, p in METRICS},
            history_s3_path=check_optional_s3_uri("history_s3_path", self.history_s3_path),
            min_gain=check_fraction("min_gain", self.min_gain),
            over_rounds=int(check_positive("over_rounds", rendered_int(self.over_rounds), int)),
            label_floor=int(check_count("label_floor", rendered_int(self.label_floor))),
            require_lower_bound=check_bool("require_lower_bound", rendered_flag(self.require_lower_bound)),
            max_labels=_budget("max_labels", self.max_labels),
            max_rounds=_budget("max_rounds", self.max_rounds),
        )

    def validate(self) -> None:
        super().validate()
        gate = self.gate()
        thresholds, history, min_gain = gate[:3]
        for name in ("max_labels", "max_rounds"):
            if min_gain is None and getattr(gate, name) is not None:
                raise GlueMLInputError(
                    name,
                    getattr(gate, name),
                    "a label budget belongs to the plateau rule's decision: give min_gain too",
                    explain_empty=False,
                )
        if min_gain is not None and history is None:
            raise GlueMLInputError(
                "history_s3_path",
                None,
                f"the plateau rule (min_gain={min_gain}) compares rounds: give an S3 prefix to keep them",
                explain_empty=False,
            )
        gates = [f"{p}={thresholds[m]}" for m, p in METRICS if thresholds[m] is not None]
        gates += [f"min_gain={min_gain}"] if min_gain is not None else []
        gates += [f"history_s3_path={history}"] if history is not None else []
        if gates and not self.wait_for_completion:
            raise GlueMLInputError(
                "wait_for_completion",
                False,
                f"the quality gate ({', '.join(gates)}) needs the evaluation's result: keep "
                "wait_for_completion=True, or drop the thresholds to only start the run",
                explain_empty=False,
            )

    def run_task(self, context: Context) -> Any:
        if self.gate().min_gain is not None and not self.hook.get_transform(self.transform_id).get(
            "LabelCount"
        ):
            # Glue refuses to evaluate a transform with no labels (MLTransformNotReadyException).
            reason = f"transform {self.transform_id} has no labels yet: label a first round"
            self._push_decision(context, {"decision": decision.KEEP_LABELING, "reason": reason})
            extra = assets.event_extra(self.transform_id, None, self.task_type, **self.event_facts({}))
            assets.record_event(self, context, extra)
            return None
        return super().run_task(context)

    def result(self, run: dict[str, Any], context: Context) -> Any:
        transform = self.hook.get_transform(self.transform_id)
        metrics = find_matches_metrics(transform)
        if not metrics:
            raise GlueMLError(
                f"Evaluation run {run['TaskRunId']} of transform '{self.transform_id}' succeeded but "
                "GetMLTransform has no EvaluationMetrics.FindMatchesMetrics",
                transform_id=self.transform_id,
                task_run_id=run["TaskRunId"],
            )
        gate = self.gate()
        rows, failed = decision.quality_gate(metrics, gate.thresholds, gate.require_lower_bound)
        self._verdict = {"metrics": metrics, "label_count": transform.get("LabelCount"), "failed": failed}
        self.log.info("Evaluation of %s (run %s):\n%s", self.transform_id, run["TaskRunId"], rows)
        if gate.history_s3_path is not None:
            rounds = self._record_round(context, transform, run["TaskRunId"], gate.history_s3_path)
            if gate.min_gain is not None:
                decided = decision.decide(
                    rounds,
                    gate.min_gain,
                    gate.over_rounds,
                    gate.thresholds,
                    label_floor=gate.label_floor,
                    require_lower_bound=gate.require_lower_bound,
                    max_labels=gate.max_labels,
                    max_rounds=gate.max_rounds,
                )
                self._push_decision(context, decided)
                self._record_decision(rounds, run["TaskRunId"], gate.history_s3_path, decided)
                return metrics
        if failed:
            raise GlueMLFinalError(
                f"Glue ML transform '{self.transform_id}' is below its quality gate: {', '.join(failed)}",
                transform_id=self.transform_id,
                task_run_id=run["TaskRunId"],
            )
        return metrics

    def _record_round(
        self, context: Context, transform: dict[str, Any], task_run_id: str, path: str
    ) -> list[dict[str, Any]]:
        """Record this evaluation as a round of the history at ``path``; log and return every round."""
        s3, ti = AwsConnection.of(self).s3(), context["ti"]
        this = make_round(transform, task_run_id, ti.dag_id, ti.run_id)
        earlier = [r for r in read_rounds(s3, path, self.transform_id) if r.get("task_run_id") != task_run_id]
        agreement = newest_agreement(s3, path, self.transform_id, earlier[-1]["time"] if earlier else None)
        if agreement is not None:  # what the labels this round added agreed on (the labeling task's)
            this["agreement"] = {k: agreement.get(k) for k in AGREEMENT_FACTS}
            self._verdict = {**self._verdict, "agreement": this["agreement"]}
        key = record_round(s3, path, this)
        self._history_object = f"s3://{check_s3_uri('history_s3_path', path)[0]}/{key}"
        rounds = read_rounds(s3, path, self.transform_id)
        self.log.info("Recorded round %d at %s; the rounds so far:\n%s", len(rounds), key, table(rounds))
        return rounds

    def _record_decision(
        self, rounds: list[dict[str, Any]], task_run_id: str, path: str, decided: dict[str, Any]
    ) -> None:
        """Add the decision and its reason to this evaluation's round of the history."""
        for this in rounds:
            if this.get("task_run_id") == task_run_id:
                this.update(decision=decided["decision"], reason=decided["reason"])
                record_round(AwsConnection.of(self).s3(), path, this)

    def _push_decision(self, context: Context, decided: dict[str, Any]) -> None:
        self.log.info("Teaching decision: %s (%s)", decided["decision"], decided["reason"])
        context["ti"].xcom_push(key=DECISION_KEY, value=decided)
        self._verdict = {**self._verdict, "decision": decided["decision"], "reason": decided["reason"]}

    def event_facts(self, run: dict[str, Any]) -> dict[str, Any]:
        """The metrics, the label count, the thresholds failed and the decision; ``passed`` when every
        threshold is met or, with the plateau rule, when labels no longer help ("good enough",
        "plateau")."""
        verdict = self._verdict
        # A spent budget stops the asking, but it says nothing of the transform's quality.
        done = verdict.get("decision") in (decision.GOOD_ENOUGH, decision.PLATEAU)
        return {**verdict, assets.PASSED: done or ("decision" not in verdict and not verdict.get("failed"))}


def _budget(parameter: str, value: Any) -> int | None:
    """A label budget: a positive whole number (a template's text read as one), or None."""
    value = None if value in (None, "None", "") else rendered_int(value)
    return None if value is None else int(check_positive(parameter, value, int))
