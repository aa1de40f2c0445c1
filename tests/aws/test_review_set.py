"""GlueMLReviewSetOperator on the emulator, through real boto3 clients: a taught transform, a real
FindMatches job with match confidence scores, then the review set built from its output."""

from __future__ import annotations

import csv
import io
import time

import pytest
from airflow.providers.common.compat.sdk import AirflowSkipException
from moto import mock_aws

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.emulator.seed import (
    create_findmatches_transform,
    label_from_truth,
    people,
    read_matches,
)
from airflow_provider_glue_labeling.exceptions import GlueMLInputError
from airflow_provider_glue_labeling.labels.format import LabelingSet, labels_file_problems
from airflow_provider_glue_labeling.labels.review_sets import MAX_SET_ROWS, build_review_set
from airflow_provider_glue_labeling.operators import GlueMLImportLabelsOperator, GlueMLReviewSetOperator
from tests.helpers import ROOT, client, wait_for_run

BUCKET = "review"
MATCHES = f"s3://{BUCKET}/matches/"
SCHEMA = ["id", "first_name", "last_name", "email", "phone", "city", "birth_year"]


@pytest.fixture
def taught():
    """(glue, s3, transform id, truth): a transform over 300 made-up people, taught with two
    labeling sets labeled from the truth, and its FindMatches job's script in S3."""
    with mock_aws():
        emulator.configure(run_seconds=0.05, starting_seconds=0.01)  # teaching is not what is tested
        glue, s3 = client("glue"), client("s3")
        source, truth = people(300, seed=3)
        transform_id = create_findmatches_transform(
            glue, s3, bucket=BUCKET, source_csv=source, primary_key="id"
        )
        for number in range(2):
            run_id = glue.start_ml_labeling_set_generation_task_run(
                TransformId=transform_id, OutputS3Path=f"s3://{BUCKET}/labeling/{number}/"
            )["TaskRunId"]
            assert wait_for_run(glue, transform_id, run_id)["Status"] == "SUCCEEDED"
            labeling_set = s3.get_object(Bucket=BUCKET, Key=f"labeling/{number}/{run_id}.csv")["Body"].read()
            import_labels(
                glue, s3, transform_id, label_from_truth(labeling_set, truth, "id"), f"labels/{number}.csv"
            )
        s3.put_object(
            Bucket=BUCKET,
            Key="scripts/findmatches_job.py",
            Body=(ROOT / "example_dags" / "findmatches_job.py").read_bytes(),
        )
        emulator.configure(run_seconds=0.3, starting_seconds=0.05)  # the suite's defaults again
        yield glue, s3, transform_id, truth


def import_labels(glue, s3, transform_id: str, labels: bytes, key: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=labels)
    run_id = glue.start_import_labels_task_run(TransformId=transform_id, InputS3Path=f"s3://{BUCKET}/{key}")[
        "TaskRunId"
    ]
    assert wait_for_run(glue, transform_id, run_id)["Status"] == "SUCCEEDED"


def find_matches(
    glue, s3, transform_id: str, output: str = MATCHES, scores: bool = True
) -> list[dict[str, str]]:
    """Run the example FindMatches job (Glue 2.0) on the transform; its output's rows."""
    name = f"findmatches-{time.monotonic_ns()}"
    glue.create_job(
        Name=name,
        Role="arn:aws:iam::123456789012:role/GlueFindMatches",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/scripts/findmatches_job.py"},
        GlueVersion="2.0",
    )
    arguments = {"--transform_id": transform_id, "--output_path": output}
    if scores:
        arguments["--compute_match_confidence_scores"] = "true"
    run_id = glue.start_job_run(JobName=name, Arguments=arguments)["JobRunId"]
    deadline = time.monotonic() + 10
    while (run := glue.get_job_run(JobName=name, RunId=run_id)["JobRun"])["JobRunState"] != "SUCCEEDED":
        assert run["JobRunState"] != "FAILED" and time.monotonic() < deadline, run
        time.sleep(0.05)
    return read_matches(s3, output)


def reviewer(transform_id: str, **kwargs) -> GlueMLReviewSetOperator:
    arguments = {"matches_s3_path": MATCHES, "review_set_s3_path": f"s3://{BUCKET}/review/", **kwargs}
    return GlueMLReviewSetOperator(
        task_id="review_set",
        transform_id=transform_id,
        aws_conn_id=None,
        region_name="us-east-1",
        **arguments,
    )


def read(s3, path: str) -> bytes:
    bucket, _, key = path.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_the_review_set_asks_about_groups_in_the_band_in_glue_format_sized_as_a_labeling_set(taught):
    glue, s3, transform_id, truth = taught
    matches = find_matches(glue, s3, transform_id)
    path = reviewer(transform_id, min_confidence=0.4, max_confidence=0.8).execute({})
    assert path.startswith(f"s3://{BUCKET}/review/review-") and path.endswith(".csv")
    data = read(s3, path)
    assert not data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows[0] == ["labeling_set_id", "label", *SCHEMA]
    assert all(row[1] == "" for row in rows[1:]), "nothing pre-filled"
    review = LabelingSet.parse([data])
    assert 2 <= len(review.sets) <= 10
    assert review.records() <= 10 * 10
    assert all(2 <= len(records) <= MAX_SET_ROWS for records in review.sets.values())
    group_of = {row["id"]: row["match_id"] for row in matches}
    score_of = {row["match_id"]: float(row["match_confidence_score"]) for row in matches}
    members: dict[str, set[str]] = {}
    for row in matches:
        members.setdefault(row["match_id"], set()).add(row["id"])
    shown: list[str] = []
    for records in review.sets.values():
        ids = [record[0] for record in records]
        reviewed = group_of[ids[0]]  # each set begins with the group it asks about, whole
        assert 0.4 <= score_of[reviewed] <= 0.8
        assert set(ids[: len(members[reviewed])]) == members[reviewed]
        assert len(ids) > len(members[reviewed]), "shown with the records nearest to it"
        shown.extend(ids)
    assert len(shown) == len(set(shown)), "each record in one set"
    # Labeled from the truth, it is a labels file Glue takes: no problem, no warning.
    labels = label_from_truth(data, truth, "id")
    assert labels_file_problems(labels, SCHEMA) == (None, [])


def row(record: str, match_id: str, score: float, first: str, last: str, city: str) -> dict[str, str]:
    return {
        "id": record,
        "first_name": first,
        "last_name": last,
        "city": city,
        "match_id": match_id,
        "match_confidence_score": str(score),
    }


def test_each_group_is_shown_with_the_nearest_groups_by_token_overlap():
    matches = [
        row("1", "a", 0.6, "Ada", "Lovelace", "Oslo"),
        row("2", "a", 0.6, "Ada", "Hopper", "Oslo"),
        row("3", "b", 0.95, "Ada", "Lovelace", "Lyon"),  # shares Ada, Lovelace with a
        row("4", "c", 0.95, "Grace", "Hopper", "Cork"),  # shares Hopper with a
        row("5", "d", 0.99, "Ken", "Thompson", "Graz"),  # shares nothing
        row(
            "6", "e", 0.1, "Ada", "Lovelace", "Oslo"
        ),  # as near as can be, but out of the band: shown, not asked
    ]
    columns = ["id", "first_name", "last_name", "city"]
    review = build_review_set(matches, columns, "id", set_size=4)
    assert [(s.match_id, s.records, s.neighbours) for s in review.sets] == [("a", 2, 2)]
    rows = list(csv.DictReader(io.StringIO(review.data.decode())))
    assert [r["id"] for r in rows] == ["1", "2", "6", "3"]
    assert review.in_band == 1
    # The band decides which group is asked about; the primary key is never compared.
    review = build_review_set(matches, columns, "id", min_confidence=0.9, max_confidence=0.96, set_size=3)
    assert [s.match_id for s in review.sets] == ["b", "c"]
    assert [r["id"] for r in csv.DictReader(io.StringIO(review.data.decode()))] == [
        "3",
        "1",
        "2",
        "4",
        "5",
        "6",
    ]


def test_a_group_too_big_for_a_set_is_left_out_and_a_big_neighbour_shows_its_nearest_records():
    matches = [
        *(row(f"b{i}", "big", 0.6, "Ada", f"Name{i}", "Oslo") for i in range(MAX_SET_ROWS)),
        row("s1", "small", 0.6, "Ada", "Lovelace", "Oslo"),
        *(
            row(f"n{i}", "near", 0.99, "Ada", "Lovelace" if i == 0 else f"Other{i}", "Oslo")
            for i in range(12)
        ),
    ]
    review = build_review_set(matches, ["id", "first_name", "last_name", "city"], "id", set_size=5)
    assert (review.in_band, review.too_big) == (2, 1)
    assert [(s.match_id, s.records, s.neighbours) for s in review.sets] == [("small", 1, 4)]
    rows = list(csv.DictReader(io.StringIO(review.data.decode())))
    assert [r["id"] for r in rows] == ["s1", "n0", "n1", "n2", "n3"]


def test_the_most_uncertain_groups_first_at_most_max_sets_and_set_ids_unique_to_the_review_set(taught):
    glue, s3, transform_id, _ = taught
    matches = find_matches(glue, s3, transform_id)
    review = build_review_set(matches, SCHEMA, "id", max_sets=3)
    assert len(review.sets) == 3 < review.in_band
    distances = [abs(s.score - 0.6) for s in review.sets]
    assert distances == sorted(distances)
    prefix = review.sets[0].set_id.rsplit("-", 1)[0]
    assert [s.set_id for s in review.sets] == [f"{prefix}-{n:03d}" for n in range(3)]
    assert build_review_set(matches, SCHEMA, "id", max_sets=3) == review, "the same input, the same set"
    other = build_review_set(matches, SCHEMA, "id", min_confidence=0.5, max_confidence=0.9, max_sets=3)
    assert other.sets[0].set_id.rsplit("-", 1)[0] != prefix


def test_labeled_from_the_truth_the_review_set_is_imported_and_the_label_count_grows(taught):
    glue, s3, transform_id, truth = taught
    find_matches(glue, s3, transform_id)
    before = glue.get_ml_transform(TransformId=transform_id)["LabelCount"]
    path = reviewer(transform_id).execute({})
    labels = label_from_truth(read(s3, path), truth, "id")
    s3.put_object(Bucket=BUCKET, Key="review-labels.csv", Body=labels)
    run_id = GlueMLImportLabelsOperator(
        task_id="import_labels",
        transform_id=transform_id,
        input_s3_path=f"s3://{BUCKET}/review-labels.csv",
        aws_conn_id=None,
        region_name="us-east-1",
        waiter_delay=0.1,
        waiter_max_attempts=100,
    ).execute({})
    assert glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "SUCCEEDED"
    records = LabelingSet.parse([read(s3, path)]).records()
    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == before + records


def test_a_retry_writes_the_same_file_and_templated_text_reads_as_numbers(taught):
    glue, s3, transform_id, _ = taught
    find_matches(glue, s3, transform_id)
    path = reviewer(transform_id).execute({})
    again = reviewer(transform_id, min_confidence="0.4", max_confidence="0.8", max_sets="10", set_size="10")
    assert again.execute({}) == path
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="review/")["Contents"]] == [
        path.removeprefix(f"s3://{BUCKET}/")
    ]


@pytest.mark.parametrize(
    "band",
    [{"min_confidence": 0.0, "max_confidence": 0.01}, {"min_groups": 1000, "max_sets": 1000}],
    ids=["no group in the band", "fewer than min_groups"],
)
def test_nothing_to_review_skips_and_writes_nothing(taught, band, task_log):
    glue, s3, transform_id, _ = taught
    scores = {float(row["match_confidence_score"]) for row in find_matches(glue, s3, transform_id)}
    assert "min_groups" in band or min(scores) > 0.01
    with pytest.raises(AirflowSkipException):
        reviewer(transform_id, **band).execute({})
    assert "Nothing to review" in task_log()
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="review/")


@pytest.mark.parametrize(
    ("changed", "parameter", "rule"),
    [
        ({"min_confidence": -0.1}, "min_confidence", "from 0 to 1"),
        ({"max_confidence": 1.5}, "max_confidence", "from 0 to 1"),
        ({"max_confidence": "high"}, "max_confidence", "from 0 to 1"),
        ({"min_confidence": None}, "min_confidence", "from 0 to 1"),
        ({"min_confidence": 0.8, "max_confidence": 0.4}, "max_confidence", "above min_confidence=0.8"),
        ({"min_confidence": 0.5, "max_confidence": 0.5}, "max_confidence", "above min_confidence=0.5"),
        ({"max_sets": 0}, "max_sets", "positive int"),
        ({"set_size": 1}, "set_size", "2 to 30 rows"),
        ({"set_size": 51}, "set_size", "2 to 30 rows"),
        ({"min_groups": 0}, "min_groups", "positive int"),
        ({"min_groups": 11, "max_sets": 10}, "min_groups", "expected at most max_sets"),
        ({"matches_s3_path": "matches/"}, "matches_s3_path", "scheme must be s3://"),
        ({"review_set_s3_path": "s3://Bad_Bucket/review/"}, "review_set_s3_path", "is invalid"),
    ],
    ids=[
        "band below 0",
        "band above 1",
        "not a number",
        "no low end",
        "low above high",
        "low equal to high",
        "no sets",
        "set of one row",
        "set over 50 rows",
        "no groups",
        "more groups than sets",
        "matches not in S3",
        "bad bucket",
    ],
)
def test_bad_parameters_are_refused_before_any_call(changed, parameter, rule):
    with mock_aws():  # a missing bucket: a call would fail otherwise
        operator = reviewer("tfm-0123", **{"matches_s3_path": "s3://nowhere/matches/", **changed})
        with pytest.raises(GlueMLInputError, match=rf"Invalid {parameter}=.*{rule}"):
            operator.execute({})
        assert emulator.calls() == []


def test_a_matching_output_without_scores_says_to_compute_them(taught):
    glue, s3, transform_id, _ = taught
    find_matches(glue, s3, transform_id, scores=False)
    with pytest.raises(GlueMLInputError, match=r"matches_s3_path=.*computeMatchConfidenceScores=True"):
        reviewer(transform_id).execute({})


def test_a_file_without_match_ids_is_refused(taught):
    _, s3, transform_id, _ = taught
    s3.put_object(Bucket=BUCKET, Key="matches/part-0.csv", Body=people(20)[0])
    with pytest.raises(
        GlueMLInputError, match=r"matches_s3_path=.*expected a FindMatches job's output.*match_id"
    ):
        reviewer(transform_id).execute({})


def test_the_output_of_another_transform_is_refused(taught):
    glue, s3, transform_id, _ = taught
    find_matches(glue, s3, transform_id)
    other = glue.create_ml_transform(
        Name="papers",
        InputRecordTables=[{"DatabaseName": "papers", "TableName": "records"}],
        Parameters={"TransformType": "FIND_MATCHES", "FindMatchesParameters": {"PrimaryKeyColumnName": "id"}},
        Role="arn:aws:iam::123456789012:role/GlueFindMatches",
        GlueVersion="2.0",
    )["TransformId"]
    glue.create_database(DatabaseInput={"Name": "papers"})
    glue.create_table(
        DatabaseName="papers",
        TableInput={
            "Name": "records",
            "StorageDescriptor": {
                "Location": f"s3://{BUCKET}/papers/",
                "Columns": [{"Name": c, "Type": "string"} for c in ("id", "title", "authors")],
            },
        },
    )
    with pytest.raises(
        GlueMLInputError, match=rf"lacks the transform's columns \['title', 'authors'\].*{other}"
    ):
        reviewer(other).execute({})
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="review/")


def test_a_score_that_is_not_a_number_from_0_to_1_is_refused(taught):
    glue, s3, transform_id, _ = taught
    matches = find_matches(glue, s3, transform_id)
    matches[4]["match_confidence_score"] = "1.7"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(matches[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(matches)
    s3.put_object(Bucket=BUCKET, Key="bad/part-0.csv", Body=out.getvalue().encode())
    with pytest.raises(GlueMLInputError, match=r"record 5 has match_confidence_score='1.7'"):
        reviewer(transform_id, matches_s3_path=f"s3://{BUCKET}/bad/").execute({})


def test_two_runs_outputs_under_one_path_are_refused_naming_the_record(taught):
    glue, s3, transform_id, _ = taught
    matches = find_matches(glue, s3, transform_id)
    # A second run's output under the same path: Glue adds files, so every record is there twice.
    find_matches(glue, s3, transform_id)
    operator = reviewer(transform_id)
    with pytest.raises(
        GlueMLInputError,
        match=rf"records 1 and {len(matches) + 1} have the same id '{matches[0]['id']}': expected each record once",
    ):
        operator.execute({})
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="review/")


def test_the_transform_is_read_once(taught):
    glue, s3, transform_id, _ = taught
    find_matches(glue, s3, transform_id)
    calls: list[str] = []
    operator = reviewer(transform_id)
    operator.hook.conn.meta.events.register("before-call.glue.*", lambda model, **_: calls.append(model.name))
    operator.execute({})
    assert calls == ["GetMLTransform"]


def test_lineage_reads_the_matches_and_writes_the_review_set(taught):
    pytest.importorskip("airflow.providers.openlineage", reason="needs apache-airflow-providers-openlineage")
    glue, s3, transform_id, _ = taught
    find_matches(glue, s3, transform_id)
    operator = reviewer(transform_id)
    path = operator.execute({})
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [(f"s3://{BUCKET}", "matches")]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(f"s3://{BUCKET}", path.split("/", 3)[3])]
