"""The FindMatches and FindIncrementalMatches ETL jobs on the emulator, through real boto3 clients:
the example job scripts, Glue 2.0 only, match confidence scores, incremental matching."""

from __future__ import annotations

import csv
import io
import time

import pytest
from moto import mock_aws

from airflow_provider_glue_labeling.emulator.seed import (
    create_findmatches_transform,
    people,
)
from tests.helpers import ROOT, client, csv_of, teach_from_truth

BUCKET = "matching"
SCRIPTS = {
    "FindMatches": ROOT / "example_dags" / "findmatches_job.py",
    "FindIncrementalMatches": ROOT / "example_dags" / "findincrementalmatches_job.py",
}
IMPORT_ERROR = "cannot import name '{}' from 'awsglueml.transforms'"
HELD_BACK = 60  # records of the people kept out of the transform's source: the incremental frame


def read_output(s3, prefix: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        rows.extend(
            csv.DictReader(io.StringIO(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode()))
        )
    return rows


@pytest.fixture
def taught():
    """(glue, s3, transform id, truth, new records): a transform over made-up people but the last
    ``HELD_BACK``, taught with one labeling set labeled from the truth."""
    with mock_aws():
        glue, s3 = client("glue"), client("s3")
        source, truth = people(200)
        reader = csv.DictReader(io.StringIO(source.decode()))
        rows, columns = list(reader), list(reader.fieldnames or [])
        transform_id = create_findmatches_transform(
            glue, s3, bucket=BUCKET, source_csv=csv_of(rows[:-HELD_BACK], columns), primary_key="id"
        )
        teach_from_truth(glue, s3, transform_id, truth, BUCKET)
        for name, script in SCRIPTS.items():
            s3.put_object(Bucket=BUCKET, Key=f"scripts/{name}.py", Body=script.read_bytes())
        yield glue, s3, transform_id, truth, (rows[-HELD_BACK:], columns)


def run_job(glue, transform: str, arguments: dict[str, str], glue_version: str | None = "2.0") -> dict:
    """Create a job running the example script of ``transform`` and wait for its run to end."""
    name = f"{transform}-{glue_version}-{time.monotonic_ns()}"
    version = {"GlueVersion": glue_version} if glue_version else {}
    glue.create_job(
        Name=name,
        Role="arn:aws:iam::123456789012:role/GlueFindMatches",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/scripts/{transform}.py"},
        **version,
    )
    run_id = glue.start_job_run(JobName=name, Arguments=arguments)["JobRunId"]
    deadline = time.monotonic() + 10
    while (run := glue.get_job_run(JobName=name, RunId=run_id)["JobRun"])["JobRunState"] not in (
        "SUCCEEDED",
        "FAILED",
    ):
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    return run


def find_matches(glue, s3, transform_id: str, prefix: str, **arguments: str) -> list[dict[str, str]]:
    run = run_job(
        glue,
        "FindMatches",
        {"--transform_id": transform_id, "--output_path": f"s3://{BUCKET}/{prefix}/", **arguments},
    )
    assert run["JobRunState"] == "SUCCEEDED", run
    return read_output(s3, f"{prefix}/")


def groups(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_id.setdefault(row["match_id"], []).append(row)
    return by_id


@pytest.mark.parametrize("transform", ["FindMatches", "FindIncrementalMatches"])
@pytest.mark.parametrize("glue_version", ["4.0", "5.1", None], ids=["4.0", "5.1", "default"])
def test_a_findmatches_job_not_on_glue_2_0_fails_to_import_the_transform(taught, transform, glue_version):
    glue, s3, transform_id, _, _ = taught
    arguments = {
        "--transform_id": transform_id,
        "--existing_path": f"s3://{BUCKET}/existing/",
        "--incremental_path": f"s3://{BUCKET}/incremental/",
        "--output_path": f"s3://{BUCKET}/out/",
    }
    run = run_job(glue, transform, arguments, glue_version)
    assert run["JobRunState"] == "FAILED"
    assert IMPORT_ERROR.format(transform) in run["ErrorMessage"]
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")


def test_a_findmatches_job_on_glue_2_0_writes_every_record_with_its_match_id(taught):
    glue, s3, transform_id, truth, _ = taught
    rows = find_matches(glue, s3, transform_id, "out")
    assert len(rows) == len(truth) - HELD_BACK
    assert "match_confidence_score" not in rows[0], "only when asked"
    assert len(rows) > len(groups(rows)), "duplicates found"


@pytest.mark.parametrize("value", ["false", "no"])
def test_no_scores_unless_the_job_asks_for_them(taught, value):
    glue, s3, transform_id, _, _ = taught
    rows = find_matches(glue, s3, transform_id, "out", **{"--compute_match_confidence_scores": value})
    assert "match_confidence_score" not in rows[0]


def test_match_confidence_scores_one_per_group_and_higher_for_right_groups(taught):
    glue, s3, transform_id, truth, _ = taught
    rows = find_matches(glue, s3, transform_id, "scored", **{"--compute_match_confidence_scores": "true"})
    assert rows == find_matches(
        glue, s3, transform_id, "again", **{"--compute_match_confidence_scores": "True"}
    )
    right, wrong = [], []
    for members in groups(rows).values():
        scores = {float(row["match_confidence_score"]) for row in members}
        assert len(scores) == 1, "every record of a group carries the group's score"
        score = scores.pop()
        assert 0 <= score <= 1
        entities = {truth[row["id"]] for row in members}
        # A group is right when it holds one entity, all of it (a record alone: no duplicate left out).
        complete = all(truth[row["id"]] not in entities for row in rows if row not in members)
        (right if len(entities) == 1 and complete else wrong).append(score)
    assert right and wrong
    assert sum(right) / len(right) > sum(wrong) / len(wrong) + 0.1, (right, wrong)


def test_incremental_matching_keeps_existing_ids_and_new_records_join_or_start_groups(taught):
    glue, s3, transform_id, truth, (new_rows, columns) = taught
    existing = find_matches(glue, s3, transform_id, "existing")
    s3.put_object(Bucket=BUCKET, Key="incremental/new.csv", Body=csv_of(new_rows, columns))
    run = run_job(
        glue,
        "FindIncrementalMatches",
        {
            "--transform_id": transform_id,
            "--existing_path": f"s3://{BUCKET}/existing/",
            "--incremental_path": f"s3://{BUCKET}/incremental/",
            "--output_path": f"s3://{BUCKET}/merged/",
            "--compute_match_confidence_scores": "true",
        },
    )
    assert run["JobRunState"] == "SUCCEEDED", run
    merged = read_output(s3, "merged/")
    assert [row["id"] for row in merged] == [row["id"] for row in existing + new_rows]
    assert [row["match_id"] for row in merged[: len(existing)]] == [row["match_id"] for row in existing]
    existing_ids = {row["match_id"] for row in existing}
    new = merged[len(existing) :]
    joined = [row for row in new if row["match_id"] in existing_ids]
    started = [row for row in new if row["match_id"] not in existing_ids]
    assert joined and started
    # A new record joins a group of its own entity: one whose existing records are of that entity.
    entity_of_group = {row["match_id"]: truth[row["id"]] for row in existing}
    right = sum(entity_of_group[row["match_id"]] == truth[row["id"]] for row in joined)
    assert right >= 0.8 * len(joined), (right, len(joined))
    # Existing groups stay apart: no group gains a second existing group's records.
    assert len({row["match_id"] for row in merged[: len(existing)]}) == len(existing_ids)
    for members in groups(merged).values():
        assert len({row["match_confidence_score"] for row in members}) == 1
        assert 0 <= float(members[0]["match_confidence_score"]) <= 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda row: {k: v for k, v in row.items() if k != "email"},
            "missing: email; not in the existing frame: none",
        ),
        (
            lambda row: {("mail" if k == "email" else k): v for k, v in row.items()},
            "missing: email; not in the existing frame: mail",
        ),
        (lambda row: {**row, "match_id": "7"}, "missing: none; not in the existing frame: match_id"),
    ],
    ids=["a column missing", "a column renamed", "a match_id"],
)
def test_an_incremental_frame_with_other_columns_fails_the_run(taught, change, message):
    glue, s3, transform_id, _, (new_rows, _) = taught
    find_matches(glue, s3, transform_id, "existing")
    changed = [change(row) for row in new_rows]
    s3.put_object(Bucket=BUCKET, Key="incremental/new.csv", Body=csv_of(changed, list(changed[0])))
    arguments = {
        "--transform_id": transform_id,
        "--existing_path": f"s3://{BUCKET}/existing/",
        "--incremental_path": f"s3://{BUCKET}/incremental/new.csv",
        "--output_path": f"s3://{BUCKET}/merged/",
    }
    run = run_job(glue, "FindIncrementalMatches", arguments)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == (
        f"The incremental frame s3://{BUCKET}/incremental/new.csv does not have the existing frame's "
        f"columns ({message}): FindIncrementalMatches needs both frames in the transform's schema"
    )
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="merged/")


@pytest.mark.parametrize(
    ("match_ids", "message"),
    [
        (None, "has no match_id column"),
        (["3"] * 29 + [""], "has a record without a match_id (record 30 of 30)"),
    ],
    ids=["no match_id column", "a record without one"],
)
def test_an_existing_frame_without_match_ids_fails_the_run(taught, match_ids, message):
    glue, s3, transform_id, _, (new_rows, columns) = taught
    old, old_columns = new_rows[:30], columns
    if match_ids is not None:
        old = [{**row, "match_id": m} for row, m in zip(old, match_ids, strict=True)]
        old_columns = [*columns, "match_id"]
    s3.put_object(Bucket=BUCKET, Key="existing/old.csv", Body=csv_of(old, old_columns))
    s3.put_object(Bucket=BUCKET, Key="incremental/new.csv", Body=csv_of(new_rows[30:], columns))
    arguments = {
        "--transform_id": transform_id,
        "--existing_path": f"s3://{BUCKET}/existing/",
        "--incremental_path": f"s3://{BUCKET}/incremental/",
        "--output_path": f"s3://{BUCKET}/merged/",
    }
    run = run_job(glue, "FindIncrementalMatches", arguments)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith(f"The existing frame s3://{BUCKET}/existing/ {message}")
