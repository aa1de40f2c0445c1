"""OpenLineage events of every operator, captured by the openlineage provider's file transport in
``dag.test()`` runs of the example DAGs, checked against the OpenLineage event schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people
from airflow_provider_glue_labeling.lineage import FACET_NAME, FACET_SCHEMA
from dev.demo import BUCKET
from tests.helpers import ROOT, client
from tests.lineage.schema import validate

pytest.importorskip("airflow.providers.openlineage", reason="needs apache-airflow-providers-openlineage")
# The module's fixture runs three DAG runs in another interpreter: more than a test's 300 s may pass
# on two busy cores.
pytestmark = pytest.mark.timeout(900)
ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's account; the tests' region
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"


@pytest.fixture(scope="module")
def events(server, airflow_db, tmp_path_factory):
    """Every event of two retraining runs and a failed labeling-set generation, by task and type."""
    import requests

    requests.post(f"{server}/moto-api/reset", timeout=10).raise_for_status()
    source, truth = people(200)
    transform_id = create_findmatches_transform(
        client("glue", server), client("s3", server), bucket=BUCKET, source_csv=source, primary_key="id"
    )
    folder = tmp_path_factory.mktemp("lineage")
    (folder / "truth.json").write_text(json.dumps(truth))
    captured = folder / "events.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(captured), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "glue-labeling-tests",
        "AIRFLOW__OPENLINEAGE__DISABLED": "False",
        "AIRFLOW__GLUE_LABELING__POLL_SECONDS": "0.3",
    }
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.lineage.run_examples",
            server,
            transform_id,
            str(folder / "truth.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert '["success", "success", "failed"]' in ran.stdout.splitlines(), ran.stdout[-2000:]
    found: dict[tuple[str, str], list[dict]] = {}
    for line in captured.read_text().splitlines():
        event = json.loads(line)
        task = event["job"]["name"].split(".", 1)[-1]
        found.setdefault((task, event["eventType"]), []).append(event)
    return transform_id, found


def test_every_event_is_a_valid_openlineage_run_event(events):
    _, found = events
    everything = [event for group in found.values() for event in group]
    assert len(everything) >= 14
    for event in everything:
        validate(event)
        facet = event["run"].get("facets", {}).get(FACET_NAME)
        if facet is not None:
            jsonschema.validate(facet, FACET_SCHEMA)


def datasets(event, side):
    return [(d["namespace"], d["name"]) for d in event[side]]


def test_each_operator_names_what_it_reads_and_writes(events):
    transform_id, found = events
    transform = (GLUE, f"mlTransform/{transform_id}")
    table = (GLUE, "table/findmatches/records")
    (generated,) = found["generate_labeling_set", "COMPLETE"][:1]
    assert datasets(generated, "inputs") == [table]
    ((namespace, name),) = datasets(generated, "outputs")
    assert namespace == f"s3://{BUCKET}" and name.startswith("labeling-sets/")
    labeled = found["label", "COMPLETE"][0]
    assert datasets(labeled, "inputs") == [(f"s3://{BUCKET}", name)]
    ((_, labels_file),) = datasets(labeled, "outputs")
    assert labels_file.startswith("labels/") and labels_file.endswith("/labels.csv")
    imported = found["import_labels", "COMPLETE"][0]
    assert datasets(imported, "inputs") == [(f"s3://{BUCKET}", labels_file)]
    assert datasets(imported, "outputs") == [transform]
    evaluated = found["evaluate", "COMPLETE"][-1]
    assert datasets(evaluated, "inputs") == [transform]
    ((_, history),) = datasets(evaluated, "outputs")
    assert history.startswith(f"quality-history/{transform_id}/round-") and history.endswith(".json")


def test_run_facets_carry_the_task_run_its_status_and_metrics(events):
    transform_id, found = events
    start = found["generate_labeling_set", "START"][0]["run"]["facets"][FACET_NAME]
    assert (start["transformId"], start["taskRunType"]) == (transform_id, "LABELING_SET_GENERATION")
    done = found["import_labels", "COMPLETE"][0]["run"]["facets"][FACET_NAME]
    assert done["taskRunId"].startswith("tsk-") and done["status"] == "SUCCEEDED"
    evaluated = found["evaluate", "COMPLETE"][-1]["run"]["facets"][FACET_NAME]
    assert evaluated["status"] == "SUCCEEDED" and evaluated["taskRunType"] == "EVALUATION"
    assert 0.5 <= evaluated["metrics"]["F1"] <= 1 and "ConfusionMatrix" in evaluated["metrics"]
    # The sensor of the failed generation: Glue's own ErrorString reaches the lineage too.
    (failed,) = found["wait_for_labeling_set", "FAIL"]
    facet = failed["run"]["facets"][FACET_NAME]
    assert (facet["status"], facet["taskRunType"]) == ("FAILED", "LABELING_SET_GENERATION")
    assert facet["errorString"] == "Glue could not read the source table"


def test_the_schema_refuses_what_the_spec_refuses():
    good = {
        "eventType": "COMPLETE",
        "eventTime": "2026-12-02T10:00:00+00:00",
        "producer": "https://example.org/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "01a236ce-1fa3-7ff4-bed7-1271aee2a658", "facets": {}},
        "job": {"namespace": "ns", "name": "dag.task"},
        "inputs": [{"namespace": "s3://b", "name": "k"}],
        "outputs": [],
    }
    validate(good)
    bad_facet = {FACET_NAME: {"_producer": "https://example.org", "transformId": "tfm-1"}}  # no _schemaURL
    for broken in (
        {**good, "eventType": "DONE"},
        {**good, "run": {"runId": "not-a-uuid"}},
        {**good, "run": {**good["run"], "facets": bad_facet}},
        {**good, "inputs": [{"namespace": "s3://b"}]},
        {**good, "producer": "not a uri"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_lineage_of_a_task_that_failed_on_its_input_names_what_it_can(aws):
    from airflow_provider_glue_labeling.operators import GlueMLImportLabelsOperator

    task = GlueMLImportLabelsOperator(
        task_id="t",
        transform_id="tfm-missing",
        input_s3_path="labels.csv",
        aws_conn_id=None,
        region_name="us-east-1",
    )
    lineage = task.get_openlineage_facets_on_failure(None)
    assert lineage.inputs == []  # "labels.csv" is no S3 path: logged, not named
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(GLUE, "mlTransform/tfm-missing")]
    facet = lineage.run_facets[FACET_NAME]
    assert (facet.transformId, facet.taskRunType, facet.taskRunId) == ("tfm-missing", "IMPORT_LABELS", None)
