"""Airflow's multi-team mode on a real deployment (Airflow 3.2+): each team sees its own labeling tasks.

The test DAGs' bundle belongs to ``team_a``. A labeling task of it waits for people; ana (team_a)
lists and opens it, ben (team_b, the same role) gets neither. The page passes the DAG's team to the auth manager as Airflow's
``requires_access_dag`` does.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests

from airflow_provider_glue_labeling.versions import AIRFLOW_VERSION
from tests.helpers import BUCKET, ROOT, client

pytestmark = pytest.mark.skipif(AIRFLOW_VERSION < (3, 2), reason="multi-team mode needs Airflow 3.2+")

DAG_ID = "label_and_import_deferrable"  # of the test DAGs: it watches for the labels file


@pytest.fixture(scope="module")
def teams_airflow(server, airflow_db, tmp_path_factory):
    from dev.airflow_env import PRISTINE_DB
    from dev.deployment import deployment

    env = {"AIRFLOW__GLUE_LABELING__POLL_SECONDS": "1", "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True"}
    dags = {"tests": ROOT / "tests" / "dags"}
    home = tmp_path_factory.mktemp("teams")
    with deployment(home, dags, airflow_db / PRISTINE_DB, env, teams={"tests": "team_a"}) as running:
        yield running


def test_a_team_sees_only_its_own_labeling_tasks(server, teams_airflow):
    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people
    from dev.deployment import wait_until

    requests.post(f"{server}/moto-api/reset", timeout=10).raise_for_status()
    source, _ = people(count=120)
    transform_id = create_findmatches_transform(
        client("glue", server), client("s3", server), bucket=BUCKET, source_csv=source, primary_key="id"
    )
    running = teams_airflow
    labels = f"s3://{BUCKET}/people-labels/round-1.csv"
    conf = {"transform_id": transform_id, "output_s3_path": f"s3://{BUCKET}/labeling/", "labels_a": labels}
    run_id = running.trigger(DAG_ID, conf)
    wait_until(
        lambda: running.states(DAG_ID, run_id, ["label"])["label"] == "deferred",
        240,
        "the labeling task to wait",
        running.logs,
    )
    api = f"{running.url}/glue-labeling/api/tasks"
    task = f"{api}/{DAG_ID}/{quote(run_id, safe='')}/label/-1"
    ana, ben = running.labeler("ana"), running.labeler("ben")

    # ana, of the DAG's team, lists and opens it.
    (listed,) = ana.get(api, timeout=30).json()
    assert (listed["dag_id"], listed["transform_id"], listed["records"]) == (DAG_ID, transform_id, 100)
    assert ana.get(task, timeout=30).status_code == 200
    # ben, of another team with the same role, is told nothing: no task in the list (not its
    # transform, run or S3 paths), and 403 on the task, its page and its writes.
    assert ben.get(api, timeout=30).json() == []
    assert ben.get(task, timeout=30).status_code == 403
    assert ben.get(task.replace("/api/tasks/", "/tasks/"), timeout=30).status_code == 403
    draft = {"set_id": "x", "groups": [0], "done": False}
    assert ben.put(f"{task}/drafts", json=draft, timeout=30).status_code == 403
    assert ben.post(f"{task}/submit", timeout=30).status_code == 403
    running.mark(DAG_ID, run_id, "label", "failed")  # done with it
