"""GlueMLTaskRunTrigger: exact serialization, a rebuild from it, and real runs on the emulator server."""

from __future__ import annotations

import asyncio

import pytest

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people
from airflow_provider_glue_labeling.exceptions import GlueMLError
from airflow_provider_glue_labeling.glue.polling import task_run_from_event
from airflow_provider_glue_labeling.triggers import CLIENTS, GlueMLTaskRunTrigger
from tests.helpers import client

FIELDS = {
    "transform_id": "tfm-1",
    "task_run_id": "tsk-1",
    "waiter_delay": 5,
    "waiter_max_attempts": 7,
    "aws_conn_id": "my_aws",
    "region_name": "eu-west-1",
    "verify": "/etc/ca.pem",
    "botocore_config": {"retries": {"mode": "adaptive", "max_attempts": 10}},
    "cancel_on_kill": True,
}


def test_serialize_is_exact_and_rebuilds_the_same_trigger():
    trigger = GlueMLTaskRunTrigger(**FIELDS)
    assert trigger.serialize() == ("airflow_provider_glue_labeling.triggers.GlueMLTaskRunTrigger", FIELDS)
    classpath, kwargs = trigger.serialize()
    rebuilt = GlueMLTaskRunTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, FIELDS)
    hook = rebuilt.hook()
    assert (hook.aws_conn_id, hook.region_name, hook.verify) == ("my_aws", "eu-west-1", "/etc/ca.pem")
    assert hook.config.retries == {"mode": "adaptive", "max_attempts": 10}


@pytest.fixture
def glue_run(endpoint):
    glue, s3 = client("glue", endpoint), client("s3", endpoint)
    source, _ = people(60)
    transform_id = create_findmatches_transform(
        glue, s3, bucket="trig-bucket", source_csv=source, primary_key="id"
    )

    def start():
        return glue.start_ml_labeling_set_generation_task_run(
            TransformId=transform_id, OutputS3Path="s3://trig-bucket/out/"
        )["TaskRunId"]

    return glue, transform_id, start


def trigger_for(transform_id, run_id, **kwargs):
    return GlueMLTaskRunTrigger(
        transform_id=transform_id,
        task_run_id=run_id,
        waiter_delay=kwargs.pop("delay", 0.1),
        waiter_max_attempts=kwargs.pop("attempts", 100),
        region_name="us-east-1",
        **kwargs,
    )


async def first_event(trigger):
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def test_run_yields_success_with_the_run_summary(glue_run):
    _, transform_id, start = glue_run
    run_id = start()
    event = asyncio.run(first_event(trigger_for(transform_id, run_id)))
    assert event == {
        "status": "success",
        "task_run": {
            "TaskRunId": run_id,
            "Status": "SUCCEEDED",
            "TaskType": "LABELING_SET_GENERATION",
            "ExecutionTime": event["task_run"]["ExecutionTime"],
            "S3Path": "s3://trig-bucket/out/",
        },
    }
    assert task_run_from_event(event) == event["task_run"]


def test_failed_run_event_carries_status_and_error_string(glue_run):
    _, transform_id, start = glue_run
    emulator.force_outcome("FAILED", "Labeling set generation failed: out of memory")
    run_id = start()
    event = asyncio.run(first_event(trigger_for(transform_id, run_id)))
    assert event["status"] == "error"
    assert (event["run_status"], event["error_string"]) == (
        "FAILED",
        "Labeling set generation failed: out of memory",
    )
    with pytest.raises(GlueMLError) as excinfo:
        task_run_from_event(event)
    assert str(excinfo.value) == (
        f"Glue ML LABELING_SET_GENERATION run '{run_id}' of transform '{transform_id}' ended FAILED: "
        "Labeling set generation failed: out of memory"
    )
    assert excinfo.value.status == "FAILED"


def test_running_out_of_attempts_is_an_error_event(glue_run):
    _, transform_id, start = glue_run
    emulator.configure(run_seconds=30)
    run_id = start()
    event = asyncio.run(first_event(trigger_for(transform_id, run_id, delay=0.05, attempts=3)))
    assert event["status"] == "error"
    assert "did not finish after 3 polls" in event["message"]


def test_unknown_run_fails_at_once(glue_run):
    _, transform_id, _ = glue_run
    event = asyncio.run(first_event(trigger_for(transform_id, "tsk-missing")))
    assert event["status"] == "error" and event["code"] == "EntityNotFoundException"
    assert "tsk-missing" in event["message"]


@pytest.fixture
def made_clients(monkeypatch):
    """The aiobotocore Glue clients made from now on (a spy on aiobotocore, not on the provider)."""
    from aiobotocore.session import AioSession

    made = []
    create_client = AioSession.create_client

    def spy(self, service_name, *args, **kwargs):
        made.append(service_name)
        return create_client(self, service_name, *args, **kwargs)

    monkeypatch.setattr(AioSession, "create_client", spy)
    return made


def test_waits_share_one_client_that_closes_after_the_last(glue_run, made_clients):
    _, transform_id, start = glue_run
    emulator.configure(run_seconds=1.0)
    first, second = trigger_for(transform_id, start()), trigger_for(transform_id, start())

    async def scenario():
        waits = [asyncio.ensure_future(first_event(t)) for t in (first, second)]
        while len(emulator.calls("GetMLTaskRun")) < 4:
            await asyncio.sleep(0.02)
        assert made_clients == ["glue"]  # both waits are polling, with one client
        async with CLIENTS.use(first) as client:  # the client the two waits are using
            events = await asyncio.gather(*waits)
        assert made_clients == ["glue"]
        return events, client

    events, client = asyncio.run(scenario())
    assert [e["status"] for e in events] == ["success", "success"]

    async def use_closed():
        await client.get_ml_task_run(TransformId=transform_id, TaskRunId="tsk-x")

    with pytest.raises(Exception) as excinfo:
        asyncio.run(use_closed())
    assert not isinstance(excinfo.value, GlueMLError)


def test_a_failed_or_cancelled_wait_leaves_the_shared_client_to_the_others(glue_run, made_clients):
    _, transform_id, start = glue_run
    emulator.configure(run_seconds=1.5)
    healthy = trigger_for(transform_id, start())
    failing = trigger_for(transform_id, "tsk-unknown")
    cancelled = trigger_for(transform_id, start())

    async def scenario():
        tasks = [asyncio.ensure_future(first_event(t)) for t in (healthy, failing, cancelled)]
        failed = await tasks[1]
        assert failed["status"] == "error" and failed["code"] == "EntityNotFoundException"
        tasks[2].cancel()
        with pytest.raises(asyncio.CancelledError):
            await tasks[2]
        event = await tasks[0]
        assert made_clients == ["glue"]
        return event

    assert asyncio.run(scenario())["status"] == "success"


def test_triggers_of_other_connections_get_their_own_clients(glue_run, made_clients):
    _, transform_id, start = glue_run
    default = trigger_for(transform_id, start())
    tuned = trigger_for(transform_id, start(), botocore_config={"read_timeout": 30})

    async def scenario():
        events = await asyncio.gather(first_event(default), first_event(tuned))
        assert made_clients == ["glue", "glue"]
        return events

    assert [e["status"] for e in asyncio.run(scenario())] == ["success", "success"]
