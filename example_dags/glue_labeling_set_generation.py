"""Generate a FindMatches labeling set, wait for it, then import a file of labels.

The shortest teaching step: Glue writes a labeling set under ``output_s3_path``; the sensor
waits for the run; the import adds an already labeled file (``labels_s3_path``) to the
transform's labels; the export keeps a copy of every label the transform holds under
``backup_s3_path``. Trigger it with your own transform and paths as DAG params.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_glue_labeling.operators import (
    GlueMLExportLabelsOperator,
    GlueMLImportLabelsOperator,
    GlueMLLabelingSetGenerationOperator,
)
from airflow_provider_glue_labeling.sensors import GlueMLTaskRunSensor

with DAG(
    dag_id="glue_labeling_set_generation",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "transform_id": Param("tfm-0123456789abcdef", type="string", minLength=1),
        "output_s3_path": Param("s3://my-bucket/labeling/", type="string", pattern="^s3://"),
        "labels_s3_path": Param("s3://my-bucket/labels/labels.csv", type="string", pattern="^s3://"),
        "backup_s3_path": Param("s3://my-bucket/labels-backup/", type="string", pattern="^s3://"),
    },
    tags=["glue", "findmatches"],
) as dag:
    # [START howto_operator_glue_ml_labeling_set_generation]
    generate = GlueMLLabelingSetGenerationOperator(
        task_id="generate_labeling_set",
        transform_id="{{ params.transform_id }}",
        output_s3_path="{{ params.output_s3_path }}{{ ds }}/",
        wait_for_completion=False,
    )
    # [END howto_operator_glue_ml_labeling_set_generation]
    # [START howto_sensor_glue_ml_task_run]
    wait = GlueMLTaskRunSensor(
        task_id="wait_for_labeling_set",
        transform_id="{{ params.transform_id }}",
        task_run_id=generate.output,
        timeout=6 * 60 * 60,
    )
    # [END howto_sensor_glue_ml_task_run]
    import_labels = GlueMLImportLabelsOperator(
        task_id="import_labels",
        transform_id="{{ params.transform_id }}",
        input_s3_path="{{ params.labels_s3_path }}",
    )
    # [START howto_operator_glue_ml_export_labels]
    export_labels = GlueMLExportLabelsOperator(
        task_id="export_labels",
        transform_id="{{ params.transform_id }}",
        output_s3_path="{{ params.backup_s3_path }}{{ ds }}/",
    )
    # [END howto_operator_glue_ml_export_labels]
    generate >> wait >> import_labels >> export_labels
