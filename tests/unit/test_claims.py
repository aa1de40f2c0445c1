"""Who is on which labeling set: live claims, and when they lapse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow_provider_glue_labeling.ui.drafts import CLAIM_SECONDS, live_claims

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def claimed(minutes_ago: float, **draft):
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")
    return {"claimed_by": "bea", "claimed_at": at, "done": False, **draft}


def test_a_claim_lapses_after_its_time_and_a_done_set_has_none():
    assert CLAIM_SECONDS == 30 * 60
    drafts = {
        "s1": claimed(29),
        "s2": claimed(31),
        "s3": claimed(1, done=True),
        "s4": {"by": "alice", "done": False},  # a draft kept before claims: nobody on it
        "s5": claimed(1, claimed_at="yesterday"),
    }
    assert live_claims(drafts, now=NOW) == {"s1": {"by": "bea", "at": drafts["s1"]["claimed_at"]}}
