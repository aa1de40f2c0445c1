"""Match each day's new records against the records matched before: FindIncrementalMatches.

A team that matches customer records every day wants a new record to join the group of the
customer it is, and every match id given before to stay as it was. The matching DAG
(``glue_findmatches_matching.py``) matches the whole source table again; this DAG matches only
the day's new records, once a day, one run at a time:

1. ``latest_matches`` finds the newest matches under ``s3://<bucket>/matches/``: of the prefixes
   the matching DAG's runs and this DAG's runs write there (one a run), the one whose files were
   written last. It checks the day before the run's new records, the files under
   ``s3://<bucket>/incoming/<day>/``, before any Glue call: no new records skip the run; columns
   that differ from the matched records' (``match_id`` and ``match_confidence_score`` aside) fail
   it, naming both, as Glue's job would fail. It empties the run's own output prefix, so that a
   cleared run starts clean;
2. ``find_incremental_matches`` runs the Glue ETL job ``findincrementalmatches_job.py`` on Glue
   2.0 (the only version with incremental matching) with the Amazon provider's
   ``GlueJobOperator``: the records matched before keep their ``match_id``, a new record joins
   the group it matches or starts its own, each group with its confidence score, all written
   under ``s3://<bucket>/matches/<run time>/``, the next day's matches before;
3. ``new_records_matched`` counts the new records that joined a group and those that started one.

A run of the matching DAG re-matches the source table as it is then, with ids of its own: the
chain starts again from it (add the new records to the source table before that run). Clear a
run from ``latest_matches``, and only the newest: a day matched again against later matches
would be matched twice. Files whose names start with ``_`` or ``.`` (Spark's ``_SUCCESS``,
``.crc``) are skipped, as Spark skips them.

The transform, bucket and the job's IAM role come from the environment, as for the matching DAG:
``GLUE_FINDMATCHES_TRANSFORM_ID``, ``GLUE_FINDMATCHES_BUCKET`` and ``GLUE_FINDMATCHES_JOB_ROLE_ARN``.
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
from airflow.providers.common.compat.sdk import DAG, AirflowFailException, AirflowSkipException, task

from airflow_provider_glue_labeling.hooks import GlueMLHook, default_poll_seconds
from airflow_provider_glue_labeling.labels.files import hidden_file

TRANSFORM_ID = os.environ.get("GLUE_FINDMATCHES_TRANSFORM_ID", "tfm-0123456789abcdef")
BUCKET = os.environ.get("GLUE_FINDMATCHES_BUCKET", "my-findmatches-bucket")
ROLE_ARN = os.environ.get("GLUE_FINDMATCHES_JOB_ROLE_ARN", "arn:aws:iam::123456789012:role/GlueFindMatches")
RUN_TIME = "{{ (dag_run.logical_date or dag_run.run_after) | ts_nodash }}"
MATCHES = f"s3://{BUCKET}/matches/" + RUN_TIME + "/"
# The day before the run's interval ends: a daily run at midnight takes the day just over (on
# Airflow 2 a daily run's interval is the day before it runs; on Airflow 3, by default, the
# interval ends at the run's time).
INCOMING = f"s3://{BUCKET}/incoming/" + "{{ (data_interval_end - macros.timedelta(days=1)) | ds }}/"
# The columns a FindMatches job adds to the records it matches.
ADDED = ("match_id", "match_confidence_score")


def _data_files(hook: S3Hook, path: str) -> list[tuple[str, str]]:
    """The (bucket, key) of each data file under the S3 prefix ``path``: Glue writes them with no
    extension (``run-<ms>-part-r-<n>``) beside markers such as ``_SUCCESS``, which are skipped."""
    bucket, prefix = S3Hook.parse_s3_url(path)
    keys = hook.list_keys(bucket, prefix=prefix) or []
    return [(bucket, key) for key in keys if not key.endswith("/") and not hidden_file(key)]


def _rows(hook: S3Hook, path: str) -> list[dict[str, str]]:
    """The records of every data file under ``path`` (CSV with a header)."""
    return [
        row
        for bucket, key in _data_files(hook, path)
        for row in csv.DictReader(io.StringIO(hook.read_key(key, bucket).removeprefix("\ufeff")))
    ]


def _columns(hook: S3Hook, path: str) -> set[str]:
    """The columns of the records under ``path``, without the columns matching adds."""
    for bucket, key in _data_files(hook, path):
        header = next(csv.reader(io.StringIO(hook.read_key(key, bucket).removeprefix("\ufeff"))), [])
        if header:
            return set(header) - set(ADDED)
    return set()


with DAG(
    dag_id="glue_findmatches_incremental",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # each day's matches are the next day's matches before
    tags=["glue", "findmatches"],
    default_args={"waiter_delay": max(1, round(default_poll_seconds()))},
) as dag:

    @task
    def latest_matches(incoming: str, output: str) -> str:
        """The newest matches before this run's; the day's new records checked against them."""
        hook = S3Hook()
        if not _data_files(hook, incoming):
            raise AirflowSkipException(f"No new records under {incoming}: nothing to match today")
        out_bucket, out_prefix = S3Hook.parse_s3_url(output)
        done = [key for _, key in _data_files(hook, output)]
        if done:  # a cleared run: Glue adds files to a prefix, it does not replace them
            print(f"Emptying {output} of an earlier try's {len(done)} file(s)")
            hook.delete_objects(out_bucket, done)
        written: dict[str, Any] = {}  # each run's prefix under matches/: when its files were written
        for found in hook.get_file_metadata("matches/", BUCKET):
            prefix = found["Key"].rsplit("/", 1)[0] + "/"
            if prefix != out_prefix and not hidden_file(found["Key"]) and not found["Key"].endswith("/"):
                written[prefix] = max(written.get(prefix, found["LastModified"]), found["LastModified"])
        if not written:
            raise AirflowFailException(
                f"No matches under s3://{BUCKET}/matches/ to match new records against: run "
                "glue_findmatches_matching first"
            )
        existing = f"s3://{BUCKET}/{max(written, key=written.__getitem__)}"
        have, new = _columns(hook, existing), _columns(hook, incoming)
        if have != new:
            raise AirflowFailException(
                f"The new records under {incoming} have the columns {sorted(new)}; the matches under "
                f"{existing} have {sorted(have)}: FindIncrementalMatches needs the same columns in both"
            )
        print(f"Matching the new records under {incoming} against the matches under {existing}")
        return existing

    existing = latest_matches(INCOMING, MATCHES)

    # [START howto_operator_glue_findincrementalmatches_job]
    find_incremental_matches = GlueJobOperator(
        task_id="find_incremental_matches",
        job_name=f"findincrementalmatches-{TRANSFORM_ID}",
        script_location=str(Path(__file__).with_name("findincrementalmatches_job.py")),
        s3_bucket=BUCKET,  # the script is uploaded under s3://<bucket>/artifacts/glue-scripts/
        replace_script_file=True,
        update_config=True,
        iam_role_arn=ROLE_ARN,
        # Incremental matching runs on Glue 2.0 only; AWS ended Glue 2.0's life on 2026-04-01:
        # see docs/examples.md, "Glue versions".
        create_job_kwargs={"GlueVersion": "2.0", "WorkerType": "G.1X", "NumberOfWorkers": 2},
        script_args={
            "--transform_id": TRANSFORM_ID,
            "--existing_path": existing,
            "--incremental_path": INCOMING,
            "--output_path": MATCHES,
            "--compute_match_confidence_scores": "true",
        },
        job_poll_interval=default_poll_seconds(),
    )
    # [END howto_operator_glue_findincrementalmatches_job]

    @task
    def new_records_matched(existing: str, incoming: str, output: str) -> dict[str, Any]:
        """How many new records joined a group matched before, and how many started one."""
        hook = S3Hook()
        known = {row["match_id"] for row in _rows(hook, existing)}
        parameters = GlueMLHook().get_transform(TRANSFORM_ID)["Parameters"]["FindMatchesParameters"]
        key = parameters["PrimaryKeyColumnName"]
        new = {row[key] for row in _rows(hook, incoming)}
        placed = [row for row in _rows(hook, output) if row[key] in new]
        summary = {
            "output_path": output,
            "new_records": len(placed),
            "joined_a_group": sum(row["match_id"] in known for row in placed),
            "started_a_group": sum(row["match_id"] not in known for row in placed),
        }
        print(f"New records matched: {summary}")
        return summary

    existing >> find_incremental_matches >> new_records_matched(existing, INCOMING, MATCHES)
