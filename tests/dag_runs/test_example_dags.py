"""The example DAGs: they load with no AWS call, and run end to end on the emulator, both wait modes."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import sys
import uuid

import pendulum
import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

from airflow_provider_glue_labeling.emulator.seed import (
    create_findmatches_transform,
    label_from_truth,
    people,
)
from airflow_provider_glue_labeling.versions import HAS_ASSET_ALIASES, HAS_UI_PLUGINS
from dev.demo import BUCKET, Labeler
from tests.helpers import MATCHING_TASKS, ROOT, asset_events, client, csv_of, teach_from_truth

EXAMPLES = ROOT / "example_dags"
_connects: list[object] = []


def _audit(event: str, args: tuple) -> None:
    """Note every outgoing connection of this process (an audit hook sees them all)."""
    if event == "socket.connect":
        _connects.append(args[1])


sys.addaudithook(_audit)


def test_dagbag_loads_examples_without_errors_or_aws_calls():
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+
    except ImportError:
        from airflow.models.dagbag import DagBag

    _connects.clear()
    bag = DagBag(dag_folder=str(EXAMPLES))
    made = list(_connects)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "glue_labeling_set_generation",
        "glue_findmatches_retraining",
        "glue_findmatches_matching",
        "glue_findmatches_incremental",
    }
    assert made == [], f"loading the example DAGs opened connections: {made}"
    retraining = bag.dags["glue_findmatches_retraining"]
    schedule = retraining.schedule if AIRFLOW_V_3_0_PLUS else retraining.schedule_interval
    assert schedule == "@weekly"
    assert retraining.catchup is False


def load(name: str, deferrable: bool, monkeypatch):
    """A fresh copy of an example DAG, built with ``[operators] default_deferrable`` set."""
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(deferrable))
    monkeypatch.setenv("AIRFLOW__GLUE_LABELING__POLL_SECONDS", "0.3")
    spec = importlib.util.spec_from_file_location(
        f"example_{name}_{uuid.uuid4().hex}", EXAMPLES / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Every task that waits on Glue (a review set is built in the worker: nothing to wait for).
    glue_tasks = [
        t
        for t in module.dag.tasks
        if t.task_type.startswith("GlueML") and t.task_type != "GlueMLReviewSetOperator"
    ]
    assert all(t.deferrable is deferrable for t in glue_tasks)
    return module.dag


@pytest.fixture
def people_transform(endpoint, airflow_db):
    glue, s3 = client("glue", endpoint), client("s3", endpoint)
    source, truth = people(400)
    transform_id = create_findmatches_transform(
        glue, s3, bucket=BUCKET, source_csv=source, primary_key="id", name="people-dedup"
    )
    return glue, s3, transform_id, truth


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


class InProcessPage:
    """The labeling page's HTTP API in this process (Airflow's api-server app), which
    ``dev.demo.Labeler`` works as it works a deployment's: on Airflow 3.1+ people label there,
    and the page's submit answers the labeling task's request while ``dag.test()`` waits.

    :param client: the api-server app's test client.
    :param as_user: a user's request headers.
    """

    url = ""

    def __init__(self, client, as_user) -> None:
        self.client, self.as_user = client, as_user

    def labeler(self, user: str) -> InProcessPage.Session:
        from airflow_provider_glue_labeling.ui.service import WRITE_HEADER

        return self.Session(self.client, {**self.as_user(user), WRITE_HEADER: "1"})

    class Session:
        """A user's calls, as a ``requests.Session`` makes them (``timeout`` has no use in process)."""

        def __init__(self, client, headers: dict[str, str]) -> None:
            self.client, self.headers = client, headers

        def get(self, path: str, timeout: float | None = None, **kwargs):
            return self.client.request("GET", path, headers=self.headers, **kwargs)

        def put(self, path: str, timeout: float | None = None, **kwargs):
            return self.client.request("PUT", path, headers=self.headers, **kwargs)

        def post(self, path: str, timeout: float | None = None, **kwargs):
            return self.client.request("POST", path, headers=self.headers, **kwargs)


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferrable"])
def test_retraining_dag_asks_for_labels_until_quality_is_good_enough(
    people_transform, monkeypatch, capfd, deferrable, request
):
    glue, s3, transform_id, truth = people_transform
    # People label in the page where there is one (a labels file put in place another way is
    # taken there only when it is in place before the task asks, or once someone answers).
    page = InProcessPage(*request.getfixturevalue("api")) if HAS_UI_PLUGINS else None
    dag = load("glue_findmatches_retraining", deferrable, monkeypatch)
    monkeypatch.setenv("GLUE_FINDMATCHES_TRANSFORM_ID", transform_id)
    monkeypatch.setenv("GLUE_FINDMATCHES_BUCKET", BUCKET)
    matching = load("glue_findmatches_matching", deferrable, monkeypatch)
    labeling_round = [
        "generate_labeling_set",
        "wait_for_labeling_set",
        "label",
        "import_labels",
    ]
    # On the estimate: the lower bound of an F1 on 100 labels is far below it.
    conf = {"transform_id": transform_id, "bucket": BUCKET, "min_f1": 0.5, "require_lower_bound": False}
    labeler = Labeler(glue, s3, transform_id, truth, page=page)
    labeler.start()
    try:
        # A new transform has no labels: nothing to evaluate, so people are asked for a first round.
        first = dag.test(run_conf=conf)
        first_states = states(first)
        assert first.state == "success" and set(first_states.values()) == {"success"}, first_states
        assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 100
        assert f"Asking people for labels: transform {transform_id} has no labels yet" in "".join(
            capfd.readouterr()
        )
        # The transform's latest event is the import: the matching DAG finds nothing to do.
        not_yet = matching.test()
        assert states(not_yet) == dict.fromkeys(MATCHING_TASKS, "skipped") | {"transform_passed": "success"}
        # The next run evaluates those labels: F1 meets min_f1, so nobody is asked for labels.
        second = dag.test(run_conf=conf)
        logged = "".join(capfd.readouterr())
        transform = glue.get_ml_transform(TransformId=transform_id)
        # Then the matching DAG runs the job, and people review the groups it is unsure of.
        matched = matching.test()
        # And the next evaluation tests their labels too.
        third = dag.test(run_conf=conf)
    finally:
        labeler.stopped.set()
        labeler.join()
    second_states = states(second)
    assert second.state == "success", second_states
    assert (second_states["evaluate"], second_states["ask_for_labels"]) == ("success", "success")
    assert {second_states[t] for t in labeling_round} == {"skipped"}, second_states
    f1 = transform["EvaluationMetrics"]["FindMatchesMetrics"]["F1"]
    assert transform["LabelCount"] == 100 and f1 >= 0.5
    assert f"Asking nobody for labels (good_enough): good enough: F1 {f1:.4f} >= 0.5000" in logged
    history = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="quality-history/")["Contents"]]
    # One round per evaluation: the second run's, and the third's after the review (below).
    rounds = [
        json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in history if "/round-" in k
    ]

    events = asset_events(f"glue-ml-transform://{transform_id}/")
    if not HAS_ASSET_ALIASES:  # Airflow 2: a templated transform id records no dataset event,
        assert events == []  # so the matching DAG never sees an evaluation that passed
        assert states(matched) == dict.fromkeys(MATCHING_TASKS, "skipped") | {"transform_passed": "success"}
        return
    # Now the latest event is an evaluation that passed: the FindMatches job runs with the transform.
    assert set(states(matched).values()) == {"success"}, states(matched)
    output = s3.list_objects_v2(Bucket=BUCKET, Prefix="matches/")["Contents"]
    # Glue's DynamicFrame writer: run-<epoch ms>-part-r-<number>, no extension
    assert len(output) == 1 and re.fullmatch(r"matches/\d{8}T\d{6}/run-\d{13}-part-r-00000", output[0]["Key"])
    rows = list(
        csv.DictReader(
            io.StringIO(s3.get_object(Bucket=BUCKET, Key=output[0]["Key"])["Body"].read().decode())
        )
    )
    assert len(rows) == len(truth) and {"id", "match_id"} <= set(rows[0])
    summary = matched.get_task_instance("count_matches").xcom_pull(task_ids="count_matches")
    groups = {row["match_id"] for row in rows}
    assert (summary["records"], summary["match_groups"]) == (len(truth), len(groups))
    assert len(set(truth.values())) * 0.8 <= len(groups) < len(truth)  # duplicates found, not all

    # The groups it is unsure of went to people as a review set, their labels were imported, and
    # the next evaluation counted them.
    scores = {row["match_id"]: float(row["match_confidence_score"]) for row in rows}
    uncertain = [g for g, score in scores.items() if 0.4 <= score <= 0.8]
    assert len(uncertain) >= 3, "the example's min_groups_to_review must find groups to review here"
    review_file = matched.get_task_instance("review_set").xcom_pull(task_ids="review_set")
    bucket, key = review_file.removeprefix("s3://").split("/", 1)
    assert key.startswith(f"labeling-sets/review-{output[0]['Key'].split('/')[1]}/")
    review_rows = list(
        csv.DictReader(io.StringIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()))
    )
    asked = {row["id"] for row in review_rows}
    assert {row["match_id"] for row in rows if row["id"] in asked} & set(uncertain)
    labels_file_of_review = matched.get_task_instance("label_review_set").xcom_pull(
        task_ids="label_review_set"
    )
    assert labels_file_of_review == f"s3://{BUCKET}/labels/{key.split('/')[1]}/labels.csv"
    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 100 + len(review_rows)
    assert third.state == "success" and states(third)["evaluate"] == "success", states(third)
    assert sorted(r["LabelCount"] for r in rounds) == [100, 100 + len(review_rows)], rounds

    # The transform's asset: an evaluation that found no labels, the import, the passing
    # evaluation; then the review's import and the evaluation of its labels.
    assert [(e["task_run_type"], e.get("passed")) for e in events] == [
        ("EVALUATION", False),
        ("IMPORT_LABELS", None),
        ("EVALUATION", True),
        ("IMPORT_LABELS", None),
        ("EVALUATION", True),
    ]
    assert events[0]["decision"] == "keep_labeling" and events[0]["task_run_id"] is None
    assert events[1]["input_s3_path"].endswith("/labels.csv") and events[1]["replace_all_labels"] is False
    passed = events[2]
    assert (passed["decision"], passed["label_count"], passed["failed"]) == ("good_enough", 100, [])
    assert passed["metrics"]["F1"] == f1 and passed["task_run_id"].startswith("tsk-")
    labels_file = events[1]["input_s3_path"]
    assert [e["transform_id"] for e in asset_events(labels_file)] == [transform_id]
    assert events[3]["input_s3_path"] == labels_file_of_review and events[4]["label_count"] == 100 + len(
        review_rows
    )
    assert [e["transform_id"] for e in asset_events(labels_file_of_review)] == [transform_id]


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferrable"])
def test_labeling_set_generation_dag_end_to_end(people_transform, monkeypatch, deferrable):
    glue, s3, transform_id, truth = people_transform
    source = s3.get_object(Bucket=BUCKET, Key="source/records/records.csv")["Body"].read()
    rows = list(csv.reader(io.StringIO(source.decode())))
    unlabeled = [["labeling_set_id", "label", *rows[0]]] + [["s1", "", *row] for row in rows[1:13]]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(unlabeled)
    labeled = label_from_truth(out.getvalue().encode(), truth, "id")
    s3.put_object(Bucket=BUCKET, Key="labels/ready.csv", Body=labeled)
    dag = load("glue_labeling_set_generation", deferrable, monkeypatch)
    dag_run = dag.test(
        run_conf={
            "transform_id": transform_id,
            "output_s3_path": f"s3://{BUCKET}/labeling/",
            "labels_s3_path": f"s3://{BUCKET}/labels/ready.csv",
            "backup_s3_path": f"s3://{BUCKET}/backup/",
        }
    )
    assert dag_run.state == "success", states(dag_run)
    runs = glue.get_ml_task_runs(
        TransformId=transform_id, Sort={"Column": "STARTED", "SortDirection": "ASCENDING"}
    )
    assert [(r["Properties"]["TaskType"], r["Status"]) for r in runs["TaskRuns"]] == [
        ("LABELING_SET_GENERATION", "SUCCEEDED"),
        ("IMPORT_LABELS", "SUCCEEDED"),
        ("EXPORT_LABELS", "SUCCEEDED"),
    ]
    assert glue.get_ml_transform(TransformId=transform_id)["LabelCount"] == 12
    written = s3.list_objects_v2(Bucket=BUCKET, Prefix="labeling/")["Contents"]
    assert len(written) == 1 and written[0]["Key"].endswith(f"{runs['TaskRuns'][0]['TaskRunId']}.csv")
    (backup,) = s3.list_objects_v2(Bucket=BUCKET, Prefix="backup/")["Contents"]
    assert s3.get_object(Bucket=BUCKET, Key=backup["Key"])["Body"].read().count(b"\n") == 13  # header, 12


def run_incremental(dag, day: int):
    """The incremental DAG's run of 2026-12-``day`` (each test its own: Airflow 2.11's ``dag.test``
    cannot delete a run of the same date)."""
    date = pendulum.datetime(2026, 12, day, tz="UTC")
    return dag.test(**{"logical_date" if AIRFLOW_V_3_0_PLUS else "execution_date": date})


def incoming(day: int) -> str:
    """Where the run of 2026-12-``day`` finds its new records: the day before its interval's end,
    on Airflow 2.11 and 3.x alike."""
    return f"incoming/2026-12-{day - 1:02}/run-1733443200000-part-r-00000"


@pytest.fixture
def matched_before(endpoint, airflow_db, monkeypatch):
    """A transform taught one labeling set over made-up people but the last 40, whose records were
    matched on an earlier day (a FindMatches job's output, one match id an entity), and the 40 as
    the day's new records: (glue, s3, transform id, existing rows, new rows, columns)."""
    glue, s3 = client("glue", endpoint), client("s3", endpoint)
    source, truth = people(200)
    reader = csv.DictReader(io.StringIO(source.decode()))
    rows, columns = list(reader), list(reader.fieldnames or [])
    before, new = rows[:-40], rows[-40:]
    transform_id = create_findmatches_transform(
        glue, s3, bucket=BUCKET, source_csv=csv_of(before, columns), primary_key="id", name="customers"
    )
    teach_from_truth(glue, s3, transform_id, truth, BUCKET)
    entities = sorted({truth[row["id"]] for row in before})
    existing = [{**row, "match_id": str(entities.index(truth[row["id"]]))} for row in before]
    s3.put_object(
        Bucket=BUCKET,
        Key="matches/20261205T000000/run-1733356800000-part-r-00000",
        Body=csv_of(existing, [*columns, "match_id"]),
    )
    monkeypatch.setenv("GLUE_FINDMATCHES_TRANSFORM_ID", transform_id)
    monkeypatch.setenv("GLUE_FINDMATCHES_BUCKET", BUCKET)
    return glue, s3, existing, new, columns


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferrable"])
def test_incremental_dag_matches_the_days_new_records_and_keeps_every_match_id(
    matched_before, monkeypatch, deferrable
):
    _, s3, existing, new, columns = matched_before
    day = 7 if deferrable else 6
    s3.put_object(Bucket=BUCKET, Key=incoming(day), Body=csv_of(new, columns))
    dag_run = run_incremental(load("glue_findmatches_incremental", deferrable, monkeypatch), day)
    assert dag_run.state == "success", states(dag_run)
    output = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"matches/202612{day:02}T000000/")["Contents"]
    rows = [
        row
        for obj in output
        for row in csv.DictReader(
            io.StringIO(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode())
        )
    ]
    by_id = {row["id"]: row for row in rows}
    assert len(rows) == len(existing) + len(new)
    assert all(by_id[row["id"]]["match_id"] == row["match_id"] for row in existing)  # kept, every one
    assert all(0 <= float(row["match_confidence_score"]) <= 1 for row in rows)
    summary = dag_run.get_task_instance("new_records_matched").xcom_pull(task_ids="new_records_matched")
    known = {row["match_id"] for row in existing}
    joined = sum(by_id[row["id"]]["match_id"] in known for row in new)
    assert summary["new_records"] == len(new) == summary["joined_a_group"] + summary["started_a_group"]
    assert summary["joined_a_group"] == joined and 0 < joined < len(new)  # some are people seen before


def test_incremental_dag_refuses_new_records_with_other_columns_before_any_glue_job(
    matched_before, monkeypatch
):
    glue, s3, _, new, columns = matched_before
    renamed = [{("surname" if c == "last_name" else c): v for c, v in row.items()} for row in new]
    other = ["surname" if c == "last_name" else c for c in columns]
    s3.put_object(Bucket=BUCKET, Key=incoming(8), Body=csv_of(renamed, other))
    dag_run = run_incremental(load("glue_findmatches_incremental", False, monkeypatch), 8)
    assert states(dag_run)["latest_matches"] == "failed"
    assert states(dag_run)["find_incremental_matches"] in ("upstream_failed", None)
    assert glue.get_jobs()["Jobs"] == []  # no job created, none run
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="matches/20261208T000000/").get("KeyCount") == 0


def test_a_cleared_incremental_run_starts_from_an_empty_output(matched_before, monkeypatch):
    _, s3, existing, new, columns = matched_before
    s3.put_object(Bucket=BUCKET, Key=incoming(9), Body=csv_of(new, columns))
    # An earlier try's files under this run's output prefix (Glue adds files, it does not replace).
    earlier = "matches/20261209T000000/run-1733400000000-part-r-00000"
    s3.put_object(Bucket=BUCKET, Key=earlier, Body=csv_of(existing, [*columns, "match_id"]))
    dag_run = run_incremental(load("glue_findmatches_incremental", False, monkeypatch), 9)
    assert dag_run.state == "success", states(dag_run)
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="matches/20261209T000000/")["Contents"]
    ]
    assert earlier not in keys and len(keys) == 1
    summary = dag_run.get_task_instance("new_records_matched").xcom_pull(task_ids="new_records_matched")
    assert summary["new_records"] == len(new)  # each once
