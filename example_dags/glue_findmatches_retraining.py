"""Weekly FindMatches retraining: a labeling set for people to label, then import and a quality gate.

1. generate a labeling set under ``s3://<bucket>/labeling-sets/<date>/``;
2. wait for the run;
3. wait (deferred, for days if need be) for people to label it: on Airflow 3.1+ in the labeling
   page (Airflow UI, "Labeling"), which writes ``s3://<bucket>/labels/<date>/labels.csv``; a labels
   file put there any other way does as well;
4. import the labels (checked before the run starts) and wait for the import;
5. evaluate the transform and fail when a metric is below its threshold.

Transform, bucket and thresholds are DAG params: trigger the DAG with your own. Waits run in
the triggerer when ``[operators] default_deferrable`` is true.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_glue_labeling.operators import (
    GlueMLEvaluationOperator,
    GlueMLImportLabelsOperator,
    GlueMLLabelingOperator,
    GlueMLLabelingSetGenerationOperator,
)
from airflow_provider_glue_labeling.sensors import GlueMLTaskRunSensor

# Seconds between status checks; labelers take days, Glue runs take minutes.
POLL_SECONDS = float(os.environ.get("GLUE_LABELING_POLL_SECONDS", "60"))
LABELS_TIMEOUT = 6 * 24 * 60 * 60
TRANSFORM = "{{ params.transform_id }}"
# The run's date; a run triggered without a logical date (Airflow 3) goes by when it was asked for.
RUN_DATE = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
LABELING_SET = "s3://{{ params.bucket }}/labeling-sets/" + RUN_DATE + "/"
LABELS = "s3://{{ params.bucket }}/labels/" + RUN_DATE + "/labels.csv"
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
        "min_f1": Param(0.8, type=["null", "number"], minimum=0, maximum=1),
        "min_precision": threshold,
        "min_recall": threshold,
        "min_area_under_pr_curve": threshold,
    },
    tags=["glue", "findmatches"],
    # Throttling and dropped connections are retried; a failed gate or bad input fails at once.
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
) as dag:
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
        poke_interval=POLL_SECONDS,
        timeout=6 * 60 * 60,
    )
    labeled = GlueMLLabelingOperator(
        task_id="label",
        transform_id=TRANSFORM,
        labeling_set_s3_path=LABELING_SET,
        labels_s3_path=LABELS,
        poke_interval=POLL_SECONDS,
        timeout=LABELS_TIMEOUT,
    )
    import_labels = GlueMLImportLabelsOperator(
        task_id="import_labels",
        transform_id=TRANSFORM,
        input_s3_path=labeled.output,
        wait_for_completion=False,
    )
    labels_imported = GlueMLTaskRunSensor(
        task_id="wait_for_import",
        transform_id=TRANSFORM,
        task_run_id=import_labels.output,
        poke_interval=POLL_SECONDS,
        timeout=6 * 60 * 60,
    )
    evaluate = GlueMLEvaluationOperator(
        task_id="evaluate",
        transform_id=TRANSFORM,
        min_f1="{{ params.min_f1 }}",
        min_precision="{{ params.min_precision }}",
        min_recall="{{ params.min_recall }}",
        min_area_under_pr_curve="{{ params.min_area_under_pr_curve }}",
        waiter_delay=POLL_SECONDS,
    )
    generate >> labeling_set_ready >> labeled >> import_labels >> labels_imported >> evaluate
