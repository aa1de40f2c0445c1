"""``make demo``: the weekly retraining DAG, end to end, on the emulator, with no AWS account.

Starts the emulator on 127.0.0.1 (or uses ``--endpoint``), makes people data with known
duplicates, catalogs it and creates a FindMatches transform, then runs
``example_dags/glue_findmatches_retraining.py`` with ``dag.test()``. A demo labeler watches S3
for the labeling set, fills in ``label`` from the known truth and uploads it, as people would.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dev import airflow_env

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = "glue_findmatches_retraining.py"
BUCKET = "findmatches-demo"


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Labeler(threading.Thread):
    """Labels every new labeling set from the known truth and uploads it where the DAG waits.

    It also reports each Glue task run's status changes, so the demo shows its stages.
    """

    def __init__(self, glue: Any, s3: Any, transform_id: str, truth: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.glue, self.s3, self.transform_id, self.truth = glue, s3, transform_id, truth
        self.stopped = threading.Event()
        self.labeled: set[str] = set()
        self.seen: dict[str, str] = {}

    def run(self) -> None:
        from airflow_provider_glue_labeling.emulator.seed import label_from_truth

        while not self.stopped.wait(0.2):
            for run in self.glue.get_ml_task_runs(TransformId=self.transform_id)["TaskRuns"]:
                kind = run["Properties"]["TaskType"]
                if self.seen.get(run["TaskRunId"]) != run["Status"]:
                    self.seen[run["TaskRunId"]] = run["Status"]
                    say(f"Glue {kind} run {run['TaskRunId'][:12]}... is {run['Status']}")
            listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="labeling-sets/").get("Contents", [])
            for obj in listed:
                key = obj["Key"]
                if key in self.labeled:
                    continue
                self.labeled.add(key)
                run_date = key.split("/")[1]
                body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                labels = label_from_truth(body, self.truth, "id")
                target = f"labels/{run_date}/labels.csv"
                self.s3.put_object(Bucket=BUCKET, Key=target, Body=labels)
                rows = len(labels.splitlines()) - 1
                say(f"labeler: labeled {rows} records of s3://{BUCKET}/{key}")
                say(f"labeler: uploaded s3://{BUCKET}/{target}")


@contextlib.contextmanager
def emulator_endpoint(endpoint: str | None) -> Iterator[str]:
    if endpoint:
        yield endpoint
        return
    from airflow_provider_glue_labeling.emulator import serve

    with serve() as url:
        yield url


def load_dag(dags_folder: Path) -> Any:
    spec = importlib.util.spec_from_file_location("glue_findmatches_retraining", dags_folder / DAG_FILE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {dags_folder / DAG_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def print_metrics(transform: Mapping[str, Any]) -> None:
    metrics = transform.get("EvaluationMetrics", {}).get("FindMatchesMetrics", {})
    print("\nFindMatches evaluation metrics")
    print(f"  {'LabelCount':<22}{transform.get('LabelCount')}")
    for name in ("Precision", "Recall", "F1", "AreaUnderPRCurve"):
        print(f"  {name:<22}{metrics.get(name, float('nan')):.4f}")
    for name, value in metrics.get("ConfusionMatrix", {}).items():
        print(f"  {name:<22}{value}")
    for column in metrics.get("ColumnImportances", []):
        print(f"  {'importance ' + column['ColumnName']:<22}{column['Importance']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", help="use this emulator server instead of starting one")
    parser.add_argument("--home", type=Path, default=Path(".airflow/demo"), help="AIRFLOW_HOME for the demo")
    parser.add_argument("--dags-folder", type=Path, default=ROOT / "example_dags")
    parser.add_argument("--deferrable", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--min-f1", type=float, default=0.7, help="the evaluation's quality gate")
    parser.add_argument("--people", type=int, default=400, help="how many people to make up")
    args = parser.parse_args(argv)
    started = time.monotonic()
    warnings.filterwarnings("ignore", message="Using `httpx`")

    airflow_env.prepare(args.home.resolve(), {"examples": args.dags_folder})
    os.environ["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = str(args.deferrable)
    os.environ.setdefault("GLUE_LABELING_POLL_SECONDS", "0.5")
    say(f"Airflow home {args.home}: migrating the metadata DB (first run only)")
    airflow_env.migrate(args.home.resolve())

    import boto3

    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people

    with emulator_endpoint(args.endpoint) as endpoint:
        airflow_env.connect(endpoint)
        say(f"Glue FindMatches emulator on {endpoint}")
        glue = boto3.client("glue", endpoint_url=endpoint)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        source, truth = people(args.people)
        transform_id = create_findmatches_transform(
            glue, s3, bucket=BUCKET, source_csv=source, primary_key="id", name="people-dedup"
        )
        say(f"made {len(truth)} records of {len(set(truth.values()))} people; transform {transform_id}")
        labeler = Labeler(glue, s3, transform_id, truth)
        labeler.start()
        dag = load_dag(args.dags_folder)
        mode = "deferrable (waits in the triggerer)" if args.deferrable else "waits in the worker"
        say(f"running DAG {dag.dag_id} with dag.test(), {mode}")
        dag_run = dag.test(run_conf={"transform_id": transform_id, "bucket": BUCKET, "min_f1": args.min_f1})
        labeler.stopped.set()
        labeler.join()
        print(f"\nDAG run {dag_run.run_id}: {dag_run.state}")
        for ti in sorted(dag_run.get_task_instances(), key=lambda t: t.start_date or t.end_date or 0):
            print(f"  {ti.task_id:<24}{ti.state}")
        print_metrics(glue.get_ml_transform(TransformId=transform_id))
    say(f"finished in {time.monotonic() - started:.1f}s")
    return 0 if dag_run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
