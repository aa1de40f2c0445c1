"""GlueMLLabelingOperator: the DAG waits for people's labels, checks them, and the import goes on."""

from __future__ import annotations

import csv
import io
import threading

import pytest

from airflow_provider_glue_labeling.emulator.seed import label_from_truth, people
from airflow_provider_glue_labeling.versions import HAS_UI_PLUGINS
from tests.helpers import BUCKET, HEADER, TRIES, client, load_test_dags
from tests.helpers import run_dag as run

LABELS = "s3://labels-bkt/people-labels/round-1.csv"
LABELING_SET = (
    HEADER
    + b"s1,,p1,Ann,Lee,ann@example.com,555-0100,Oslo,1980\ns1,,p2,Anne,Lee,ann@example.com,555-0100,Oslo,1980\n"
)


def labeler(endpoint, drop_set=False):
    """People at work: once the labeling set is there, label it from the truth and upload the file."""
    s3 = client("s3", endpoint)
    done = threading.Event()

    def work():
        while not done.wait(0.1):
            listed = s3.list_objects_v2(Bucket="labels-bkt", Prefix="labeling/").get("Contents", [])
            if listed:
                labeling_set = s3.get_object(Bucket="labels-bkt", Key=listed[0]["Key"])["Body"].read()
                labels = label_from_truth(labeling_set, people(120)[1], "id")
                if drop_set:  # leave the first set unlabeled
                    rows = list(csv.reader(io.StringIO(labels.decode())))
                    first = rows[1][0]
                    labels = "".join(",".join(r) + "\n" for r in rows if r[0] != first).encode()
                s3.put_object(Bucket="labels-bkt", Key="people-labels/round-1.csv", Body=labels)
                return

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return done


# Waiting in the worker is tested with people at the labeling page where it runs (Airflow 3.1+).
@pytest.mark.parametrize("mode", ["deferrable"] if HAS_UI_PLUGINS else ["deferrable", "poke"])
def test_the_dag_waits_for_the_labels_and_imports_them(mode, transform, endpoint, tmp_path):
    people_at_work = labeler(endpoint)
    try:
        state, states, result = run(f"label_and_import_{mode}", transform, tmp_path, labels_a=LABELS)
    finally:
        people_at_work.set()
    assert state == "success", states
    assert result["labels"] == LABELS
    glue = client("glue", endpoint)
    imports = glue.get_ml_task_runs(TransformId=transform, Filter={"TaskRunType": "IMPORT_LABELS"})[
        "TaskRuns"
    ]
    assert [r["Properties"]["ImportLabelsTaskRunProperties"]["InputS3Path"] for r in imports] == [LABELS]
    assert glue.get_ml_transform(TransformId=transform)["LabelCount"] > 0


def test_labels_that_leave_a_set_unlabeled_fail_naming_the_set(transform, endpoint, tmp_path, task_log):
    people_at_work = labeler(endpoint, drop_set=True)
    try:
        _state, states, _ = run("label_and_import_deferrable", transform, tmp_path, labels_a=LABELS)
    finally:
        people_at_work.set()
    assert states["label"] == "failed" and states["import_labels"] == "upstream_failed"
    assert f"Labels file {LABELS} has no labels for the labeling set(s) " in task_log()


# The human-in-the-loop wait's timeout is tested on a deployment (tests/deployment): dag.test()
# never ends Airflow 3.3's awaiting_input (the scheduler does), and cannot run HITLTrigger (3.1, 3.2).
@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_the_wait_ends_at_its_timeout_in_one_try_not_retried(mode, transform, endpoint, tmp_path, task_log):
    client("s3", endpoint).put_object(Bucket=BUCKET, Key="labeling/set.csv", Body=LABELING_SET)
    state, states, _ = run(f"labeling_deadline_{mode}", transform, tmp_path)
    assert (state, states["label"], TRIES["label"]) == ("failed", "failed", 1)  # retries=2
    log = task_log()
    assert "Sensor has timed out" in log or f"Sensor timed out after 1s: no labels file at {LABELS}" in log


def test_soft_fail_skips_the_task_at_its_timeout(transform, endpoint, tmp_path, task_log):
    client("s3", endpoint).put_object(Bucket=BUCKET, Key="labeling/set.csv", Body=LABELING_SET)
    _state, states, _ = run("labeling_deadline_soft_fail", transform, tmp_path)
    assert (states["label"], TRIES["label"]) == ("skipped", 1)
    assert f"no labels file at {LABELS}" in task_log()


# -- a retry is not a Clear ------------------------------------------------------------------------


def labels_kept_aside(endpoint) -> list[str]:
    listed = client("s3", endpoint).list_objects_v2(Bucket=BUCKET, Prefix="people-labels/")
    return [o["Key"] for o in listed.get("Contents", []) if ".replaced-" in o["Key"]]


def test_a_retry_after_the_task_took_its_labels_takes_them_again(transform, endpoint, tmp_path, task_log):
    """The first try takes the labels file, then fails (post_execute): the retry takes the same
    file, and the labels people gave are neither kept aside nor asked for again."""
    s3 = client("s3", endpoint)
    s3.put_object(Bucket=BUCKET, Key="labeling/set.csv", Body=LABELING_SET)
    labels = label_from_truth(LABELING_SET, {"p1": "ann", "p2": "ann"}, "id")
    s3.put_object(Bucket=BUCKET, Key="people-labels/round-1.csv", Body=labels)

    state, states, _ = run("label_fails_after_taking", transform, tmp_path, labels_a=LABELS)

    assert (state, states["label"], TRIES["label"]) == ("success", "success", 2), states
    log = task_log()
    assert "the first try fails after it took the labels file" in log
    assert "labeling again" not in log
    assert "An earlier try of this task took" in log
    assert labels_kept_aside(endpoint) == []
    assert s3.get_object(Bucket=BUCKET, Key="people-labels/round-1.csv")["Body"].read() == labels


def test_a_clear_after_the_task_took_its_labels_asks_again(transform, endpoint, tmp_path, task_log):
    """A user's Clear of a labeling task that took its labels: the file is kept aside, the task
    waits anew (here until its timeout: nobody labels again)."""
    s3 = client("s3", endpoint)
    s3.put_object(Bucket=BUCKET, Key="labeling/set.csv", Body=LABELING_SET)
    labels = label_from_truth(LABELING_SET, {"p1": "ann", "p2": "ann"}, "id")
    s3.put_object(Bucket=BUCKET, Key="people-labels/round-1.csv", Body=labels)
    dags = load_test_dags()
    conf = {"transform_id": transform, "output_s3_path": f"s3://{BUCKET}/labeling/", "labels_a": LABELS}
    dag_run = dags.DAGS["label_fails_after_taking"].test(run_conf=conf)
    assert dag_run.state == "success"

    states = dags.clear_and_run("label_fails_after_taking", dag_run.run_id, ["label"])

    assert states == {"label": "failed"}  # timed out: nobody labeled again
    assert "before it was cleared: labeling again" in task_log()
    (aside,) = labels_kept_aside(endpoint)
    assert s3.get_object(Bucket=BUCKET, Key=aside)["Body"].read() == labels


def label_through(proxy, transform, endpoint):
    """A labeling task whose ``botocore_config`` names ``proxy`` takes its labels file."""
    s3 = client("s3", endpoint)
    s3.put_object(Bucket=BUCKET, Key="labeling/set.csv", Body=LABELING_SET)
    labels = label_from_truth(LABELING_SET, {"p1": "ann", "p2": "ann"}, "id")
    s3.put_object(Bucket=BUCKET, Key="people-labels/round-1.csv", Body=labels)
    conf = {"transform_id": transform, "output_s3_path": f"s3://{BUCKET}/labeling/", "labels_a": LABELS}
    dag = load_test_dags().DAGS["label_through_a_proxy"]
    assert dag.get_task("label").botocore_config == proxy.config()  # the DAG file names it
    dag_run = dag.test(run_conf=conf)
    assert dag_run.state == "success"
    return dag_run


def test_the_labeling_task_reaches_s3_through_its_botocore_config(transform, endpoint, proxy):
    label_through(proxy, transform, endpoint)
    went = {(seen["method"], seen["path"]) for seen in proxy.seen}
    assert ("PUT", "/labels-bkt/people-labels/_round-1.csv.taken.json") in went, went


@pytest.mark.skipif(not HAS_UI_PLUGINS, reason="the labeling page needs Airflow 3.1+")
def test_the_labeling_page_reaches_s3_and_glue_through_the_tasks_botocore_config(transform, endpoint, proxy):
    """The page makes its clients from all four of the task's rendered connection fields."""
    from airflow.utils.session import create_session

    from airflow_provider_glue_labeling.ui import tasks

    dag_run = label_through(proxy, transform, endpoint)
    proxy.seen.clear()
    with create_session() as session:
        (task,) = tasks.labeling_tasks(session, dag_id="label_through_a_proxy", run_id=dag_run.run_id)
        assert task.connection.botocore_config == proxy.config()
        view = task.view("alice")
    assert view["submitted"] is True and view["quality"]["LabelCount"] == 0
    went = {(seen["method"], seen["path"], seen["target"]) for seen in proxy.seen}
    assert ("POST", "/", "AWSGlue.GetMLTransform") in went, went  # the transform's quality
    assert ("GET", "/labels-bkt", "") in went, went  # the labeling set's and the history's listings
    assert ("HEAD", "/labels-bkt/people-labels/round-1.csv", "") in went, went  # submitted?
