"""The provider registers with Airflow: entry point, schema, `airflow providers list`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest

import airflow_provider_glue_labeling
from airflow_provider_glue_labeling import get_provider_info
from airflow_provider_glue_labeling.versions import HAS_UI_PLUGINS


def test_entry_point_points_at_get_provider_info():
    (entry,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_glue")
    ]
    assert entry.load() is get_provider_info


def test_provider_info_passes_airflows_schema_and_names_real_classes():
    info = get_provider_info()
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-glue-labeling"
    assert info["versions"] == [airflow_provider_glue_labeling.__version__]
    for kind in ("operators", "sensors", "hooks", "triggers"):
        for module in info[kind][0]["python-modules"]:
            __import__(module)
    module, _, name = info["extra-links"][0].rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name).name == "AWS Glue ML Transform"


def test_airflow_providers_list_shows_the_provider():
    airflow_cli = Path(sys.executable).with_name("airflow")
    listed = subprocess.run(
        [str(airflow_cli), "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
        timeout=120,
    )
    packages = {p["package_name"]: p for p in json.loads(listed.stdout)}
    assert packages["airflow-provider-glue-labeling"]["version"] == airflow_provider_glue_labeling.__version__


def test_console_link_points_at_the_transform_in_the_runs_region():
    from airflow_provider_glue_labeling.links import GlueMLTransformLink

    url = GlueMLTransformLink().format_link(
        region_name="eu-west-1", aws_domain="aws.amazon.com", transform_id="tfm-1"
    )
    assert url == (
        "https://console.aws.amazon.com/glue/home?region=eu-west-1#/v2/etl-configuration/ml-transforms/view/tfm-1"
    )


@pytest.mark.parametrize("lazy_discover_providers", ["True", "False"])
def test_airflow_loads_the_labeling_plugin_once_either_way(lazy_discover_providers):
    """By ``get_provider_info`` when Airflow discovers providers eagerly, by the entry point otherwise."""
    airflow_cli = Path(sys.executable).with_name("airflow")
    # WARNING: at INFO, Airflow 3.2 logs alembic's plugin set-up to stdout, before the JSON.
    env = {
        **os.environ,
        "AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS": lazy_discover_providers,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    listed = subprocess.run(
        [str(airflow_cli), "plugins", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    plugins = [p for p in json.loads(listed.stdout) if p["name"] == "glue_labeling"]
    assert len(plugins) == 1, listed.stdout
    assert "already registered" not in listed.stderr
    if HAS_UI_PLUGINS:
        assert plugins[0]["fastapi_apps"][0]["url_prefix"] == "/glue-labeling"
        assert {v["destination"] for v in plugins[0]["external_views"]} == {"nav", "task_instance"}
