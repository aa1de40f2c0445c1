"""DAGs the tests run with dag.test(): every wait mode of the operators and the sensor."""

from __future__ import annotations

import json
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_glue_labeling.operators import GlueMLLabelingSetGenerationOperator
from airflow_provider_glue_labeling.sensors import GlueMLTaskRunSensor

PARAMS = {"transform_id": "tfm-unset", "output_s3_path": "s3://bucket/out/", "result_file": "/dev/null"}
TEMPLATED = {"transform_id": "{{ params.transform_id }}"}


@task
def record(result_file: str, **values: object) -> None:
    """Write what reached this downstream task through XCom, for the test to read."""
    Path(result_file).write_text(json.dumps(values, default=str))


DAGS: dict[str, DAG] = {}
for mode in ("poke", "deferrable"):
    # generate (no wait) -> sensor -> downstream: the TaskRunId travels through XCom.
    with DAG(f"generate_then_sensor_{mode}", schedule=None, params=PARAMS) as dag:
        generate = GlueMLLabelingSetGenerationOperator(
            task_id="generate",
            output_s3_path="{{ params.output_s3_path }}",
            wait_for_completion=False,
            **TEMPLATED,
        )
        wait = GlueMLTaskRunSensor(
            task_id="wait",
            task_run_id=generate.output,
            deferrable=mode == "deferrable",
            poke_interval=0.3,
            timeout=60,
            **TEMPLATED,
        )
        (
            generate
            >> wait
            >> record("{{ params.result_file }}", task_run_id=generate.output, summary=wait.output)
        )
    DAGS[dag.dag_id] = dag

    # the operator waits itself, in the worker or in the triggerer.
    with DAG(f"generate_and_wait_{mode}", schedule=None, params=PARAMS) as dag:
        generate = GlueMLLabelingSetGenerationOperator(
            task_id="generate",
            output_s3_path="{{ params.output_s3_path }}",
            deferrable=mode == "deferrable",
            waiter_delay=0.3,
            waiter_max_attempts=100,
            **TEMPLATED,
        )
        generate >> record("{{ params.result_file }}", task_run_id=generate.output)
    DAGS[dag.dag_id] = dag
