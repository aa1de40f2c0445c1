from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dev import airflow_env
from tests.helpers import BUCKET, ROOT, Proxy, client

# A committed sample of the DBLP-ACM benchmark; DBLP_ACM_DIR points the tests at the full files.
DBLP_ACM = Path(os.environ.get("DBLP_ACM_DIR") or ROOT / "tests" / "data" / "dblp-acm")
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="glue-labeling-airflow-"))

# Airflow reads its configuration when first imported: set it up before any test module does.
# INFO, so that tests can read what tasks log (pytest captures it).
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
# No scheduler runs beside the tests in-process: the page answers at once (deployments set their own).
os.environ["AIRFLOW__GLUE_LABELING__ANSWER_SETTLE_SECONDS"] = "0"
airflow_env.prepare(AIRFLOW_HOME, {"tests": ROOT / "tests" / "dags", "examples": ROOT / "example_dags"})

# One HTTP proxy for the process, named before any DAG file is parsed: the DAG that sends its
# labeling task through it (label_through_a_proxy) names the same one however often it is parsed.
PROXY = Proxy().__enter__()
os.environ["GLUE_LABELING_TEST_PROXY"] = PROXY.url

import pytest  # noqa: E402
import requests  # noqa: E402
from moto import mock_aws  # noqa: E402

import airflow_provider_glue_labeling.emulator as emulator  # noqa: E402

# The modules that take longest, longest first (``--durations`` on ``make test``): ``make test``
# hands whole modules to two workers in collection order (``--no-loadscope-reorder``), and the
# longest started first leave the short ones to fill in at the end.
LONGEST_FIRST = (
    "tests/deployment/test_deployment.py",
    "tests/deployment/test_matching.py",
    "tests/deployment/test_teams.py",
    "tests/dag_runs/test_example_dags.py",
    "tests/lineage/test_openlineage.py",
    "tests/aws/test_emulator.py",
    "tests/dag_runs/test_labeling.py",
    "tests/dag_runs/test_durability.py",
)


def pytest_collection_modifyitems(items):
    """The longest modules first (:data:`LONGEST_FIRST`), the rest in their order."""
    rank = {module: n for n, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(autouse=True)
def _emulator_defaults():
    emulator.reset()
    emulator.configure(run_seconds=0.3, starting_seconds=0.05, stop_seconds=0.2)
    yield
    emulator.reset()


@pytest.fixture
def task_log(capfd, caplog):
    """What was logged so far: Airflow 3 logs tasks through structlog to stdout, Airflow 2 through logging."""
    return lambda: "".join(capfd.readouterr()) + caplog.text


@pytest.fixture
def proxy() -> Proxy:
    """The process's HTTP proxy, with what it saw so far forgotten."""
    PROXY.seen.clear()
    return PROXY


@pytest.fixture
def aws():
    """In-process moto with the emulator: real boto3 clients, no network."""
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def server():
    """One moto server with the emulator on 127.0.0.1 for the session; ``aws_default`` points at it."""
    with emulator.serve() as endpoint_url:
        airflow_env.connect(endpoint_url)
        yield endpoint_url


@pytest.fixture
def endpoint(server):
    """The server's URL, with its state reset for the test."""
    requests.post(f"{server}/moto-api/reset", timeout=10).raise_for_status()
    return server


@pytest.fixture(scope="session")
def airflow_db(server):
    airflow_env.migrate(AIRFLOW_HOME)
    return AIRFLOW_HOME


@pytest.fixture
def transform(endpoint, airflow_db):
    """A transform over made-up people on the server, with the bucket ``labels-bkt``."""
    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people

    source, _ = people(count=120)
    return create_findmatches_transform(
        client("glue", endpoint),
        client("s3", endpoint),
        bucket=BUCKET,
        source_csv=source,
        primary_key="id",
    )
