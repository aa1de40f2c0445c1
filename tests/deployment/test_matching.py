"""From labels to matches on a real deployment (api-server or webserver, scheduler, dag-processor,
triggerer): the retraining example DAG evaluates a taught transform, its event on the
transform's asset runs the matching example DAG, whose FindMatches job (the Amazon provider's
``GlueJobOperator``) writes the matches, and people review the groups it is unsure of: a review
set, labeled in the labeling page (Required Actions on Airflow 3.1+; the file wait on 3.0), and
imported. OpenLineage's file transport captures every event.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from types import SimpleNamespace

import jsonschema
import pytest
import requests

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.emulator.seed import read_matches
from airflow_provider_glue_labeling.versions import HAS_ASSET_ALIASES, HAS_UI_PLUGINS
from tests.helpers import BUCKET, MATCHING_TASKS, ROOT, add_labels, client

RETRAINING, MATCHING = "glue_findmatches_retraining", "glue_findmatches_matching"
pytestmark = [
    pytest.mark.skipif(
        not HAS_ASSET_ALIASES,
        reason="the retraining example's templated transform id records its events through an asset alias (Airflow 3)",
    ),
    # The first test's setup starts a deployment and waits for two DAG runs: on two cores beside
    # another deployment and browsers that can take longer than the suite's 300 s a test.
    pytest.mark.timeout(900),
]
HAS_OPENLINEAGE = find_spec("airflow.providers.openlineage") is not None


@pytest.fixture(scope="module")
def taught(server, airflow_db, tmp_path_factory):
    """A transform with a round of labels, and a deployment whose matching DAG is scheduled on it."""
    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people
    from dev.airflow_env import PRISTINE_DB
    from dev.deployment import deployment

    requests.post(f"{server}/moto-api/reset", timeout=10).raise_for_status()
    source, truth = people(count=150)
    glue, s3 = client("glue", server), client("s3", server)
    transform_id = create_findmatches_transform(glue, s3, bucket=BUCKET, source_csv=source, primary_key="id")
    add_labels(server, transform_id, "first-round")
    home = tmp_path_factory.mktemp("matching")
    lineage = home / "openlineage.jsonl"
    env = {
        "GLUE_FINDMATCHES_TRANSFORM_ID": transform_id,  # the matching DAG's asset, named at parse time
        "GLUE_FINDMATCHES_BUCKET": BUCKET,
        # The scheduler creates asset-triggered runs (and the weekly DAG's one scheduled run, which
        # fails on the example's placeholder transform).
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
        "AIRFLOW__GLUE_LABELING__POLL_SECONDS": "1",
        # The page answers the review's request once it has stood this long, as it does by default
        # (hitl.settle_seconds: an answer sooner races with the parked task's late "success"; the
        # suite's 0, for dag.test, must not reach a deployment).
        "AIRFLOW__GLUE_LABELING__ANSWER_SETTLE_SECONDS": "15",
        # Waits in the worker: this test is about the asset and lineage, not the triggerer.
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(lineage), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "glue-labeling-deployment",
    }
    emulator.configure(run_seconds=3)
    dags = {"examples": ROOT / "example_dags"}
    with deployment(home / "airflow", dags, airflow_db / PRISTINE_DB, env) as running:
        yield running, transform_id, truth, lineage, s3


@pytest.fixture(scope="module")
def matched(taught, server):
    """The retraining DAG run on the deployment, and the matching DAG run its asset event started."""
    from dev.demo import Labeler
    from dev.deployment import wait_until

    running, transform_id, truth, lineage, s3 = taught
    glue = client("glue", server)
    emulator.configure(run_seconds=3)
    running.settle_scheduled(RETRAINING, "evaluate")  # the weekly run's start, before ours
    run_id = running.trigger(
        RETRAINING,
        {"transform_id": transform_id, "bucket": BUCKET, "min_f1": 0.3, "require_lower_bound": False},
    )

    def retrained():
        state = running.run_state(RETRAINING, run_id)
        return state if state in ("success", "failed") else None

    # Generous: on two cores this deployment shares the machine with another one and browsers.
    state = wait_until(retrained, 420, "the retraining run", running.logs)

    # Nobody triggers the matching DAG: the evaluation's asset event does. Its review set is
    # labeled as people label: in the labeling page where there is one.
    def matching_ended():
        runs = running.runs(MATCHING)  # the first: its review's import runs the DAG again
        return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None

    labels_before = glue.get_ml_transform(TransformId=transform_id)["LabelCount"]
    labeler = Labeler(glue, s3, transform_id, truth, page=running if HAS_UI_PLUGINS else None)
    labeler.start()
    try:
        run = wait_until(
            matching_ended, 420, "the matching DAG, scheduled on the transform's asset", running.logs
        )
    finally:
        labeler.stopped.set()
        labeler.join()
    return SimpleNamespace(
        running=running,
        transform_id=transform_id,
        truth=truth,
        lineage=lineage,
        s3=s3,
        state=state,
        run_id=run_id,
        run=run,
        labels_before=labels_before,
        labels_after=glue.get_ml_transform(TransformId=transform_id)["LabelCount"],
    )


def test_a_passing_evaluation_runs_the_matching_job_through_the_asset(matched):
    running, run = matched.running, matched.run
    assert matched.state == "success", running.logs()
    decision = running.xcom(RETRAINING, matched.run_id, "evaluate", "teaching_decision")
    assert decision["decision"] == "good_enough", decision
    states = running.states(MATCHING, run["dag_run_id"], list(MATCHING_TASKS))
    assert run["state"] == "success" and set(states.values()) == {"success"}, (run, states, running.logs())
    assert run["run_type"] in ("asset_triggered", "dataset_triggered"), run
    summary = running.xcom(MATCHING, run["dag_run_id"], "count_matches", "return_value")
    rows = read_matches(matched.s3, summary["output_path"])
    assert len(rows) == summary["records"] == len(matched.truth)
    assert summary["match_groups"] == len({row["match_id"] for row in rows}) < len(matched.truth)
    # The groups it was unsure of were labeled (in the page on 3.1+) and imported.
    review_set = running.xcom(MATCHING, run["dag_run_id"], "review_set", "return_value")
    reviewed = read_matches(matched.s3, review_set)  # a labeling set's rows: one a record shown
    labels = running.xcom(MATCHING, run["dag_run_id"], "label_review_set", "return_value")
    assert labels.endswith("/labels.csv") and "/labels/review-" in labels
    assert matched.labels_after == matched.labels_before + len(reviewed) > matched.labels_before


@pytest.mark.skipif(not HAS_OPENLINEAGE, reason="needs apache-airflow-providers-openlineage (the dev extra)")
def test_openlineage_events_of_the_deployment_are_valid_and_name_the_transform(matched):
    from airflow_provider_glue_labeling.lineage import FACET_NAME, FACET_SCHEMA
    from tests.lineage.schema import validate

    events = [json.loads(line) for line in matched.lineage.read_text().splitlines()]
    for event in events:
        validate(event)
    by_job = {(e["job"]["name"], e["eventType"]): e for e in events}
    evaluated = by_job[f"{RETRAINING}.evaluate", "COMPLETE"]
    facet = evaluated["run"]["facets"][FACET_NAME]
    jsonschema.validate(facet, FACET_SCHEMA)
    assert (facet["transformId"], facet["status"]) == (matched.transform_id, "SUCCEEDED")
    assert facet["metrics"]["F1"] >= 0.3
    glue = "arn:aws:glue:us-east-1:123456789012"
    assert [(d["namespace"], d["name"]) for d in evaluated["inputs"]] == [
        (glue, f"mlTransform/{matched.transform_id}")
    ]
    # The matching run's events, from its tasks in the scheduler and workers.
    assert (f"{MATCHING}.find_matches", "COMPLETE") in by_job
    assert (f"{MATCHING}.count_matches", "COMPLETE") in by_job
