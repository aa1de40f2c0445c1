"""The labeling task's human-in-the-loop answer, as its execute_complete event brings it."""

from __future__ import annotations

from airflow_provider_glue_labeling.hitl import LABELS_UPLOADED, Answer, answer_in


def test_an_answer_names_who_gave_it_by_name_else_by_id():
    event = {
        "chosen_options": [LABELS_UPLOADED],
        "params_input": {},
        "responded_by_user": {"id": "7", "name": "alice"},
    }
    assert answer_in(event) == Answer(by="alice", chosen=["Labels uploaded"])
    assert answer_in({**event, "responded_by_user": {"id": "7", "name": ""}}) == Answer(
        "7", [LABELS_UPLOADED]
    )
    assert answer_in({**event, "responded_by_user": "bob"}) == Answer("bob", [LABELS_UPLOADED])


def test_an_answer_without_its_user_is_still_an_answer():
    assert answer_in({"chosen_options": [LABELS_UPLOADED]}) == Answer(None, [LABELS_UPLOADED])
    assert answer_in({"chosen_options": None, "responded_by_user": None}) == Answer(None, [])


def test_the_file_seen_and_the_timeout_are_no_answer():
    assert answer_in({}) is None
    assert answer_in({"status": "success", "files": ["labels.csv"]}) is None
    assert answer_in({"error_type": "timeout"}) is None
