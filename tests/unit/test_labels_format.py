"""Glue's labeling file format: which sets a labels file leaves out, and the labels file a page's groups make."""

from __future__ import annotations

import pytest

from airflow_provider_glue_labeling.labels.format import (
    LabelingError,
    LabelingSet,
    label_name,
    labels_file_problems,
    unlabeled_sets_problem,
)


def test_unlabeled_sets_problem_names_each_missing_set():
    labeling_set = b"labeling_set_id,label,id\ns1,,1\ns1,,2\ns2,,3\ns3,,4\n"
    assert (
        unlabeled_sets_problem([labeling_set], b"labeling_set_id,label,id\ns1,a,1\ns1,a,2\ns2,b,3\ns3,c,4\n")
        is None
    )
    problem = unlabeled_sets_problem([labeling_set], b"labeling_set_id,label,id\ns2,b,3\n")
    assert problem == "has no labels for the labeling set(s) s1, s3: label every record of every set"


SET_FILE = b"labeling_set_id,label,id,name\ns1,,1,Ada\ns1,,2,Ada L.\ns1,,3,Alan\ns2,,4,Grace\ns2,,5,Grce\n"


def test_a_labels_file_from_the_groups_keeps_the_columns_and_gives_one_label_per_group():

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

    with pytest.raises(LabelingError, match=message):
        LabelingSet.parse([SET_FILE]).check_draft(set_id, groups, done)


def test_a_labeling_set_with_no_records_is_not_submitted():

    with pytest.raises(LabelingError, match="the labeling set has no records to label"):
        LabelingSet.parse([b"labeling_set_id,label,id,name\n"]).labels_file({})


def test_labels_run_a_to_z_then_aa():

    assert [label_name(n) for n in (0, 1, 25, 26, 27, 51, 52)] == ["A", "B", "Z", "AA", "AB", "AZ", "BA"]
