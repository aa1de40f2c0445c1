"""A user's first offline DAG: generate a labeling set, label it, import the labels, evaluate.

``dev/fresh_install.py`` copies this file into the dags folder of a fresh Airflow home, in a
virtualenv where nothing is pinned (``pip install apache-airflow ".[emulator]"``), and runs it as a
script: it makes up people with known duplicates, creates a FindMatches transform over them on the
emulator's server (``GLUE_ML_EMULATOR``, the ``aws_default`` connection points there too), plays
the people who label the set from the known truth, and runs the DAG with ``dag.test()``. Its last
line is a JSON object: the run's state, each task's state and the transform's metrics.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_glue_labeling.operators import (
    GlueMLEvaluationOperator,
    GlueMLImportLabelsOperator,
    GlueMLLabelingOperator,
    GlueMLLabelingSetGenerationOperator,
)
from airflow_provider_glue_labeling.quality.metrics import find_matches_metrics

TRANSFORM = "{{ params.transform_id }}"
LABELING_SET = "s3://{{ params.bucket }}/labeling-sets/first/"
LABELS = "s3://{{ params.bucket }}/labels/first/labels.csv"

with DAG(
    dag_id="first_findmatches_round",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"transform_id": "tfm-unset", "bucket": "first-round"},
) as dag:
    generate = GlueMLLabelingSetGenerationOperator(
        task_id="generate_labeling_set",
        transform_id=TRANSFORM,
        output_s3_path=LABELING_SET,
        deferrable=False,
        waiter_delay=1,
    )
    label = GlueMLLabelingOperator(
        task_id="label",
        transform_id=TRANSFORM,
        labeling_set_s3_path=LABELING_SET,
        labels_s3_path=LABELS,
        human_in_the_loop=False,  # the labels come as a file (the thread below), not from the page
        deferrable=False,
        poke_interval=1,
        timeout=300,
    )
    imported = GlueMLImportLabelsOperator(
        task_id="import_labels",
        transform_id=TRANSFORM,
        input_s3_path=LABELS,
        deferrable=False,
        waiter_delay=1,
    )
    evaluate = GlueMLEvaluationOperator(
        task_id="evaluate", transform_id=TRANSFORM, deferrable=False, waiter_delay=1
    )
    generate >> label >> imported >> evaluate


def people_label(s3: Any, bucket: str, truth: dict[str, str], stop: threading.Event) -> None:
    """Once the labeling set is there, label it from the truth and upload the labels file."""
    from airflow_provider_glue_labeling.emulator.seed import label_from_truth

    while not stop.wait(0.5):
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="labeling-sets/first/").get("Contents", [])
        if listed:
            labeling_set = s3.get_object(Bucket=bucket, Key=listed[0]["Key"])["Body"].read()
            labels = label_from_truth(labeling_set, truth, "id")
            s3.put_object(Bucket=bucket, Key="labels/first/labels.csv", Body=labels)
            return


def main() -> int:
    import boto3

    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people

    endpoint = os.environ["GLUE_ML_EMULATOR"]
    glue = boto3.client("glue", region_name="us-east-1", endpoint_url=endpoint)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    bucket = "first-round"
    source, truth = people(count=120)
    transform_id = create_findmatches_transform(glue, s3, bucket=bucket, source_csv=source, primary_key="id")
    stop = threading.Event()
    threading.Thread(target=people_label, args=(s3, bucket, truth, stop), daemon=True).start()
    try:
        dag_run = dag.test(run_conf={"transform_id": transform_id, "bucket": bucket})
    finally:
        stop.set()
    transform = glue.get_ml_transform(TransformId=transform_id)
    result = {
        "state": str(dag_run.state),
        "tasks": {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()},
        "label_count": transform.get("LabelCount"),
        "metrics": find_matches_metrics(transform),
    }
    print(json.dumps(result, default=str))
    return 0 if result["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
