"""Bad input: a clear error naming the parameter and the value, raised before any AWS call."""

from __future__ import annotations

import pytest

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLInputError
from airflow_provider_glue_labeling.operators import (
    GlueMLEvaluationOperator,
    GlueMLExportLabelsOperator,
    GlueMLImportLabelsOperator,
    GlueMLLabelingOperator,
    GlueMLLabelingSetGenerationOperator,
)
from airflow_provider_glue_labeling.sensors import GlueMLTaskRunSensor
from tests.helpers import bare_transform, client

GOOD = {"transform_id": "tfm-0123", "aws_conn_id": None, "region_name": "us-east-1"}
GENERATE = (GlueMLLabelingSetGenerationOperator, {**GOOD, "output_s3_path": "s3://my-bucket/out/"})
EXPORT = (GlueMLExportLabelsOperator, {**GOOD, "output_s3_path": "s3://my-bucket/out/"})
IMPORT = (GlueMLImportLabelsOperator, {**GOOD, "input_s3_path": "s3://my-bucket/labels.csv"})
EVALUATE = (GlueMLEvaluationOperator, GOOD)
SENSOR = (GlueMLTaskRunSensor, {**GOOD, "task_run_id": "tsk-1"})

CASES = [
    # (case id, (class, good kwargs), changed kwargs, parameter named, words of the rule)
    ("empty transform id", GENERATE, {"transform_id": ""}, "transform_id", "non-empty string"),
    ("blank transform id", GENERATE, {"transform_id": "   "}, "transform_id", "non-empty string"),
    ("too long transform id", EXPORT, {"transform_id": "t" * 256}, "transform_id", "at most 255"),
    ("non-string transform id", IMPORT, {"transform_id": 123}, "transform_id", "non-empty string"),
    ("transform id with whitespace", EVALUATE, {"transform_id": "tfm 1"}, "transform_id", "no whitespace"),
    ("transform id None", SENSOR, {"transform_id": None}, "transform_id", "rendered to nothing"),
    (
        "transform id rendered 'None'",
        GENERATE,
        {"transform_id": "None"},
        "transform_id",
        "rendered to nothing",
    ),
    (
        "https scheme",
        GENERATE,
        {"output_s3_path": "https://my-bucket/out/"},
        "output_s3_path",
        "scheme must be s3://",
    ),
    (
        "s3a scheme",
        EXPORT,
        {"output_s3_path": "s3a://my-bucket/out/"},
        "output_s3_path",
        "scheme must be s3://",
    ),
    ("local path", IMPORT, {"input_s3_path": "/tmp/labels.csv"}, "input_s3_path", "scheme must be s3://"),
    ("missing bucket", GENERATE, {"output_s3_path": "s3:///out/"}, "output_s3_path", "bucket is missing"),
    ("bare scheme", GENERATE, {"output_s3_path": "s3://"}, "output_s3_path", "bucket is missing"),
    (
        "uppercase bucket",
        GENERATE,
        {"output_s3_path": "s3://My_Bucket/x"},
        "output_s3_path",
        "lowercase letters",
    ),
    ("too short bucket", EXPORT, {"output_s3_path": "s3://ab/x"}, "output_s3_path", "3 to 63 characters"),
    ("IP address bucket", GENERATE, {"output_s3_path": "s3://192.168.1.1/x"}, "output_s3_path", "IP address"),
    ("adjacent dots", GENERATE, {"output_s3_path": "s3://my..bucket/x"}, "output_s3_path", "adjacent dots"),
    (
        "bucket ends with hyphen",
        IMPORT,
        {"input_s3_path": "s3://bucket-/x"},
        "input_s3_path",
        "starts and ends",
    ),
    ("path rendered 'None'", GENERATE, {"output_s3_path": "None"}, "output_s3_path", "rendered to nothing"),
    ("path None", EXPORT, {"output_s3_path": None}, "output_s3_path", "rendered to nothing"),
    (
        "non-bool replace_all_labels",
        IMPORT,
        {"replace_all_labels": "yes"},
        "replace_all_labels",
        "True or False",
    ),
    (
        "replace without backup",
        IMPORT,
        {"replace_all_labels": True},
        "backup_s3_path",
        "allow_label_loss=True",
    ),
    (
        "bad backup path",
        IMPORT,
        {"replace_all_labels": True, "backup_s3_path": "backup"},
        "backup_s3_path",
        "s3://",
    ),
    ("min_f1 above 1", EVALUATE, {"min_f1": 1.5}, "min_f1", "from 0 to 1"),
    ("min_precision below 0", EVALUATE, {"min_precision": -0.1}, "min_precision", "from 0 to 1"),
    ("min_recall not a number", EVALUATE, {"min_recall": "high"}, "min_recall", "from 0 to 1"),
    ("min_f1 text above 1", EVALUATE, {"min_f1": "1.5"}, "min_f1", "from 0 to 1"),
    (
        "gate without waiting",
        EVALUATE,
        {"min_f1": 0.999, "wait_for_completion": False},
        "wait_for_completion",
        "quality gate (min_f1=0.999) needs the evaluation's result",
    ),
    (
        "min_area_under_pr_curve bool",
        EVALUATE,
        {"min_area_under_pr_curve": True},
        "min_area_under_pr_curve",
        "0 to 1",
    ),
    ("negative label_floor", EVALUATE, {"label_floor": -1}, "label_floor", "a whole number, 0 or more"),
    ("fractional label_floor", EVALUATE, {"label_floor": 2.5}, "label_floor", "a whole number, 0 or more"),
    ("text over_rounds", EVALUATE, {"over_rounds": "two"}, "over_rounds", "positive int"),
    ("zero max_labels", EVALUATE, {"max_labels": 0, "min_gain": 0.01}, "max_labels", "positive int"),
    ("text max_rounds", EVALUATE, {"max_rounds": "ten", "min_gain": 0.01}, "max_rounds", "positive int"),
    (
        "max_labels without the plateau rule",
        EVALUATE,
        {"max_labels": 1000},
        "max_labels",
        "a label budget belongs to the plateau rule's decision: give min_gain too",
    ),
    (
        "require_lower_bound not a flag",
        EVALUATE,
        {"require_lower_bound": "yes"},
        "require_lower_bound",
        "True or False",
    ),
    ("zero waiter_delay", GENERATE, {"waiter_delay": 0}, "waiter_delay", "positive"),
    ("negative waiter_delay", EVALUATE, {"waiter_delay": -5}, "waiter_delay", "positive"),
    ("zero waiter_max_attempts", EXPORT, {"waiter_max_attempts": 0}, "waiter_max_attempts", "positive int"),
    (
        "fractional waiter_max_attempts",
        GENERATE,
        {"waiter_max_attempts": 2.5},
        "waiter_max_attempts",
        "positive int",
    ),
    (
        "string wait_for_completion",
        GENERATE,
        {"wait_for_completion": "false"},
        "wait_for_completion",
        "True or False",
    ),
    ("task run id None", SENSOR, {"task_run_id": None}, "task_run_id", "rendered to nothing"),
    ("task run id 'None'", SENSOR, {"task_run_id": "None"}, "task_run_id", "rendered to nothing"),
    ("empty task run id", SENSOR, {"task_run_id": ""}, "task_run_id", "TaskRunId"),
    (
        "deferred poke_interval 0",
        SENSOR,
        {"deferrable": True, "poke_interval": 0},
        "poke_interval",
        "positive",
    ),
]


@pytest.mark.parametrize(("case", "target", "change", "parameter", "rule"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_before_any_aws_call(aws, case, target, change, parameter, rule):
    cls, good = target
    task = cls(task_id="t", **{**good, **change})
    with pytest.raises(GlueMLInputError) as excinfo:
        task.execute({})
    message = str(excinfo.value)
    assert f"Invalid {parameter}=" in message
    assert repr(change.get(parameter, None)) in message or parameter == "backup_s3_path"
    assert rule in message
    assert emulator.calls() == [], "no AWS call was made"


def test_replace_without_backup_does_not_blame_a_template(aws):
    task = IMPORT[0](task_id="t", **{**IMPORT[1], "replace_all_labels": True})
    with pytest.raises(GlueMLInputError) as excinfo:
        task.execute({})
    assert "rendered to nothing" not in str(excinfo.value)


@pytest.mark.parametrize("text", ["0.5", " 0.5", "1", "0"])
def test_thresholds_rendered_as_text_are_read_as_numbers(aws, text):
    task = EVALUATE[0](task_id="t", **{**EVALUATE[1], "min_f1": text, "min_recall": text})
    task.validate()
    thresholds = task.gate()[0]
    assert thresholds["F1"] == thresholds["Recall"] == float(text)


def test_the_plateau_rule_rendered_as_text_is_read_as_numbers_and_flags(aws):
    rendered = {"min_gain": "0.02", "over_rounds": "4", "label_floor": "0", "require_lower_bound": "True"}
    budget = {"max_labels": "1500", "max_rounds": "None"}  # a param of None renders as the text "None"
    task = EVALUATE[0](
        task_id="t", **{**EVALUATE[1], **rendered, **budget, "history_s3_path": "s3://bucket/h/"}
    )
    task.validate()
    gate = task.gate()
    assert (gate.min_gain, gate.over_rounds, gate.label_floor, gate.require_lower_bound) == (0.02, 4, 0, True)
    assert (gate.max_labels, gate.max_rounds) == (1500, None)


@pytest.mark.parametrize("target", [GENERATE, IMPORT, EVALUATE, SENSOR], ids=lambda t: t[0].__name__)
def test_no_region_anywhere_is_named_before_any_call(aws, monkeypatch, target):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AIRFLOW_CONN_NO_REGION", '{"conn_type": "aws"}')
    task = target[0](task_id="t", **{**target[1], "aws_conn_id": "no_region", "region_name": None})
    with pytest.raises(GlueMLInputError) as excinfo:
        task.execute({})
    assert "No AWS region for connection 'no_region'" in str(excinfo.value)
    assert "region_name" in str(excinfo.value)
    assert emulator.calls() == []


def test_trigger_without_region_ends_with_the_same_clear_error(aws, monkeypatch):
    import asyncio

    from airflow_provider_glue_labeling.triggers import GlueMLTaskRunTrigger

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    trigger = GlueMLTaskRunTrigger(
        transform_id="tfm-1", task_run_id="tsk-1", aws_conn_id=None, waiter_delay=0.1
    )

    async def first_event():
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "error"
    assert "No AWS region for the default boto3 session" in event["message"]


def test_default_wait_lasts_as_long_as_a_glue_run_may(aws):
    for delay in (60, 30, 7):
        task = GENERATE[0](task_id="t", **{**GENERATE[1], "waiter_delay": delay})
        assert task.max_polls * delay >= 48 * 3600 > (task.max_polls - 1) * delay


def test_unknown_transform_is_named_with_its_region(aws):
    task = GlueMLLabelingSetGenerationOperator(task_id="t", **{**GENERATE[1], "transform_id": "tfm-x"})
    with pytest.raises(GlueMLError, match=r"Glue ML transform 'tfm-x' not found in region us-east-1"):
        task.execute({})


def test_task_run_of_another_transform_is_named(aws):
    glue = client("glue")
    transform_id = bare_transform(glue)
    sensor = GlueMLTaskRunSensor(
        task_id="t", **{**SENSOR[1], "transform_id": transform_id, "task_run_id": "tsk-other"}
    )
    with pytest.raises(GlueMLError, match=rf"task run 'tsk-other' of transform '{transform_id}' not found"):
        sensor.poke({})


LABELS = "s3://labels-bkt/people-labels/round-1.csv"


@pytest.mark.parametrize(
    ("parameter", "value", "rule"),
    [
        ("labels_s3_path", "s3://labels-bkt/people-labels/", "expected the key of one file"),
        ("labels_s3_path", "people.csv", "expected an S3 URI"),
        ("labeling_set_s3_path", "", "expected an S3 URI"),
        ("poke_interval", 0, "poke_interval"),
        ("human_in_the_loop", "yes", "human_in_the_loop"),
        ("assigned_users", [3], 'expected user ids or {"id": ..., "name": ...} dicts'),
        ("assigned_users", [{"name": "bea"}], 'expected user ids or {"id": ..., "name": ...} dicts'),
        ("overlap", 1.5, "expected a number from 0 to 1"),
        ("overlap", -0.1, "expected a number from 0 to 1"),
        ("overlap", "half", "expected a number from 0 to 1"),
        ("overlap", None, "expected a number from 0 to 1"),
        ("min_agreement", 2, "expected a number from -1 to 1"),
        ("min_agreement", 0.4, "give an overlap above 0"),  # a gate with nothing labeled twice
    ],
)
def test_bad_parameters_are_refused_before_any_call(aws, parameter, value, rule):
    arguments = {
        "labeling_set_s3_path": "s3://labels-bkt/labeling/",
        "labels_s3_path": LABELS,
        "poke_interval": 1,
        "human_in_the_loop": False,
        parameter: value,
    }
    task = GlueMLLabelingOperator(
        task_id="label", transform_id="tfm-1", aws_conn_id=None, region_name="us-east-1", **arguments
    )
    with pytest.raises(GlueMLInputError, match=rule) as error:
        task.execute({})
    assert parameter in str(error.value)


def test_assigned_users_need_a_human_in_the_loop_task(aws):
    task = GlueMLLabelingOperator(
        task_id="label",
        transform_id="tfm-1",
        labeling_set_s3_path="s3://labels-bkt/labeling/",
        labels_s3_path=LABELS,
        human_in_the_loop=False,
        assigned_users=["bea"],
        aws_conn_id=None,
        region_name="us-east-1",
    )
    with pytest.raises(GlueMLInputError, match="human_in_the_loop=True") as error:
        task.execute({})
    assert "assigned_users" in str(error.value) and "bea" in str(error.value)


def test_an_asset_of_another_transform_is_refused_before_any_call(aws):
    from airflow_provider_glue_labeling.assets import transform_asset

    # A fixed transform id: the operator makes the transform's asset an outlet of its own.
    assert [o.uri for o in EVALUATE[0](task_id="t", **EVALUATE[1]).outlets] == [
        "glue-ml-transform://tfm-0123/"
    ]
    task = IMPORT[0](task_id="t", **IMPORT[1], outlets=[transform_asset("tfm-other")])
    with pytest.raises(GlueMLInputError) as error:
        task.execute({})
    assert error.value.parameter == "outlets" and "glue-ml-transform://tfm-other/" in str(error.value)
    assert "transform_id='tfm-0123'" in str(error.value)
    assert emulator.calls() == []
    with pytest.raises(GlueMLInputError, match=r"transform_id.*not a template"):
        transform_asset("{{ params.transform_id }}")
