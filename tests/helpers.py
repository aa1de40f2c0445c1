"""What several test modules share: clients, DAG runs, waits and people who label from the truth.

Test modules import helpers from here, never from each other.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import boto3

from airflow_provider_glue_labeling.emulator.seed import label_from_truth, people

ROOT = Path(__file__).resolve().parent.parent
DAG_FILE = ROOT / "tests" / "dags" / "glue_ml_test_dags.py"
LOGICAL_DATE = "2026-11-01T00:00:00+00:00"
BUCKET = "labels-bkt"  # the bucket of the ``transform`` fixture
HEADER = b"labeling_set_id,label,id,first_name,last_name,email,phone,city,birth_year\n"
ROW = b"s1,a,1,Ann,Lee,a@x.org,+44 1,Oslo,1970\n"
GOOD_LABELS = (
    HEADER
    + b"s1,a,1,Ann,Lee,a@x.org,+44 1,Oslo,1970\ns1,a,2,Anne,Lee,a@x.org,,Oslo,1970\ns1,b,3,Bob,Ray,b@x.org,+44 2,Cork,1980\n"
)
ECHO_KEYS = {
    "IMPORT_LABELS": "ImportLabelsTaskRunProperties",
    "EXPORT_LABELS": "ExportLabelsTaskRunProperties",
    "LABELING_SET_GENERATION": "LabelingSetGenerationTaskRunProperties",
}
TRIES: dict[str, int] = {}  # the tries of each task in the last run_dag()


def client(service: str, endpoint_url: str | None = None):
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint_url)


def bare_transform(glue) -> str:
    """A FindMatches transform over a table that is not there, for tests that need only its runs."""
    return glue.create_ml_transform(
        Name="t",
        InputRecordTables=[{"DatabaseName": "db", "TableName": "missing"}],
        Parameters={"TransformType": "FIND_MATCHES"},
        Role="r",
    )["TransformId"]


def load_test_dags():
    """The test DAGs (``tests/dags``, which ``dag.test()`` needs inside the dags folder)."""
    sys.path.insert(0, str(ROOT / "tests" / "dags"))
    import glue_ml_test_dags

    return glue_ml_test_dags


def run_dag(dag_id: str, transform_id: str, tmp_path: Path, **params):
    """One ``dag.test()`` run of a test DAG: its state, its tasks' states and what ``record`` wrote."""
    result_file = tmp_path / "result.json"
    conf = {
        "transform_id": transform_id,
        "output_s3_path": f"s3://{BUCKET}/labeling/",
        "result_file": str(result_file),
    }
    dag_run = load_test_dags().DAGS[dag_id].test(run_conf={**conf, **params})
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    TRIES.clear()
    TRIES.update({ti.task_id: ti.try_number for ti in dag_run.get_task_instances()})
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    return dag_run.state, states, result


def wait_for(condition, timeout=60.0, process=None):
    """Wait for ``condition``; on a time-out, show what ``process`` (a task's process) printed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            output = ""
            if process is not None:
                process.kill()
                output = process.communicate()[0][-4000:]
            raise AssertionError(f"timed out; the task process printed:\n{output}")
        time.sleep(0.05)


def wait_for_run(glue, transform_id, run_id, timeout=10.0):
    """The run once it ended (or as it is after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        run = glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)
        if run["Status"] not in ("STARTING", "RUNNING", "STOPPING") or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def runs_of(endpoint, transform_id, task_type):
    """``(TaskRunId, Status, Properties of the type)`` of each run of one type, oldest first."""
    runs = client("glue", endpoint).get_ml_task_runs(
        TransformId=transform_id, Filter={"TaskRunType": task_type}
    )["TaskRuns"]
    return [
        (r["TaskRunId"], r["Status"], r["Properties"].get(ECHO_KEYS.get(task_type, ""), {}))
        for r in sorted(runs, key=lambda r: r["StartedOn"])
    ]


def put_labels(endpoint, key, body=GOOD_LABELS):
    client("s3", endpoint).put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def labels_from_truth(labeling_set: bytes, drop_first_set: bool = False) -> bytes:
    """What careful people answer for a labeling set of the ``transform`` fixture's people."""
    labels = label_from_truth(labeling_set, people(120)[1], "id")
    if drop_first_set:
        rows = list(csv.reader(io.StringIO(labels.decode())))
        labels = "".join(",".join(r) + "\n" for r in rows if r[0] != rows[1][0]).encode()
    return labels


def add_labels(endpoint, transform_id, name):
    """People label a fresh labeling set of the ``transform`` fixture's people from the truth, and
    it is imported (outside Airflow)."""
    teach_from_truth(
        client("glue", endpoint), client("s3", endpoint), transform_id, people(120)[1], BUCKET, name
    )


def teach_from_truth(glue, s3, transform_id: str, truth: dict[str, str], bucket: str, name: str = "labeling"):
    """People label a fresh labeling set of ``transform_id`` from ``truth`` (record ``id`` to
    entity), written under ``s3://<bucket>/<name>/``, and it is imported (outside Airflow)."""
    run_id = glue.start_ml_labeling_set_generation_task_run(
        TransformId=transform_id, OutputS3Path=f"s3://{bucket}/{name}/"
    )["TaskRunId"]
    assert wait_for_run(glue, transform_id, run_id)["Status"] == "SUCCEEDED"
    labeling_set = s3.get_object(Bucket=bucket, Key=f"{name}/{run_id}.csv")["Body"].read()
    s3.put_object(Bucket=bucket, Key=f"{name}-labels.csv", Body=label_from_truth(labeling_set, truth, "id"))
    path = f"s3://{bucket}/{name}-labels.csv"
    run_id = glue.start_import_labels_task_run(TransformId=transform_id, InputS3Path=path)["TaskRunId"]
    assert wait_for_run(glue, transform_id, run_id)["Status"] == "SUCCEEDED"


def csv_of(rows: list[dict[str, str]], columns: list[str]) -> bytes:
    """``rows`` as a CSV file with the header ``columns``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


class Store(dict):
    """A task-state store as Airflow 3.3 hands it to a task (``get``, ``set``, ``delete``), for
    running an operator's try in process in the state an earlier try left."""

    def set(self, key, value):
        self[key] = value

    def delete(self, key):
        self.pop(key, None)


def retry_context(store: Store | None = None, *, try_number: int = 2, began=None) -> dict:
    """The context of a task's retry in process: its try, its DAG run's start and its store."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    context = {
        "ti": SimpleNamespace(try_number=try_number, max_tries=2, stats_tags={}),
        "dag_run": SimpleNamespace(start_date=began or datetime.now(UTC) - timedelta(minutes=1)),
    }
    if store is not None:
        context["task_state_store"] = store
    return context


def asset_events(uri: str) -> list[dict]:
    """The extras of every event of the asset ``uri`` (a dataset on Airflow 2), oldest first."""
    from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.asset import AssetEvent as Event
        from airflow.models.asset import AssetModel as Model

        key = Event.asset_id
    else:
        from airflow.models.dataset import DatasetEvent as Event
        from airflow.models.dataset import DatasetModel as Model

        key = Event.dataset_id
    with create_session() as session:
        query = select(Event.extra).join(Model, Model.id == key).where(Model.uri == uri).order_by(Event.id)
        return [dict(extra or {}) for extra in session.scalars(query)]


class Proxy:
    """An HTTP proxy on 127.0.0.1 that forwards each request and notes it, as
    ``{"method", "path", "target"}`` (``target``: the Glue call's ``X-Amz-Target``).

    A ``botocore_config`` of ``{"proxies": {"http": proxy.url}}`` sends a client's calls through
    it: what it saw shows which accesses took the task's ``botocore_config``.
    """

    HOP_BY_HOP = frozenset({"connection", "proxy-connection", "keep-alive", "transfer-encoding"})

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def __enter__(self) -> Proxy:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        proxy = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                url = urlsplit(self.path)
                body = self.body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in Proxy.HOP_BY_HOP}
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                proxy.seen.append(
                    {"method": self.command, "path": url.path, "target": self.headers.get("X-Amz-Target", "")}
                )
                upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
                path = url.path + (f"?{url.query}" if url.query else "")
                upstream.request(self.command, path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in Proxy.HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            def body(self) -> bytes | None:
                if "chunked" in self.headers.get("Transfer-Encoding", ""):
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                length = self.headers.get("Content-Length")
                return self.rfile.read(int(length)) if length else None

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def config(self) -> dict[str, dict[str, str]]:
        """The ``botocore_config`` that sends a client's calls through this proxy."""
        return {"proxies": {"http": self.url}}


def groups_from_truth(records: list[list[str]], columns: list[str]) -> list[int]:
    """What a careful person answers for a set of the ``transform`` fixture's people: records of
    one true entity in one group."""
    truth, first = people(120)[1], {}
    key = columns.index("id")
    return [first.setdefault(truth[row[key]], i) for i, row in enumerate(records)]


# The example matching DAG's tasks, in order: the job, then the review of the groups it is unsure of.
MATCHING_TASKS = (
    "transform_passed",
    "find_matches",
    "count_matches",
    "review_set",
    "label_review_set",
    "import_review_labels",
)
