"""Weekly FindMatches teaching: evaluate, and ask people for labels only while they help.

1. evaluate the transform and record the round, with its intervals, under
   ``s3://<bucket>/quality-history/<transform>/``; decide by the plateau rule: "good enough" when
   every threshold is met by the lower end of its interval (``require_lower_bound``), "plateau"
   when the evidence of the rounds says another round gains F1 less than ``min_gain`` (the
   learning curve and the trend of the last ``over_rounds`` + 1 rounds, once the evaluation has
   tested ``label_floor`` matching pairs), else keep labeling,
   saying why (a transform with no labels yet is not evaluated: keep labeling), and "budget
   spent" when it would keep labeling but the transform has ``max_labels`` labels (2,000 here);
2. when quality has plateaued or is good enough, or the budget is spent, ask nobody: the labeling
   steps are skipped and ``ask_for_labels`` logs why; otherwise
3. generate a labeling set under ``s3://<bucket>/labeling-sets/<run time>/`` and wait for it;
4. wait (deferred, for days if need be) for people to label it. On Airflow 3.1+ the task asks in
   Required Actions, and the labeling page (Airflow UI, "Labeling") writes
   ``s3://<bucket>/labels/<run time>/labels.csv`` and answers. A labels file put there any other
   way (a script, a spreadsheet upload) is taken only once someone answers "Labels uploaded" in
   Required Actions, or when it is there before the task starts. To let automation deliver the
   labels, give the labeling task ``human_in_the_loop=False``: it then watches that path and takes
   the file when it lands, as it always does on Airflow 2.11 and 3.0;
5. import the labels (checked before the run starts) and wait for the import. Next week's run
   evaluates them.

The evaluation and the import update the transform's asset ``glue-ml-transform://<transform id>/``
(the evaluation's event carries its metrics, decision and ``passed``), and each labels file is an
asset of its own: ``glue_findmatches_matching.py`` is scheduled on the transform's asset.

Transform, bucket, thresholds and the plateau rule are DAG params: trigger the DAG with your own.
Waits run in the triggerer when ``[operators] default_deferrable`` is true.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_glue_labeling.history import KEEP_LABELING
from airflow_provider_glue_labeling.operators import (
    DECISION_KEY,
    GlueMLEvaluationOperator,
    GlueMLImportLabelsOperator,
    GlueMLLabelingOperator,
    GlueMLLabelingSetGenerationOperator,
)
from airflow_provider_glue_labeling.sensors import GlueMLTaskRunSensor

LABELS_TIMEOUT = 6 * 24 * 60 * 60
TRANSFORM = "{{ params.transform_id }}"
# When the run was asked for: a run triggered without a logical date (Airflow 3) has none.
RUN_TIME = "{{ (dag_run.logical_date or dag_run.run_after) | ts_nodash }}"
LABELING_SET = "s3://{{ params.bucket }}/labeling-sets/" + RUN_TIME + "/"
LABELS = "s3://{{ params.bucket }}/labels/" + RUN_TIME + "/labels.csv"
HISTORY = "s3://{{ params.bucket }}/quality-history/{{ params.transform_id }}/"
threshold = Param(None, type=["null", "number"], minimum=0, maximum=1)

with DAG(
    dag_id="glue_findmatches_retraining",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "transform_id": Param("tfm-0123456789abcdef", type="string", minLength=1),
        "bucket": Param("my-findmatches-bucket", type="string", minLength=3),
        "min_f1": Param(0.9, type=["null", "number"], minimum=0, maximum=1),
        "min_precision": threshold,
        "min_recall": threshold,
        "min_area_under_pr_curve": threshold,
        "min_gain": Param(0.01, type="number", minimum=0, maximum=1),
        "over_rounds": Param(3, type="integer", minimum=1),
        "label_floor": Param(50, type="integer", minimum=0),
        "require_lower_bound": Param(True, type="boolean"),
        # The label budget: a weekly DAG never asks people forever (20 rounds of Glue's ~100 labels).
        "max_labels": Param(2000, type=["null", "integer"], minimum=1),
    },
    tags=["glue", "findmatches"],
    # Throttling and dropped connections are retried; bad input fails at once.
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
) as dag:
    # [START howto_operator_glue_ml_evaluation]
    evaluate = GlueMLEvaluationOperator(
        task_id="evaluate",
        transform_id=TRANSFORM,
        history_s3_path=HISTORY,
        min_gain="{{ params.min_gain }}",
        over_rounds="{{ params.over_rounds }}",
        label_floor="{{ params.label_floor }}",
        require_lower_bound="{{ params.require_lower_bound }}",
        max_labels="{{ params.max_labels }}",
        min_f1="{{ params.min_f1 }}",
        min_precision="{{ params.min_precision }}",
        min_recall="{{ params.min_recall }}",
        min_area_under_pr_curve="{{ params.min_area_under_pr_curve }}",
    )
    # [END howto_operator_glue_ml_evaluation]

    @task.branch(task_id="ask_for_labels")
    def ask_for_labels(**context: Any) -> str | None:
        """Ask people for labels while the evaluation says they help; otherwise skip the round."""
        decision = context["ti"].xcom_pull(task_ids="evaluate", key=DECISION_KEY)
        if decision["decision"] == KEEP_LABELING:
            print(f"Asking people for labels: {decision['reason']}")
            return "generate_labeling_set"
        print(f"Asking nobody for labels ({decision['decision']}): {decision['reason']}")
        return None

    generate = GlueMLLabelingSetGenerationOperator(
        task_id="generate_labeling_set",
        transform_id=TRANSFORM,
        output_s3_path=LABELING_SET,
        wait_for_completion=False,
    )
    labeling_set_ready = GlueMLTaskRunSensor(
        task_id="wait_for_labeling_set",
        transform_id=TRANSFORM,
        task_run_id=generate.output,
        timeout=6 * 60 * 60,
    )
    # [START howto_operator_glue_ml_labeling]
    labeled = GlueMLLabelingOperator(
        task_id="label",
        transform_id=TRANSFORM,
        labeling_set_s3_path=LABELING_SET,
        labels_s3_path=LABELS,
        history_s3_path=HISTORY,
        timeout=LABELS_TIMEOUT,
    )
    # [END howto_operator_glue_ml_labeling]
    # [START howto_operator_glue_ml_import_labels]
    import_labels = GlueMLImportLabelsOperator(
        task_id="import_labels",
        transform_id=TRANSFORM,
        input_s3_path=labeled.output,
    )
    # [END howto_operator_glue_ml_import_labels]
    evaluate >> ask_for_labels() >> generate >> labeling_set_ready >> labeled >> import_labels
