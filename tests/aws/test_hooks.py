"""GlueMLHook: error translation, pagination and the synchronous wait."""

from __future__ import annotations

import time

import pytest
from botocore.stub import Stubber

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.exceptions import GlueMLError
from airflow_provider_glue_labeling.hooks import GlueMLHook
from tests.helpers import bare_transform, client


@pytest.fixture
def hook(aws):
    return GlueMLHook(aws_conn_id=None, region_name="us-east-1")


def test_access_denied_fails_a_wait_at_once(hook):
    with Stubber(hook.conn) as stub:
        stub.add_client_error(
            "get_ml_task_run",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform: glue:GetMLTaskRun",
            http_status_code=400,
        )
        started = time.monotonic()
        with pytest.raises(GlueMLError) as excinfo:
            hook.wait_for_task_run("tfm-1", "tsk-1", waiter_delay=5, waiter_max_attempts=10)
    assert time.monotonic() - started < 1, "no retry of a permanent error"
    assert str(excinfo.value) == (
        "Glue get_ml_task_run failed for task run 'tsk-1' of transform 'tfm-1' in region us-east-1: "
        "AccessDeniedException: User is not authorized to perform: glue:GetMLTaskRun"
    )
    assert not excinfo.value.transient


def test_list_task_runs_follows_next_token_and_filters(hook):
    glue = client("glue")
    transform_id = bare_transform(glue)
    emulator.configure(max_concurrent_runs=2000, run_seconds=60, starting_seconds=0)
    started = [
        glue.start_ml_labeling_set_generation_task_run(TransformId=transform_id, OutputS3Path="s3://b-b/o/")[
            "TaskRunId"
        ]
        for _ in range(1003)
    ]
    s3 = client("s3")
    s3.create_bucket(Bucket="b-b")
    s3.put_object(Bucket="b-b", Key="l.csv", Body=b"labeling_set_id,label\ns1,a\n")
    glue.start_import_labels_task_run(TransformId=transform_id, InputS3Path="s3://b-b/l.csv")  # another type
    runs = hook.list_task_runs(
        transform_id, task_type="LABELING_SET_GENERATION", statuses=("STARTING", "RUNNING")
    )
    assert sorted(r["TaskRunId"] for r in runs) == sorted(started)
    assert len(emulator.calls("GetMLTaskRuns")) == 3, (
        "STARTING: one page; RUNNING: 1003 runs in pages of 1000"
    )


def test_wait_counts_polls_not_errors(hook, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore retries nothing: the wait's own backoff shows
    glue = client("glue")
    transform_id = bare_transform(glue)
    emulator.configure(polls_to_finish=2)
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path="s3://no-bucket-x/e/"
    )["TaskRunId"]
    emulator.inject_fault("GetMLTaskRun", "throttle", calls=range(1, 30))
    sleeps: list[float] = []
    with pytest.raises(GlueMLError, match=r"Input table db\.missing not found"):
        hook.wait_for_task_run(
            transform_id, run_id, waiter_delay=4, waiter_max_attempts=3, sleep=sleeps.append
        )
    assert sleeps[:4] == [1.0, 2.0, 4.0, 4.0], "backoff doubles up to the waiter delay"
    assert len(sleeps) == 29 + 2, "29 throttled calls retried, then two polls 4 s apart"


def test_stopping_is_waited_for_until_stopped(hook):
    """STOPPING still holds a concurrency slot: the wait and the sensor go on until STOPPED."""
    from airflow_provider_glue_labeling.sensors import GlueMLTaskRunSensor

    glue = client("glue")
    transform_id = bare_transform(glue)
    emulator.configure(run_seconds=30, stop_seconds=4.0)
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path="s3://b-b/o/"
    )["TaskRunId"]
    glue.cancel_ml_task_run(TransformId=transform_id, TaskRunId=run_id)
    sensor = GlueMLTaskRunSensor(
        task_id="s", transform_id=transform_id, task_run_id=run_id, aws_conn_id=None, region_name="us-east-1"
    )
    assert glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)["Status"] == "STOPPING"
    assert sensor.poke({}) is False
    with pytest.raises(GlueMLError) as excinfo:
        hook.wait_for_task_run(transform_id, run_id, waiter_delay=0.1, waiter_max_attempts=100)
    assert excinfo.value.status == "STOPPED"
    with pytest.raises(GlueMLError, match="ended STOPPED"):
        sensor.poke({})


def test_export_of_a_transform_without_labels_says_so(hook):
    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people

    transform_id = create_findmatches_transform(
        client("glue"), client("s3"), bucket="no-labels", source_csv=people(20)[0], primary_key="id"
    )
    with pytest.raises(GlueMLError) as excinfo:
        hook.start_task_run("EXPORT_LABELS", transform_id, OutputS3Path="s3://no-labels/e/")
    assert f"Glue ML transform '{transform_id}' has no labels yet in region us-east-1" in str(excinfo.value)
    assert "not found" not in str(excinfo.value).split(":")[0]


def test_a_client_names_its_caller_as_the_amazon_provider_finds_it(aws, monkeypatch):
    """The hooks name the class calling them in each client's user agent as the Amazon provider's
    ``AwsBaseHook`` does, by walking the frames alone: not with ``inspect.stack()``, which reads
    the source of every frame on the stack for each client."""
    import inspect

    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.providers.common.compat.sdk import BaseOperator, BaseSensorOperator

    from airflow_provider_glue_labeling.hooks import AwsConnection

    hooks = [GlueMLHook(region_name="us-east-1"), AwsConnection(region_name="us-east-1").s3().hook]

    def both() -> list[tuple[str, str]]:
        return [(hook._get_caller(), AwsBaseHook._get_caller(hook)) for hook in hooks]

    class LabelsReport(BaseOperator):
        def execute(self, context):
            return both(), [hook.get_client_type().meta.config.user_agent_extra for hook in hooks]

    class LabelsArrived(BaseSensorOperator):
        def poke(self, context):
            return both()

    def execute():  # a function of that name, with no self
        return both()

    named, agents = LabelsReport(task_id="report").execute({})
    assert named == [("LabelsReport", "LabelsReport")] * 2
    assert all("Caller/LabelsReport" in agent for agent in agents), agents
    for callers in (both(), LabelsArrived(task_id="arrived").poke({}), execute()):
        assert [ours for ours, _ in callers] == [theirs for _, theirs in callers]
    assert execute() == [("Unknown", "Unknown")] * 2

    class MakesClients(BaseOperator):
        def execute(self, context):
            return [hook.get_client_type().meta.config.user_agent_extra for hook in hooks]

    stacks: list[object] = []
    monkeypatch.setattr(inspect, "stack", lambda *args, **kwargs: stacks.append(args) or [])
    hooks = [GlueMLHook(region_name="us-east-1"), AwsConnection(region_name="us-east-1").s3().hook]
    agents = MakesClients(task_id="clients").execute({})
    assert all("Caller/MakesClients" in agent for agent in agents) and stacks == [], (agents, stacks)
