"""Find the matches after every round that taught the transform enough: the FindMatches ETL job.

Scheduled on the transform's asset, ``glue-ml-transform://<transform id>/``, which the retraining
DAG's evaluation and import update. The latest event decides:

1. ``transform_passed`` goes on only when that event is an evaluation that passed: every
   threshold met, or (with the plateau rule) "good enough" or "plateau", labels no longer help.
   After an import, or an evaluation that asks for more labels, the run ends here (skipped);
2. ``find_matches`` runs the Glue ETL job ``findmatches_job.py`` with the Amazon provider's
   ``GlueJobOperator``: it applies the transform to its source table and writes every record with
   its ``match_id`` and its group's ``match_confidence_score`` under
   ``s3://<bucket>/matches/<run time>/``;
3. ``count_matches`` reads what the job wrote: records, match groups, the largest group;
4. ``review_set`` turns the groups the transform is unsure of (``match_confidence_score`` between
   the params ``min_confidence`` and ``max_confidence``) into a review set, in Glue's labeling-set
   format, under ``s3://<bucket>/labeling-sets/review-<run time>/``; with fewer than
   ``min_groups_to_review`` such groups it asks nobody, and the review steps are skipped;
5. ``label_review_set`` asks people to label it, as any labeling set (Required Actions and the
   labeling page on Airflow 3.1+, the file at ``s3://<bucket>/labels/review-<run time>/labels.csv``
   on 2.11 and 3.0), and ``import_review_labels`` adds their labels to the transform's: the
   retraining DAG's next evaluation tests them. The import's event on the transform's asset runs
   this DAG again, which stops at ``transform_passed`` (the latest event is an import).

The transform, bucket and the job's IAM role come from the environment (an asset is named when
the DAG is parsed): ``GLUE_FINDMATCHES_TRANSFORM_ID``, ``GLUE_FINDMATCHES_BUCKET`` and
``GLUE_FINDMATCHES_JOB_ROLE_ARN``.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_glue_labeling.assets import PASSED, transform_asset
from airflow_provider_glue_labeling.hooks import default_poll_seconds
from airflow_provider_glue_labeling.operators import (
    GlueMLImportLabelsOperator,
    GlueMLLabelingOperator,
    GlueMLReviewSetOperator,
)

TRANSFORM_ID = os.environ.get("GLUE_FINDMATCHES_TRANSFORM_ID", "tfm-0123456789abcdef")
BUCKET = os.environ.get("GLUE_FINDMATCHES_BUCKET", "my-findmatches-bucket")
ROLE_ARN = os.environ.get("GLUE_FINDMATCHES_JOB_ROLE_ARN", "arn:aws:iam::123456789012:role/GlueFindMatches")
RUN_TIME = "{{ (dag_run.logical_date or dag_run.run_after) | ts_nodash }}"
MATCHES = f"s3://{BUCKET}/matches/{RUN_TIME}/"
REVIEW_SET = f"s3://{BUCKET}/labeling-sets/review-{RUN_TIME}/"
REVIEW_LABELS = f"s3://{BUCKET}/labels/review-{RUN_TIME}/labels.csv"
LABELS_TIMEOUT = 6 * 24 * 60 * 60
# [START howto_asset_glue_ml_transform]
TRANSFORM = transform_asset(TRANSFORM_ID)  # glue-ml-transform://tfm-.../
# [END howto_asset_glue_ml_transform]

# [START howto_asset_schedule_on_transform]
with DAG(
    dag_id="glue_findmatches_matching",
    schedule=[TRANSFORM],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["glue", "findmatches"],
    params={
        # The band of match confidence scores people review, and how many uncertain groups are
        # worth asking them about.
        "min_confidence": Param(0.4, type="number", minimum=0, maximum=1),
        "max_confidence": Param(0.8, type="number", minimum=0, maximum=1),
        "min_groups_to_review": Param(3, type="integer", minimum=1),
    },
    # The deferred job's wait between polls (Amazon provider 9.6+; older ones poll every
    # job_poll_interval): default_args reach only the operators that take them.
    default_args={"waiter_delay": max(1, round(default_poll_seconds()))},
) as dag:

    @task.short_circuit(inlets=[TRANSFORM])
    def transform_passed(**context: Any) -> bool:
        """Go on when the transform's latest event is an evaluation that passed."""
        events = context["inlet_events"][TRANSFORM]
        latest = dict(events[-1].extra) if len(events) else {}
        print(f"Latest event of {TRANSFORM.uri}: {latest}")
        return latest.get("task_run_type") == "EVALUATION" and latest.get(PASSED) is True

    # [END howto_asset_schedule_on_transform]

    # [START howto_operator_glue_findmatches_job]
    find_matches = GlueJobOperator(
        task_id="find_matches",
        job_name=f"findmatches-{TRANSFORM_ID}",
        script_location=str(Path(__file__).with_name("findmatches_job.py")),
        s3_bucket=BUCKET,  # the script is uploaded under s3://<bucket>/artifacts/glue-scripts/
        replace_script_file=True,
        update_config=True,
        iam_role_arn=ROLE_ARN,
        # FindMatches runs on Glue 2.0 only ("cannot import name 'FindMatches'" on any other);
        # G.1X workers exist on 2.0. AWS ended Glue 2.0's life on 2026-04-01: see docs/examples.md.
        create_job_kwargs={"GlueVersion": "2.0", "WorkerType": "G.1X", "NumberOfWorkers": 2},
        # Every record with its group's match_confidence_score (0-1): the groups to review.
        script_args={
            "--transform_id": TRANSFORM_ID,
            "--output_path": MATCHES,
            "--compute_match_confidence_scores": "true",
        },
        job_poll_interval=default_poll_seconds(),
    )
    # [END howto_operator_glue_findmatches_job]

    @task
    def count_matches(output_path: str) -> dict[str, Any]:
        """How many records the job wrote, in how many match groups."""
        bucket, prefix = S3Hook.parse_s3_url(output_path)
        hook = S3Hook()
        groups: dict[str, int] = {}
        for key in hook.list_keys(bucket, prefix=prefix) or []:
            for row in csv.DictReader(io.StringIO(hook.read_key(key, bucket))):
                groups[row["match_id"]] = groups.get(row["match_id"], 0) + 1
        summary = {
            "output_path": output_path,
            "records": sum(groups.values()),
            "match_groups": len(groups),
            "records_with_a_match": sum(n for n in groups.values() if n > 1),
            "largest_group": max(groups.values(), default=0),
        }
        print(f"Matches: {summary}")
        return summary

    # [START howto_operator_glue_ml_review_set]
    review_set = GlueMLReviewSetOperator(
        task_id="review_set",
        transform_id=TRANSFORM_ID,
        matches_s3_path=MATCHES,
        review_set_s3_path=REVIEW_SET,
        min_confidence="{{ params.min_confidence }}",
        max_confidence="{{ params.max_confidence }}",
        min_groups="{{ params.min_groups_to_review }}",
    )
    label_review_set = GlueMLLabelingOperator(
        task_id="label_review_set",
        transform_id=TRANSFORM_ID,
        labeling_set_s3_path=review_set.output,  # the review set's file
        labels_s3_path=REVIEW_LABELS,
        timeout=LABELS_TIMEOUT,
    )
    import_review_labels = GlueMLImportLabelsOperator(
        task_id="import_review_labels",
        transform_id=TRANSFORM_ID,
        input_s3_path=label_review_set.output,
    )
    # [END howto_operator_glue_ml_review_set]

    transform_passed() >> find_matches >> [count_matches(MATCHES), review_set]
    review_set >> label_review_set >> import_review_labels
