"""The emulator through real boto3 clients: in-process (mock_aws) and over HTTP (moto server)."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
import urllib.error

import boto3
import pytest
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.emulator.matching import held_out
from airflow_provider_glue_labeling.emulator.seed import (
    create_findmatches_transform,
    dblp_acm,
    label_from_truth,
)
from airflow_provider_glue_labeling.emulator.similarity import jaccard, nearest, tokens
from tests.conftest import DBLP_ACM
from tests.helpers import client, wait_for_run

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def dblp_acm_source() -> tuple[bytes, dict[str, str]]:
    return dblp_acm(DBLP_ACM)


@pytest.fixture
def clients(request):
    """(glue, s3) boto3 clients: inside mock_aws, or (``BOTH_WAYS``) also against the moto server."""
    if getattr(request, "param", "in-process") == "in-process":
        with mock_aws():
            yield client("glue"), client("s3")
    else:
        endpoint = request.getfixturevalue("endpoint")
        yield client("glue", endpoint), client("s3", endpoint)


# The emulator's core behaviour, both in process and over HTTP; the rest in process only.
BOTH_WAYS = pytest.mark.parametrize("clients", ["in-process", "server"], indirect=True)


@pytest.fixture
def dblp(clients):
    glue, s3 = clients
    source, truth = dblp_acm_source()
    transform_id = create_findmatches_transform(
        glue, s3, bucket="dblp-acm", source_csv=source, primary_key="id"
    )
    return glue, s3, transform_id, truth


def generate(glue, s3, transform_id, prefix="labeling/"):
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path=f"s3://dblp-acm/{prefix}"
    )["TaskRunId"]
    run = wait_for_run(glue, transform_id, run_id)
    body = s3.get_object(Bucket="dblp-acm", Key=f"{prefix}{run_id}.csv")["Body"].read()
    return run, body


def import_labels(glue, transform_id, path, replace=False):
    run_id = glue.start_import_labels_task_run(
        TransformId=transform_id, InputS3Path=path, ReplaceAllLabels=replace
    )["TaskRunId"]
    return wait_for_run(glue, transform_id, run_id)


def evaluate(glue, transform_id):
    run = wait_for_run(
        glue, transform_id, glue.start_ml_evaluation_task_run(TransformId=transform_id)["TaskRunId"]
    )
    assert run["Status"] == "SUCCEEDED", run
    return glue.get_ml_transform(TransformId=transform_id)["EvaluationMetrics"]["FindMatchesMetrics"]


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@BOTH_WAYS
def test_run_goes_starting_running_succeeded_with_timestamps(dblp):
    glue, _, transform_id, _ = dblp
    emulator.configure(starting_seconds=0.3, run_seconds=3.0)
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path="s3://dblp-acm/out/"
    )["TaskRunId"]
    first = glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)
    assert first["Status"] == "STARTING" and "CompletedOn" not in first
    time.sleep(0.4)
    assert glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "RUNNING"
    done = wait_for_run(glue, transform_id, run_id)
    assert done["Status"] == "SUCCEEDED"
    assert done["Properties"] == {
        "TaskType": "LABELING_SET_GENERATION",
        "LabelingSetGenerationTaskRunProperties": {"OutputS3Path": "s3://dblp-acm/out/"},
    }
    assert done["StartedOn"] <= done["CompletedOn"] and done["ExecutionTime"] >= 0
    assert done["LogGroupName"] == "/aws-glue/ml-transforms"


def test_each_labeling_set_generated_has_set_ids_of_its_own(dblp):
    """Labels mean something only within their set: a later round's sets must not merge with earlier ones."""
    glue, s3, transform_id, _ = dblp
    ids = []
    for prefix in ("round-1/", "round-2/"):
        _, body = generate(glue, s3, transform_id, prefix=prefix)
        ids.append({row["labeling_set_id"] for row in csv.DictReader(io.StringIO(body.decode()))})
    assert len(ids[0]) >= 8 and len(ids[1]) >= 8
    assert not ids[0] & ids[1]


def test_labeling_set_has_aws_format_on_dblp_acm(dblp):
    glue, s3, transform_id, truth = dblp
    run, body = generate(glue, s3, transform_id)
    assert run["Status"] == "SUCCEEDED"
    assert not body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert list(rows[0]) == ["labeling_set_id", "label", "id", "title", "authors", "venue", "year"]
    assert 90 <= len(rows) <= 110
    sets = {r["labeling_set_id"] for r in rows}
    assert 8 <= len(sets) <= 12
    assert all(r["label"] == "" for r in rows)
    # sets gather likely duplicates: some DBLP record sits beside its ACM twin
    pairs = sum(
        1
        for s in sets
        for a in rows
        for b in rows
        if a["labeling_set_id"] == b["labeling_set_id"] == s
        and a["id"] < b["id"]
        and truth.get(a["id"], a["id"]) == truth.get(b["id"], b["id"])
    )
    assert pairs >= 3


@BOTH_WAYS
def test_labels_import_add_replace_export_and_evaluation(dblp):
    glue, s3, transform_id, truth = dblp
    assert glue.get_ml_transform(TransformId=transform_id)["Status"] == "NOT_READY"
    _, labeling_set = generate(glue, s3, transform_id)
    s3.put_object(Bucket="dblp-acm", Key="labels/one.csv", Body=label_from_truth(labeling_set, truth, "id"))
    assert import_labels(glue, transform_id, "s3://dblp-acm/labels/one.csv")["Status"] == "SUCCEEDED"
    transform = glue.get_ml_transform(TransformId=transform_id)
    assert transform["Status"] == "READY" and transform["LabelCount"] == 100
    assert import_labels(glue, transform_id, "s3://dblp-acm/labels/")["Status"] == "SUCCEEDED"
    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 200
    assert (
        import_labels(glue, transform_id, "s3://dblp-acm/labels/one.csv", replace=True)["Status"]
        == "SUCCEEDED"
    )
    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 100

    export_id = glue.start_export_labels_task_run(
        TransformId=transform_id, OutputS3Path="s3://dblp-acm/export/"
    )["TaskRunId"]
    assert wait_for_run(glue, transform_id, export_id)["Status"] == "SUCCEEDED"
    exported = s3.get_object(Bucket="dblp-acm", Key=f"export/{export_id}.csv")["Body"].read().decode()
    assert len(list(csv.DictReader(io.StringIO(exported)))) == 100

    metrics = evaluate(glue, transform_id)
    assert set(metrics) >= {
        "Precision",
        "Recall",
        "F1",
        "AreaUnderPRCurve",
        "ConfusionMatrix",
        "ColumnImportances",
    }
    matrix = metrics["ConfusionMatrix"]
    assert sum(matrix.values()) > 0
    importances = [c["Importance"] for c in metrics["ColumnImportances"]]
    assert importances == sorted(importances, reverse=True), "Glue sorts them by descending importance"
    assert metrics == evaluate(glue, transform_id), "evaluation is deterministic"


def test_evaluation_tests_held_out_sets_and_the_truth_is_known_beside_it(dblp):
    glue, s3, transform_id, truth = dblp
    emulator.configure(max_concurrent_runs=10)
    set_sizes: dict[str, int] = {}
    for number in range(3):
        _, labeling_set = generate(glue, s3, transform_id, prefix=f"held/{number}/")
        labels = label_from_truth(labeling_set, truth, "id")
        for row in csv.DictReader(io.StringIO(labels.decode())):
            set_sizes[row["labeling_set_id"]] = set_sizes.get(row["labeling_set_id"], 0) + 1
        s3.put_object(Bucket="dblp-acm", Key=f"held/{number}.csv", Body=labels)
        import_labels(glue, transform_id, f"s3://dblp-acm/held/{number}.csv")
    metrics = evaluate(glue, transform_id)
    # Glue estimates on labels held out of training: 30 % of the labeling sets here
    held = held_out(sorted(set_sizes))
    assert len(held) == round(0.3 * len(set_sizes))
    tested = sum(metrics["ConfusionMatrix"].values())
    assert tested == sum(set_sizes[s] * (set_sizes[s] - 1) // 2 for s in held)
    # the true quality counts every true pair of the source (149 matches in the sample)
    true = emulator.true_quality(transform_id, truth)
    matrix = true["ConfusionMatrix"]
    assert matrix["NumTruePositives"] + matrix["NumFalseNegatives"] == 149
    assert 0 < true["F1"] <= 1 and true != {k: metrics[k] for k in true}


def test_evaluation_is_better_with_more_correct_labels(dblp):
    glue, s3, transform_id, truth = dblp
    emulator.configure(max_concurrent_runs=10)
    wrong = {k: v[::-1] if i % 3 == 0 else v for i, (k, v) in enumerate(truth.items())}
    f1s = {}
    for rounds, labels in (("few-wrong", wrong), ("many-correct", truth)):
        for number in range(1 if rounds == "few-wrong" else 4):
            _, labeling_set = generate(glue, s3, transform_id, prefix=f"{rounds}/{number}/")
            s3.put_object(
                Bucket="dblp-acm",
                Key=f"l/{rounds}/{number}.csv",
                Body=label_from_truth(labeling_set, labels, "id"),
            )
            import_labels(glue, transform_id, f"s3://dblp-acm/l/{rounds}/{number}.csv", replace=number == 0)
        f1s[rounds] = evaluate(glue, transform_id)["F1"]
    assert f1s["many-correct"] > f1s["few-wrong"]


def test_the_nearest_records_through_the_word_index_are_those_of_comparing_every_pair():
    """The emulator's candidate search (an index from words to records) gives what sorting every
    other record by the Jaccard index of words gives: ties by index, records sharing no word last."""
    import random

    rng = random.Random(7)
    vocabulary = ["ann", "lee", "bob", "li", "x1", "rd", "st", "9", "new york", "o'neil", "", "ANN"]
    for trial in range(200):
        records = [
            tuple(" ".join(rng.sample(vocabulary, rng.randint(0, 3))) for _ in range(2))
            for _ in range(rng.randint(1, 25))
        ]
        count = rng.randint(1, 12)
        words = [tokens(" ".join(record)) for record in records]
        expected = [
            sorted((j for j in range(len(records)) if j != i), key=lambda j: -jaccard(words[i], words[j]))[
                :count
            ]
            for i in range(len(records))
        ]
        assert nearest(records, count) == expected, (trial, records, count)


HEADER = b"labeling_set_id,label,id,title,authors,venue,year\n"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"id,label\n1,a\n", "must start with the columns labeling_set_id,label"),
        (b"labeling_set_id, label,id,title,authors,venue,year\ns1,a,1,t,a,v,2000\n", "labeling_set_id,label"),
        (HEADER + b"s1,,1,t,a,v,2000\n", "has no labeling_set_id or label"),
        (HEADER + b"s1,a,1,t,a,v,2000,extra\n", "is not valid CSV"),
        (b"\xff\xfe\x00binary", "is not UTF-8"),
        (b"\xef\xbb\xbf" + HEADER + b"s1,a,1,t,a,v,2000\n", "byte-order mark"),
        (b"labeling_set_id,label,id,name\ns1,a,1,x\n", "after label; the source has ['id', 'title'"),
    ],
    ids=["header", "spaced header", "blank label", "extra field", "not UTF-8", "BOM", "schema"],
)
def test_malformed_labels_end_the_import_failed(dblp, body, problem):
    glue, s3, transform_id, _ = dblp
    s3.put_object(Bucket="dblp-acm", Key="bad/labels.csv", Body=body)
    run = import_labels(glue, transform_id, "s3://dblp-acm/bad/labels.csv")
    assert run["Status"] == "FAILED"
    assert problem in run["ErrorString"]
    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 0


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        ("dblp-acm/l.csv", None, "InvalidInputException", "Invalid label file path"),
        ("s3://no-such-labels-bucket/l.csv", None, "InvalidInputException", "Cannot access the label file"),
        ("s3://dblp-acm/none/l.csv", None, "InvalidInputException", "Cannot access the label file"),
        ("s3://dblp-acm/l.csv", b"", "InvalidInputException", "Invalid label file of size 0"),
        (
            "s3://dblp-acm/l.csv",
            HEADER + b"x" * (10 * 1024 * 1024),
            "ResourceNumberLimitExceededException",
            "limit",
        ),
        ("s3://eu-labels/l.csv", HEADER, "InvalidInputException", "region eu-west-1"),
    ],
    ids=["path", "no bucket", "no object", "size 0", "over 10 MB", "other region"],
)
def test_import_start_refuses_what_glue_refuses_at_the_call(dblp, path, body, code, message):
    glue, s3, transform_id, _ = dblp
    s3.create_bucket(Bucket="eu-labels", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    if body is not None:
        bucket, _, key = path.removeprefix("s3://").partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    with pytest.raises(ClientError) as excinfo:
        glue.start_import_labels_task_run(TransformId=transform_id, InputS3Path=path)
    assert error_code(excinfo) == code
    assert message in str(excinfo.value)
    assert glue.get_ml_task_runs(TransformId=transform_id)["TaskRuns"] == []


def test_marker_files_under_a_labels_prefix_are_skipped(dblp):
    glue, s3, transform_id, truth = dblp
    _, labeling_set = generate(glue, s3, transform_id)
    s3.put_object(
        Bucket="dblp-acm", Key="spark/part-0000.csv", Body=label_from_truth(labeling_set, truth, "id")
    )
    s3.put_object(Bucket="dblp-acm", Key="spark/_SUCCESS", Body=b"")
    s3.put_object(Bucket="dblp-acm", Key="spark/.part-0000.csv.crc", Body=b"\x00crc")
    assert import_labels(glue, transform_id, "s3://dblp-acm/spark/")["Status"] == "SUCCEEDED"


def test_concurrent_runs_quota_is_on_generation_and_evaluation_only(dblp):
    glue, s3, transform_id, _ = dblp
    emulator.configure(max_concurrent_runs=1, run_seconds=30)
    s3.put_object(Bucket="dblp-acm", Key="l.csv", Body=HEADER + b"s1,a,1,t,a,v,2000\n")
    for _ in range(2):  # imports are not counted against the quota ...
        glue.start_import_labels_task_run(TransformId=transform_id, InputS3Path="s3://dblp-acm/l.csv")
    with pytest.raises(ClientError) as excinfo:  # ... but they hold slots that generation meets
        glue.start_ml_labeling_set_generation_task_run(
            TransformId=transform_id, OutputS3Path="s3://dblp-acm/o/"
        )
    assert error_code(excinfo) == "ConcurrentRunsExceededException"


def test_export_without_labels_is_entity_not_found(dblp):
    glue, _, transform_id, _ = dblp
    with pytest.raises(ClientError) as excinfo:
        glue.start_export_labels_task_run(TransformId=transform_id, OutputS3Path="s3://dblp-acm/e/")
    assert error_code(excinfo) == "EntityNotFoundException"
    assert f"No labelset exists for transformId [{transform_id}]" in str(excinfo.value)


@pytest.mark.parametrize("tables", [0, 2])
def test_generation_and_evaluation_need_exactly_one_input_table(clients, tables):
    glue, _ = clients
    transform_id = glue.create_ml_transform(
        Name="t",
        InputRecordTables=[{"DatabaseName": "db", "TableName": f"t{n}"} for n in range(tables)],
        Parameters={"TransformType": "FIND_MATCHES"},
        Role="r",
    )["TransformId"]
    for start in (
        lambda: glue.start_ml_labeling_set_generation_task_run(
            TransformId=transform_id, OutputS3Path="s3://b-b/o/"
        ),
        lambda: glue.start_ml_evaluation_task_run(TransformId=transform_id),
    ):
        with pytest.raises(ClientError) as excinfo:
            start()
        assert error_code(excinfo) == "InvalidInputException"
        assert "Exactly one input record table must be provided." in str(excinfo.value)


def test_missing_source_ends_generation_failed(clients):
    glue, s3 = clients
    transform_id = create_findmatches_transform(
        glue, s3, bucket="empty-src", source_csv=b"id,name\n", primary_key="id"
    )
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path="s3://empty-src/o/"
    )["TaskRunId"]
    run = wait_for_run(glue, transform_id, run_id)
    assert run["Status"] == "FAILED"
    assert "source data is missing or empty" in run["ErrorString"]


def test_output_to_missing_bucket_fails_the_run(dblp):
    glue, _, transform_id, _ = dblp
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path="s3://no-such-bucket/x/"
    )["TaskRunId"]
    run = wait_for_run(glue, transform_id, run_id)
    assert run["Status"] == "FAILED" and "no-such-bucket does not exist" in run["ErrorString"]


@BOTH_WAYS
def test_error_codes(dblp):
    glue, _, transform_id, _ = dblp
    with pytest.raises(ClientError) as excinfo:
        glue.get_ml_task_run(TransformId="tfm-unknown", TaskRunId="tsk-1")
    assert error_code(excinfo) == "EntityNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        glue.get_ml_task_run(TransformId=transform_id, TaskRunId="tsk-unknown")
    assert error_code(excinfo) == "EntityNotFoundException"
    assert "tsk-unknown" in str(excinfo.value)
    with pytest.raises(ClientError) as excinfo:
        glue.start_ml_labeling_set_generation_task_run(TransformId=transform_id, OutputS3Path="https://x/y")
    assert error_code(excinfo) == "InvalidInputException"
    with pytest.raises(ClientError) as excinfo:
        glue.start_ml_evaluation_task_run(TransformId=transform_id)
    assert error_code(excinfo) == "MLTransformNotReadyException"
    emulator.configure(run_seconds=30)
    for _ in range(3):
        glue.start_ml_labeling_set_generation_task_run(
            TransformId=transform_id, OutputS3Path="s3://dblp-acm/o/"
        )
    with pytest.raises(ClientError) as excinfo:
        glue.start_ml_labeling_set_generation_task_run(
            TransformId=transform_id, OutputS3Path="s3://dblp-acm/o/"
        )
    assert error_code(excinfo) == "ConcurrentRunsExceededException"


@BOTH_WAYS
def test_cancel_goes_stopping_then_stopped(dblp):
    glue, _, transform_id, _ = dblp
    emulator.configure(run_seconds=30, stop_seconds=0.2)
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path="s3://dblp-acm/o/"
    )["TaskRunId"]
    answer = glue.cancel_ml_task_run(TransformId=transform_id, TaskRunId=run_id)
    assert (answer["TaskRunId"], answer["Status"]) == (run_id, "STOPPING")
    run = wait_for_run(glue, transform_id, run_id)
    assert run["Status"] == "STOPPED" and "CompletedOn" in run
    with pytest.raises(ClientError) as excinfo:
        glue.cancel_ml_task_run(TransformId=transform_id, TaskRunId=run_id)
    assert error_code(excinfo) == "InvalidInputException"


def test_get_ml_task_runs_filter_sort_and_pages(dblp):
    glue, s3, transform_id, _ = dblp
    emulator.configure(max_concurrent_runs=10, run_seconds=0.2, starting_seconds=0.0)
    ids = []
    for number in range(5):
        ids.append(
            glue.start_ml_labeling_set_generation_task_run(
                TransformId=transform_id, OutputS3Path=f"s3://dblp-acm/{number}/"
            )["TaskRunId"]
        )
        # older botocore sends timestamps in whole seconds: the StartedAfter boundary needs one
        time.sleep(1.1 if number == 2 else 0.01)
    s3.put_object(Bucket="dblp-acm", Key="l.csv", Body=HEADER + b"s1,a,1,t,a,v,2000\n")
    import_id = glue.start_import_labels_task_run(
        TransformId=transform_id, InputS3Path="s3://dblp-acm/l.csv"
    )["TaskRunId"]
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = glue.get_ml_task_runs(
            TransformId=transform_id,
            Filter={"TaskRunType": "LABELING_SET_GENERATION"},
            Sort={"Column": "STARTED", "SortDirection": "ASCENDING"},
            MaxResults=2,
            **kwargs,
        )
        pages.append([r["TaskRunId"] for r in page["TaskRuns"]])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]
    newest = glue.get_ml_task_runs(TransformId=transform_id)["TaskRuns"]
    assert newest[0]["TaskRunId"] == import_id
    started = glue.get_ml_task_run(TransformId=transform_id, TaskRunId=ids[3])["StartedOn"]
    after = glue.get_ml_task_runs(
        TransformId=transform_id, Filter={"StartedAfter": started, "TaskRunType": "LABELING_SET_GENERATION"}
    )["TaskRuns"]
    assert {r["TaskRunId"] for r in after} == {ids[3], ids[4]}
    time.sleep(0.3)
    done = glue.get_ml_task_runs(TransformId=transform_id, Filter={"Status": "SUCCEEDED"})["TaskRuns"]
    assert len(done) == 6


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        ("throttle", "ThrottlingException", 400),
        ("server_error", "InternalServiceException", 500),
        ("timeout", "OperationTimeoutException", 400),
    ],
)
def test_fault_injection_on_the_nth_call(dblp, kind, code, status):
    glue, _, transform_id, _ = dblp
    strict = _strict(glue)
    emulator.inject_fault("GetMLTransform", kind, calls=[2])
    strict.get_ml_transform(TransformId=transform_id)
    with pytest.raises(ClientError) as excinfo:
        strict.get_ml_transform(TransformId=transform_id)
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    strict.get_ml_transform(TransformId=transform_id)
    assert [c[1] for c in emulator.calls("GetMLTransform")] == ["GetMLTransform"] * 3


def test_fault_injection_latency_and_rate(dblp):
    glue, _, transform_id, _ = dblp
    emulator.inject_fault("GetMLTransform", "latency", calls=[1], seconds=0.3)
    started = time.monotonic()
    glue.get_ml_transform(TransformId=transform_id)
    assert time.monotonic() - started >= 0.3
    emulator.inject_fault("GetMLTaskRuns", "throttle", rate=0.5, seed=1)
    strict = _strict(glue)
    outcomes = []
    for _ in range(20):
        try:
            strict.get_ml_task_runs(TransformId=transform_id)
            outcomes.append("ok")
        except ClientError:
            outcomes.append("throttled")
    assert 4 <= outcomes.count("throttled") <= 16


def _strict(glue):
    """The same endpoint as ``glue`` with botocore's retries off, to see each injected fault."""
    url = glue.meta.endpoint_url
    return boto3.client(
        "glue", region_name="us-east-1", endpoint_url=url if "127.0.0.1" in url else None, config=NO_RETRIES
    )


def test_get_ml_task_run_through_aiobotocore_against_the_server(endpoint):
    glue, s3 = client("glue", endpoint), client("s3", endpoint)
    source, _ = dblp_acm_source()
    transform_id = create_findmatches_transform(
        glue, s3, bucket="aio-bucket", source_csv=source, primary_key="id"
    )
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path="s3://aio-bucket/o/"
    )["TaskRunId"]

    async def poll():
        async with get_session().create_client("glue", region_name="us-east-1", endpoint_url=endpoint) as aio:
            while True:
                run = await aio.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)
                if run["Status"] == "SUCCEEDED":
                    return run
                await asyncio.sleep(0.05)

    run = asyncio.run(asyncio.wait_for(poll(), 10))
    assert run["Properties"]["TaskType"] == "LABELING_SET_GENERATION"


def test_a_running_server_process_is_controlled_over_http(tmp_path):
    """force_outcome and inject_fault reach a server started with ``python -m ...emulator``."""
    import re
    import signal
    import subprocess
    import sys

    server = subprocess.Popen(
        [
            sys.executable, "-m", "airflow_provider_glue_labeling.emulator", "--port", "0",
            "--run-seconds", "0.3", "--starting-seconds", "0",
            "--force-outcome", "FAILED:out of memory:LABELING_SET_GENERATION",
            "--fault", "GetMLTransform:throttle:calls=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", server.stdout.readline()).group(0)
        glue, s3 = client("glue", url), client("s3", url)
        transform_id = create_findmatches_transform(
            glue, s3, bucket="ctl", source_csv=b"id,name\n1,Ann\n2,Anne\n", primary_key="id"
        )
        strict = boto3.client("glue", region_name="us-east-1", endpoint_url=url, config=NO_RETRIES)
        with pytest.raises(ClientError) as excinfo:  # the --fault given at start
            strict.get_ml_transform(TransformId=transform_id)
        assert error_code(excinfo) == "ThrottlingException"

        def generation():
            run_id = glue.start_ml_labeling_set_generation_task_run(
                TransformId=transform_id, OutputS3Path="s3://ctl/ls/"
            )["TaskRunId"]
            return wait_for_run(glue, transform_id, run_id)

        first = generation()  # the --force-outcome given at start
        assert (first["Status"], first["ErrorString"]) == ("FAILED", "out of memory")
        remote = emulator.Remote(url)
        remote.force_outcome("TIMEOUT", "Task run timed out after 2880 minutes")
        assert generation()["Status"] == "TIMEOUT"
        remote.inject_fault("GetMLTaskRun", "server_error", calls=[1])
        with pytest.raises(ClientError) as excinfo:
            strict.get_ml_task_run(TransformId=transform_id, TaskRunId=first["TaskRunId"])
        assert error_code(excinfo) == "InternalServiceException"
        assert [c[1] for c in remote.calls("StartMLLabelingSetGenerationTaskRun")] == [
            "StartMLLabelingSetGenerationTaskRun"
        ] * 2
        assert remote.configure(run_seconds=5)["run_seconds"] == 5
        # the truth, for benchmarks and demos: Ann and Anne are one person; with no labels the
        # transform's model calls no pair a match, so that pair is missed
        known = remote.true_quality(transform_id, {"1": "ann", "2": "ann"})
        assert known["ConfusionMatrix"]["NumFalseNegatives"] == 1 and known["F1"] == 0
        with pytest.raises(urllib.error.HTTPError) as missing:
            remote.true_quality("tfm-none", {})
        assert missing.value.code == 404
        remote.reset()
        assert remote.calls() == []
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


@BOTH_WAYS
def test_conditional_writes_are_refused_as_s3_refuses_them_and_one_of_many_wins(clients):
    _, s3 = clients
    s3.create_bucket(Bucket="cond")
    first = s3.put_object(Bucket="cond", Key="labels.csv", Body=b"a", IfNoneMatch="*")
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="cond", Key="labels.csv", Body=b"b", IfNoneMatch="*")
    assert error_code(excinfo) == "PreconditionFailed"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="cond", Key="labels.csv", Body=b"c", IfMatch='"not-its-etag"')
    assert error_code(excinfo) == "PreconditionFailed"
    s3.put_object(Bucket="cond", Key="labels.csv", Body=b"d", IfMatch=first["ETag"])
    # Many writers at once, each only if absent: exactly one writes.
    won: list[int] = []

    def write(number: int) -> None:
        try:
            s3.put_object(Bucket="cond", Key="once.csv", Body=str(number).encode(), IfNoneMatch="*")
            won.append(number)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "PreconditionFailed"

    writers = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert len(won) == 1
    assert s3.get_object(Bucket="cond", Key="once.csv")["Body"].read() == str(won[0]).encode()
