"""The quality history in S3: one object per round, read back oldest first."""

from __future__ import annotations

import threading

from airflow_provider_glue_labeling.history import read_history
from airflow_provider_glue_labeling.hooks import AwsConnection
from airflow_provider_glue_labeling.quality.rounds import record_round
from tests.helpers import client

HISTORY = "s3://labels-bkt/quality-history/"


def test_rounds_are_appended_and_read_back_oldest_first(aws):
    client("s3").create_bucket(Bucket="labels-bkt")
    s3 = AwsConnection(None).s3()
    for when in ("2026-11-29T10:00:00+00:00", "2026-11-01T10:00:00+00:00", "2026-11-15T10:00:00+00:00"):
        record_round(s3, HISTORY, {"time": when, "task_run_id": f"tsk-{when[:10]}", "F1": 0.5})
    assert [r["time"][:10] for r in read_history(HISTORY, aws_conn_id=None)] == [
        "2026-11-01",
        "2026-11-15",
        "2026-11-29",
    ]
    assert read_history("s3://labels-bkt/elsewhere/", aws_conn_id=None) == []


def test_two_writers_at_once_lose_no_round(aws):
    client("s3").create_bucket(Bucket="labels-bkt")
    same_time = "2026-11-29T10:00:00.000000+00:00"  # even at the same microsecond

    def writer(name: str) -> None:
        s3 = AwsConnection(None).s3()
        for number in range(15):
            round_ = {
                "time": same_time,
                "task_run_id": f"tsk-{name}{number}",
                "writer": name,
                "number": number,
            }
            record_round(s3, HISTORY, round_)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rounds = read_history(HISTORY, aws_conn_id=None)
    assert sorted((r["writer"], r["number"]) for r in rounds) == [(w, n) for w in "ab" for n in range(15)]


def test_a_retry_that_records_its_evaluation_again_keeps_one_round(aws):
    client("s3").create_bucket(Bucket="labels-bkt")
    s3 = AwsConnection(None).s3()
    for attempt in ("2026-11-29T10:00:00+00:00", "2026-11-29T10:05:00+00:00"):
        record_round(s3, HISTORY, {"time": attempt, "task_run_id": "tsk-1", "F1": 0.5})
    assert [r["time"] for r in read_history(HISTORY, aws_conn_id=None)] == ["2026-11-29T10:05:00+00:00"]


def test_the_history_is_read_with_all_four_connection_fields(endpoint):
    """A ``botocore_config`` (here a proxy) reaches the history's reads as it reaches the task's."""
    from tests.helpers import Proxy

    client("s3", endpoint).create_bucket(Bucket="labels-bkt")
    record_round(AwsConnection().s3(), HISTORY, {"time": "2026-11-29T10:00:00+00:00", "task_run_id": "tsk-1"})
    with Proxy() as proxy:
        rounds = read_history(HISTORY, botocore_config=proxy.config())
    assert [r["task_run_id"] for r in rounds] == ["tsk-1"]
    assert {(seen["method"], seen["path"]) for seen in proxy.seen} >= {("GET", "/labels-bkt")}
