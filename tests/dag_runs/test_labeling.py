"""GlueMLLabelingOperator: the DAG waits for people's labels, checks them, and the import goes on."""

from __future__ import annotations

import csv
import io
import threading

import pytest

from airflow_provider_glue_labeling.emulator.seed import label_from_truth, people
from airflow_provider_glue_labeling.operators import GlueMLLabelingOperator
from airflow_provider_glue_labeling.validation import GlueMLInputError, unlabeled_sets_problem
from airflow_provider_glue_labeling.versions import HAS_UI_PLUGINS
from tests.helpers import TRIES, client
from tests.helpers import run_dag as run

LABELS = "s3://labels-bkt/people-labels/round-1.csv"


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


def test_unlabeled_sets_problem_names_each_missing_set():
    labeling_set = b"labeling_set_id,label,id\ns1,,1\ns1,,2\ns2,,3\ns3,,4\n"
    assert (
        unlabeled_sets_problem([labeling_set], b"labeling_set_id,label,id\ns1,a,1\ns1,a,2\ns2,b,3\ns3,c,4\n")
        is None
    )
    problem = unlabeled_sets_problem([labeling_set], b"labeling_set_id,label,id\ns2,b,3\n")
    assert problem == "has no labels for the labeling set(s) s1, s3: label every record of every set"


def test_waiting_in_the_worker_ends_in_a_sensor_timeout_that_is_not_retried(
    transform, endpoint, tmp_path, task_log
):
    state, states, _ = run("labeling_deadline", transform, tmp_path)
    assert (state, states["label"], TRIES["label"]) == ("failed", "failed", 1)
    assert f"No labels file at {LABELS} after 0.3s" in task_log()


@pytest.mark.parametrize(
    ("parameter", "value", "rule"),
    [
        ("labels_s3_path", "s3://labels-bkt/people-labels/", "expected the key of one file"),
        ("labels_s3_path", "people.csv", "expected an S3 URI"),
        ("labeling_set_s3_path", "", "expected an S3 URI"),
        ("poke_interval", 0, "poke_interval"),
    ],
)
def test_bad_parameters_are_refused_before_any_call(aws, parameter, value, rule):
    arguments = {
        "labeling_set_s3_path": "s3://labels-bkt/labeling/",
        "labels_s3_path": LABELS,
        "poke_interval": 1,
        parameter: value,
    }
    task = GlueMLLabelingOperator(
        task_id="label", transform_id="tfm-1", aws_conn_id=None, region_name="us-east-1", **arguments
    )
    with pytest.raises(GlueMLInputError, match=rule) as error:
        task.execute({})
    assert parameter in str(error.value)


# -- the labeling page's labels file (labeling.py), apart from the web ------------------------------
SET_FILE = b"labeling_set_id,label,id,name\ns1,,1,Ada\ns1,,2,Ada L.\ns1,,3,Alan\ns2,,4,Grace\ns2,,5,Grce\n"


def test_a_labels_file_from_the_groups_keeps_the_columns_and_gives_one_label_per_group():
    from airflow_provider_glue_labeling.labels.format import LabelingSet
    from airflow_provider_glue_labeling.validation import labels_file_problems

    labeling = LabelingSet.parse([SET_FILE])
    assert labeling.columns == ["id", "name"] and labeling.records() == 5
    drafts = {"s1": {"groups": [0, 0, 2], "done": True}, "s2": {"groups": [1, 0], "done": True}}
    data = labeling.labels_file(drafts)
    assert data == (
        b"labeling_set_id,label,id,name\ns1,A,1,Ada\ns1,A,2,Ada L.\ns1,B,3,Alan\ns2,A,4,Grace\ns2,B,5,Grce\n"
    )
    assert labels_file_problems(data, ["id", "name"]) == (None, [])
    assert unlabeled_sets_problem([SET_FILE], data) is None


def test_a_labels_file_is_refused_while_a_set_is_not_done_naming_it():
    from airflow_provider_glue_labeling.labels.format import LabelingError, LabelingSet

    labeling = LabelingSet.parse([SET_FILE])
    with pytest.raises(LabelingError, match=r"labeling set\(s\) s2 not labeled yet"):
        labeling.labels_file(
            {"s1": {"groups": [0, 1, 2], "done": True}, "s2": {"groups": [0, 1], "done": False}}
        )


@pytest.mark.parametrize(
    ("set_id", "groups", "done", "message"),
    [
        ("s9", [0, 1], True, "set_id 's9' is not a set of this labeling set"),
        (["s2"], [0, 1], True, r"set_id \['s2'\] is not a set of this labeling set"),
        ("s2", [0], True, "must be 2 group numbers from 0 to 1"),
        ("s2", [0, 2], True, "must be 2 group numbers from 0 to 1"),
        ("s2", [0, True], True, "must be 2 group numbers from 0 to 1"),
        ("s2", [0, 1], "yes", "done of labeling set 's2' must be true or false"),
    ],
)
def test_a_draft_that_does_not_fit_its_set_is_refused(set_id, groups, done, message):
    from airflow_provider_glue_labeling.labels.format import LabelingError, LabelingSet

    with pytest.raises(LabelingError, match=message):
        LabelingSet.parse([SET_FILE]).check_draft(set_id, groups, done)


def test_a_labeling_set_with_no_records_is_not_submitted():
    from airflow_provider_glue_labeling.labels.format import LabelingError, LabelingSet

    with pytest.raises(LabelingError, match="the labeling set has no records to label"):
        LabelingSet.parse([b"labeling_set_id,label,id,name\n"]).labels_file({})


def test_labels_run_a_to_z_then_aa():
    from airflow_provider_glue_labeling.labels.format import label_name

    assert [label_name(n) for n in (0, 1, 25, 26, 27, 51, 52)] == ["A", "B", "Z", "AA", "AB", "AZ", "BA"]
