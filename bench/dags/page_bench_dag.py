"""The labeling page benchmark's DAG: one labeling task that waits (deferred) for a given labeling set."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_glue_labeling.operators import GlueMLLabelingOperator

with DAG(
    "labeling_page_bench",
    schedule=None,
    params={"transform_id": "tfm-unset", "labeling_set": "s3://b/l/", "labels": "s3://b/labels.csv"},
):
    GlueMLLabelingOperator(
        task_id="label",
        transform_id="{{ params.transform_id }}",
        labeling_set_s3_path="{{ params.labeling_set }}",
        labels_s3_path="{{ params.labels }}",
        human_in_the_loop=False,  # the file wait: the page is the same either way
        deferrable=True,
        timeout=3600,
    )
