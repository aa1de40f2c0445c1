"""S3 paths: a folder is the same with or without its trailing "/", listed, compared or named."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from airflow_provider_glue_labeling.labels.files import as_prefix, hidden_file
from airflow_provider_glue_labeling.lineage import Ref, _Places
from airflow_provider_glue_labeling.runs.lifecycle import differences


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("labels", "labels/"),
        ("labels/", "labels/"),
        ("a/b/c", "a/b/c/"),
        ("", ""),  # the whole bucket
        ("s3://b/out", "s3://b/out/"),
    ],
)
def test_a_folder_as_a_prefix_ends_in_one_slash(key, prefix):
    assert as_prefix(key) == prefix


def test_marker_and_hidden_files_are_told_by_their_name():
    assert hidden_file("out/_SUCCESS") and hidden_file("out/.part-0.csv.crc") and hidden_file("_draft.json")
    assert not hidden_file("out/part-0.csv") and not hidden_file("_out/part-0.csv")


def test_a_run_started_with_or_without_the_slash_is_the_same_run():
    assert differences({"OutputS3Path": "s3://b/out/"}, {"OutputS3Path": "s3://b/out"}) == []
    assert differences({"OutputS3Path": "s3://b/out/"}, {"OutputS3Path": "s3://b/other/"}) == [
        "OutputS3Path 's3://b/out/', this task's 's3://b/other/'"
    ]


def test_lineage_names_a_folder_without_its_slash():
    places = _Places(SimpleNamespace())
    refs = [
        Ref("s3", "s3://bkt/sets/"),
        Ref("s3", "s3://bkt/sets"),
        Ref("s3", "s3://bkt/a.csv"),
        Ref("s3", "s3://bkt"),
    ]
    assert places.datasets(refs) == [
        ("s3://bkt", "sets"),
        ("s3://bkt", "sets"),
        ("s3://bkt", "a.csv"),
        ("s3://bkt", "/"),  # the whole bucket
    ]


def test_the_emulator_imports_without_airflow():
    """The emulator runs where Airflow is not installed: it reads S3 paths by the provider's rules
    (``labels.files``) without importing Airflow."""
    code = "import sys, airflow_provider_glue_labeling.emulator; print('airflow' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
