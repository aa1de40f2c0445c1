"""GlueMLImportLabelsOperator: labels files are checked before any run; replace-all never loses labels."""

from __future__ import annotations

import csv
import io
import json

import boto3
import pytest

from airflow_provider_glue_labeling.emulator.seed import (
    create_findmatches_transform,
    label_from_truth,
    people,
)
from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLInputError
from airflow_provider_glue_labeling.operators import (
    GlueMLImportLabelsOperator,
    GlueMLLabelingSetGenerationOperator,
)
from tests.helpers import GOOD_LABELS, HEADER, ROW, client


@pytest.fixture
def transform(aws):
    source, truth = people(80)
    glue, s3 = client("glue"), client("s3")
    transform_id = create_findmatches_transform(
        glue, s3, bucket="labels", source_csv=source, primary_key="id"
    )
    return glue, s3, transform_id, truth


def importer(transform_id: str, path: str, **kwargs) -> GlueMLImportLabelsOperator:
    return GlueMLImportLabelsOperator(
        task_id="import_labels",
        transform_id=transform_id,
        input_s3_path=path,
        aws_conn_id=None,
        region_name="us-east-1",
        waiter_delay=0.1,
        waiter_max_attempts=100,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("files", "path", "problem"),
    [
        ({}, "s3://labels/in/labels.csv", "not found"),
        ({"in/labels.csv": b""}, "s3://labels/in/labels.csv", "is empty"),
        ({"in/labels.csv": b"x" * (10 * 1024 * 1024 + 1)}, "s3://labels/in/labels.csv", "at most 10 MB"),
        ({"in/labels.csv": b"\x89PNG\r\n\x1a\n\xff\xfe"}, "s3://labels/in/labels.csv", "not UTF-8"),
        (
            {"in/labels.csv": b"label,labeling_set_id,id\na,s1,1\n"},
            "s3://labels/in/labels.csv",
            "labeling_set_id,label",
        ),
        (
            {"in/labels.csv": HEADER + ROW + b",b,2,B,C,d@x.org,+44 3,Oslo,1\n"},
            "s3://labels/in/labels.csv",
            "row 3 has no labeling_set_id",
        ),
        ({"in/labels.csv": HEADER + b"s1,a\n"}, "s3://labels/in/labels.csv", "row 2 has 2 fields"),
        (
            {"in/a.csv": GOOD_LABELS, "in/b.csv": b"id,label\n1,a\n"},
            "s3://labels/in/",
            r"in/b.csv row 1 must begin",
        ),
        ({"in/labels.csv": b"\xef\xbb\xbf" + GOOD_LABELS}, "s3://labels/in/labels.csv", "byte-order mark"),
        ({"in/labels.csv": GOOD_LABELS.replace(b"Ann", b"Ren\xe9e")}, "s3://labels/in/labels.csv", r"cp1252"),
        (
            {"in/labels.csv": HEADER + ROW + b"s1, ,2,B,C,d@x.org,+44 3,Oslo,1\n"},
            "s3://labels/in/labels.csv",
            "row 3 .labeling set s1. has no label",
        ),
        (
            {"in/labels.csv": GOOD_LABELS.replace(b"set_id,label", b"set_id, label")},
            "s3://labels/in/labels.csv",
            "exactly labeling_set_id,label",
        ),
        (
            {"in/labels.csv": b"labeling_set_id,label,id,name\ns1,a,1,Ann\n"},
            "s3://labels/in/labels.csv",
            r"schema is \['id', 'first_name'",
        ),
    ],
    ids=[
        "missing",
        "empty",
        "over 10 MB",
        "not text",
        "wrong columns",
        "no labeling_set_id",
        "ragged CSV",
        "bad file under prefix",
        "BOM",
        "cp1252",
        "blank label",
        "spaced header",
        "schema",
    ],
)
def test_bad_labels_file_starts_no_run(transform, files, path, problem):
    glue, s3, transform_id, _ = transform
    for key, body in files.items():
        s3.put_object(Bucket="labels", Key=key, Body=body)
    with pytest.raises(GlueMLError, match=problem):
        importer(transform_id, path).execute({})
    assert glue.get_ml_task_runs(TransformId=transform_id)["TaskRuns"] == []


def test_prefix_of_good_files_is_imported(transform):
    glue, s3, transform_id, _ = transform
    s3.put_object(Bucket="labels", Key="in/a.csv", Body=GOOD_LABELS)
    s3.put_object(Bucket="labels", Key="in/b.csv", Body=GOOD_LABELS)
    run_id = importer(transform_id, "s3://labels/in/").execute({})
    assert glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "SUCCEEDED"
    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 6


def test_marker_files_are_skipped_and_odd_set_sizes_warned(transform, task_log):
    glue, s3, transform_id, _ = transform
    big = HEADER + b"".join(b"big,a,%d,Ann,Lee,a@x.org,+44 1,Oslo,1970\n" % n for n in range(51))
    s3.put_object(
        Bucket="labels", Key="spark/part-0.csv", Body=big + b"lone,a,99,Bo,Ry,b@x.org,+44 2,Cork,1980\n"
    )
    s3.put_object(Bucket="labels", Key="spark/_SUCCESS", Body=b"")
    s3.put_object(Bucket="labels", Key="spark/.part-0.csv.crc", Body=b"\x00")
    run_id = importer(transform_id, "s3://labels/spark/").execute({})
    assert glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "SUCCEEDED"
    logged = task_log()
    assert "labeling set big has 51 rows; over 50 may cause poor results" in logged
    assert "labeling set lone has 1 row; it teaches nothing" in logged


def test_replace_all_with_a_backup_on_a_transform_without_labels_imports(transform, task_log):
    glue, s3, transform_id, _ = transform
    s3.put_object(Bucket="labels", Key="in/labels.csv", Body=GOOD_LABELS)
    importer(
        transform_id,
        "s3://labels/in/labels.csv",
        replace_all_labels=True,
        backup_s3_path="s3://labels/backup/",
    ).execute({})
    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 3
    assert f"Transform {transform_id} has no labels yet: no backup needed" in task_log()
    assert "Contents" not in s3.list_objects_v2(Bucket="labels", Prefix="backup/")


def test_replace_all_without_backup_is_refused(transform):
    glue, s3, transform_id, _ = transform
    s3.put_object(Bucket="labels", Key="in/labels.csv", Body=GOOD_LABELS)
    with pytest.raises(GlueMLInputError, match="allow_label_loss=True"):
        importer(transform_id, "s3://labels/in/labels.csv", replace_all_labels=True).execute({})
    assert glue.get_ml_task_runs(TransformId=transform_id)["TaskRuns"] == []
    run_id = importer(
        transform_id, "s3://labels/in/labels.csv", replace_all_labels=True, allow_label_loss=True
    ).execute({})
    assert glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "SUCCEEDED"


def test_replace_all_backs_up_the_previous_labels_first(transform):
    glue, s3, transform_id, truth = transform
    generate = GlueMLLabelingSetGenerationOperator(
        task_id="g",
        transform_id=transform_id,
        output_s3_path="s3://labels/sets/",
        aws_conn_id=None,
        region_name="us-east-1",
        waiter_delay=0.1,
    )
    run_id = generate.execute({})
    labeled = label_from_truth(
        s3.get_object(Bucket="labels", Key=f"sets/{run_id}.csv")["Body"].read(), truth, "id"
    )
    s3.put_object(Bucket="labels", Key="first/labels.csv", Body=labeled)
    importer(transform_id, "s3://labels/first/labels.csv").execute({})
    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 100

    s3.put_object(Bucket="labels", Key="second/labels.csv", Body=GOOD_LABELS)
    importer(
        transform_id,
        "s3://labels/second/labels.csv",
        replace_all_labels=True,
        backup_s3_path="s3://labels/backup/",
    ).execute({})

    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 3
    (backup,) = s3.list_objects_v2(Bucket="labels", Prefix="backup/")["Contents"]
    rows = list(
        csv.DictReader(io.StringIO(s3.get_object(Bucket="labels", Key=backup["Key"])["Body"].read().decode()))
    )
    assert [(r["labeling_set_id"], r["label"], r["id"]) for r in rows] == [
        (r["labeling_set_id"], r["label"], r["id"]) for r in csv.DictReader(io.StringIO(labeled.decode()))
    ]
    types = [r["Properties"]["TaskType"] for r in glue.get_ml_task_runs(TransformId=transform_id)["TaskRuns"]]
    assert types == ["IMPORT_LABELS", "EXPORT_LABELS", "IMPORT_LABELS", "LABELING_SET_GENERATION"]


def test_labels_file_airflow_may_not_read_is_left_to_glue(aws, monkeypatch, task_log):
    """Least privilege: Airflow's role may not read the labels bucket; Glue reads it with the transform's role."""
    from moto.core import set_initial_no_auth_action_count

    @set_initial_no_auth_action_count(3)  # the first three calls make an admin; every later call is checked
    def run() -> None:
        iam = client("iam")
        iam.create_user(UserName="admin")
        iam.put_user_policy(
            UserName="admin",
            PolicyName="all",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}',
        )
        admin = iam.create_access_key(UserName="admin")["AccessKey"]
        session = boto3.Session(
            aws_access_key_id=admin["AccessKeyId"],
            aws_secret_access_key=admin["SecretAccessKey"],
            region_name="us-east-1",
        )
        glue, s3, iam = session.client("glue"), session.client("s3"), session.client("iam")
        transform_id = create_findmatches_transform(
            glue, s3, bucket="labels", source_csv=people(30)[0], primary_key="id"
        )
        s3.put_object(Bucket="labels", Key="in/labels.csv", Body=GOOD_LABELS)
        iam.create_user(UserName="airflow")
        iam.put_user_policy(
            UserName="airflow",
            PolicyName="glue-only",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "glue:*", "Resource": "*"}]}',
        )
        key = iam.create_access_key(UserName="airflow")["AccessKey"]
        monkeypatch.setenv(
            "AIRFLOW_CONN_GLUE_ONLY",
            json.dumps(
                {
                    "conn_type": "aws",
                    "login": key["AccessKeyId"],
                    "password": key["SecretAccessKey"],
                    "extra": {"region_name": "us-east-1"},
                }
            ),
        )
        task = GlueMLImportLabelsOperator(
            task_id="import_labels",
            transform_id=transform_id,
            input_s3_path="s3://labels/in/labels.csv",
            aws_conn_id="glue_only",
            waiter_delay=0.1,
        )
        run_id = task.execute({})
        assert glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "SUCCEEDED"
        assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 3

    run()
    logged = task_log()
    assert "Airflow may not read the labels file s3://labels/in/labels.csv" in logged
    assert "Glue reads it with the transform's IAM role" in logged
