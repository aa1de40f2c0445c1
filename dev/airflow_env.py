"""Environment for running DAGs offline against the emulator (tests and ``make demo``).

Call :func:`prepare` before Airflow is imported: it points Airflow at a private home with a
sqlite metadata DB, registers DAG folders as bundles, sets fake AWS credentials and, given an
endpoint, an ``aws_default`` connection to the emulator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PRISTINE_DB = "migrated.db"  # a copy of the DB as migrated, before any DAG ran: for new deployments
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def prepare(home: Path, dag_folders: dict[str, Path], teams: dict[str, str] | None = None) -> None:
    """Set the environment for an offline Airflow in ``home`` with ``dag_folders`` as bundles.

    :param teams: bundle name to the team that owns it (Airflow's multi-team mode, 3.2+).
    """
    home.mkdir(parents=True, exist_ok=True)
    bundles = [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(folder.resolve()), "refresh_interval": 0},
            **({"team_name": teams[name]} if teams and name in teams else {}),
        }
        for name, folder in dag_folders.items()
    ]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(next(iter(dag_folders.values())).resolve()),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)


def connect(endpoint_url: str, conn_id: str = "aws_default") -> None:
    """Point the Airflow AWS connection ``conn_id`` at the emulator."""
    extra = {"endpoint_url": endpoint_url, "region_name": FAKE_CREDENTIALS["AWS_DEFAULT_REGION"]}
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {
            "conn_type": "aws",
            "login": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "password": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "extra": extra,
        }
    )


def migrate(home: Path) -> None:
    """Create or upgrade the sqlite metadata DB (skipped when it is already there).

    A copy of it as migrated is kept as ``home/migrated.db``: a deployment that starts from it
    needs no migration of its own and sees no other test's DAG runs.
    """
    marker = home / ".migrated"
    if marker.exists():
        return
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, env=os.environ, capture_output=True)
    shutil.copy(home / "airflow.db", home / PRISTINE_DB)
    marker.touch()
