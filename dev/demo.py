"""``make demo``: the weekly retraining DAG, end to end, on the emulator, with no AWS account.

Starts the emulator on 127.0.0.1 (or uses ``--endpoint``), makes people data with known
duplicates, catalogs it and creates a FindMatches transform, then starts a real Airflow on
127.0.0.1 (api-server, scheduler, dag-processor and triggerer, as ``dev/deployment.py`` runs
them) and triggers ``example_dags/glue_findmatches_retraining.py`` through its REST API. When
the DAG waits for people, a demo labeler opens the labeling page's HTTP API (Airflow 3.1+) as
the user ``bea``, groups each set's records from the known truth, saves them and submits, as
people do in the page; on older Airflow it uploads the labels file to S3 instead.
``--label-yourself`` leaves the labeling to you: open the printed URL, sign in, "Labeling".
Once an evaluation passes (good enough, or a plateau), its event on the transform's asset runs
``glue_findmatches_matching.py``, whose FindMatches job writes every record with its match id
and confidence score; the groups it is unsure of go to people as a review set, which the demo
labeler labels as it labels a labeling set, and their labels are imported. The demo ends
printing the records, the match groups and their pairwise precision and recall against the
known truth.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dev import airflow_env

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "glue_findmatches_retraining"
MATCHING_DAG_ID = "glue_findmatches_matching"
BUCKET = "findmatches-demo"
LABELER = "bea"
TASKS = [
    "evaluate",
    "ask_for_labels",
    "generate_labeling_set",
    "wait_for_labeling_set",
    "label",
    "import_labels",
]


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Labeler(threading.Thread):
    """Labels every labeling set the DAG waits for, from the known truth, as people would.

    Through the labeling page's HTTP API when ``page`` (a running deployment) is given, else by
    uploading the labels file where the DAG waits. It also reports each Glue task run's status
    changes, so the demo shows its stages.
    """

    def __init__(
        self, glue: Any, s3: Any, transform_id: str, truth: dict[str, str], page: Any = None
    ) -> None:
        super().__init__(daemon=True)
        self.glue, self.s3, self.transform_id, self.truth = glue, s3, transform_id, truth
        self.page = page
        self.stopped = threading.Event()
        self.labeled: set[str] = set()
        self.seen: dict[str, str] = {}

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            for run in self.glue.get_ml_task_runs(TransformId=self.transform_id)["TaskRuns"]:
                kind = run["Properties"]["TaskType"]
                if self.seen.get(run["TaskRunId"]) != run["Status"]:
                    self.seen[run["TaskRunId"]] = run["Status"]
                    say(f"Glue {kind} run {run['TaskRunId'][:12]}... is {run['Status']}")
            try:
                self.upload() if self.page is None else self.label_in_the_page()
            except Exception as error:  # the demo goes on; the DAG run shows what it missed
                say(f"labeler: {error!r}")

    def groups(self, records: list[list[str]], key: int) -> list[int]:
        """Records of one true entity in one group (the group of its first record)."""
        first: dict[str, int] = {}
        return [first.setdefault(self.truth.get(row[key], row[key]), i) for i, row in enumerate(records)]

    def label_in_the_page(self) -> None:
        api = f"{self.page.url}/glue-labeling/api/tasks"
        session = self.page.labeler(LABELER)
        for task in session.get(api, timeout=30).json():
            path = "/".join(
                quote(str(task[k]), safe="") for k in ("dag_id", "run_id", "task_id", "map_index")
            )
            if path in self.labeled or task["state"] == "running":  # not asking yet
                continue
            self.labeled.add(path)
            detail = session.get(f"{api}/{path}", timeout=30).json()
            key = detail["columns"].index("id")
            for labeling_set in detail["sets"]:
                body = {
                    "set_id": labeling_set["set_id"],
                    "groups": self.groups(labeling_set["records"], key),
                    "done": True,
                }
                session.put(f"{api}/{path}/drafts", json=body, timeout=30).raise_for_status()
            say(
                f"labeler {LABELER}: grouped the {task['records']} records of {task['sets']} sets in the labeling page"
            )
            answer = session.post(f"{api}/{path}/submit", timeout=30)
            answer.raise_for_status()
            say(f"labeler {LABELER}: submitted; the page wrote {answer.json()['labels_s3_path']}")

    def upload(self) -> None:
        from airflow_provider_glue_labeling.emulator.seed import label_from_truth

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
    from airflow_provider_glue_labeling.emulator import configure, serve

    # Runs last longer than the up to 5 s Airflow 3.3's supervisor takes to notice that a deferred
    # task's process ended; a wait resumed sooner races with that late event (real runs take minutes).
    configure(run_seconds=6)
    with serve() as url:
        yield url


def print_metrics(transform: Mapping[str, Any]) -> None:
    from airflow_provider_glue_labeling.quality.metrics import METRIC_NAMES, find_matches_metrics

    metrics = find_matches_metrics(transform)
    print("\nFindMatches evaluation metrics")
    print(f"  {'LabelCount':<22}{transform.get('LabelCount')}")
    for name in METRIC_NAMES:
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
    parser.add_argument("--min-f1", type=float, default=0.99, help="F1 that is good enough")
    parser.add_argument(
        "--min-gain",
        type=float,
        default=0.05,
        help="the plateau rule's least F1 gain a round worth labeling for (the example DAG's 0.01 "
        "needs more rounds of evidence: see make bench-stopping)",
    )
    parser.add_argument(
        "--over-rounds", type=int, default=3, help="the recent trend's rounds before the last"
    )
    parser.add_argument(
        "--label-floor",
        type=int,
        default=10,
        help="matching pairs an evaluation tests before a plateau (the example DAG's 50 takes more "
        "rounds than a demo should with 400 people)",
    )
    parser.add_argument("--max-rounds", type=int, default=12, help="stop after this many DAG runs anyway")
    parser.add_argument("--people", type=int, default=400, help="how many people to make up")
    parser.add_argument("--label-yourself", action="store_true", help="no demo labeler: label in the page")
    args = parser.parse_args(argv)
    started = time.monotonic()
    warnings.filterwarnings("ignore", message="Using `httpx`")

    home = args.home.resolve()
    airflow_env.prepare(home, {"examples": args.dags_folder})
    say(f"Airflow home {args.home}: migrating the metadata DB (first run only)")
    airflow_env.migrate(home)

    import boto3

    from airflow_provider_glue_labeling.emulator import Remote
    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people
    from airflow_provider_glue_labeling.history import KEEP_LABELING, chart_svg, read_history, table
    from airflow_provider_glue_labeling.versions import HAS_UI_PLUGINS
    from dev.deployment import USERS, deployment, wait_until

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
        env = {
            # The matching DAG is scheduled on this transform's asset, named when the DAG is parsed.
            "GLUE_FINDMATCHES_TRANSFORM_ID": transform_id,
            "GLUE_FINDMATCHES_BUCKET": BUCKET,
            # The scheduler creates asset-triggered runs (and the weekly DAG's one scheduled run, which
            # fails on the example's placeholder transform: the demo triggers its own rounds).
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": str(args.deferrable),
            "AIRFLOW__GLUE_LABELING__POLL_SECONDS": os.environ.get(
                "AIRFLOW__GLUE_LABELING__POLL_SECONDS", "1"
            ),
        }
        dags = {"examples": args.dags_folder}
        with deployment(home / "deployment", dags, home / airflow_env.PRISTINE_DB, env) as airflow:
            say(f"Airflow on {airflow.url}: api-server, scheduler, dag-processor and triggerer")
            page = airflow if HAS_UI_PLUGINS else None
            labeler = Labeler(glue, s3, transform_id, truth, page=None if args.label_yourself else page)
            if args.label_yourself:
                say(f"label it yourself: {airflow.url}/glue-labeling/ (user bea, password {USERS['bea'][1]})")
            else:
                labeler.start()
            airflow.settle_scheduled(DAG_ID, "evaluate")  # the weekly run's start, before the demo's
            conf = {
                "transform_id": transform_id,
                "bucket": BUCKET,
                "min_f1": args.min_f1,
                "min_gain": args.min_gain,
                "over_rounds": args.over_rounds,
                "label_floor": args.label_floor,
            }
            mode = "waits in the triggerer" if args.deferrable else "waits in the worker"
            true_f1: dict[int, float] = {}
            # One DAG run a round (weekly, in production): evaluate, then a labeling round or a stop.
            for number in range(1, args.max_rounds + 1):
                run_id = airflow.trigger(DAG_ID, conf)
                say(f"round {number}: triggered DAG {DAG_ID} through the REST API: run {run_id} ({mode})")

                def finished(run_id: str = run_id) -> str | None:
                    state = airflow.run_state(DAG_ID, run_id)
                    return state if state in ("success", "failed") else None

                days = 7 * 24 * 3600
                ended = wait_until(
                    finished, days if args.label_yourself else 900, "the DAG run", airflow.logs
                )
                decision = airflow.xcom(DAG_ID, run_id, "evaluate", "teaching_decision") or {}
                say(
                    f"round {number}: DAG run {ended}; decision {decision.get('decision')}, why: {decision.get('reason')}"
                )
                labels = glue.get_ml_transform(TransformId=transform_id).get("LabelCount") or 0
                if labels:  # the F1 Glue cannot know: the demo's data come with the truth
                    true_f1[labels] = Remote(endpoint).true_quality(transform_id, truth)["F1"]
                    say(
                        f"round {number}: {labels} labels now; their true F1 is {true_f1[labels]:.4f} "
                        "(Glue cannot know it; the next evaluation estimates it)"
                    )
                if ended != "success" or decision.get("decision") != KEEP_LABELING:
                    break
            print(f"\nDAG run {run_id}: {ended}")
            for task_id, state in airflow.states(DAG_ID, run_id, TASKS).items():
                print(f"  {task_id:<24}{state}")
            # The matching run asks people to review the groups it is unsure of: the labeler goes on.
            matched = wait_for_matches(airflow, wait_until) if ended == "success" else None
            labeler.stopped.set()
        print_metrics(glue.get_ml_transform(TransformId=transform_id))
        history = f"s3://{BUCKET}/quality-history/{transform_id}/"
        rounds = read_history(history)
        print(f"\nQuality history, {history} ({len(rounds)} rounds)\n{table(rounds)}")
        chart = home / "quality-rounds.svg"
        for round_ in rounds:
            round_["TrueF1"] = true_f1.get(round_.get("LabelCount") or 0)
        series = (("F1", "estimated F1", "#5b3fd1"), ("TrueF1", "true F1", "#d1495b"))
        chart.write_text(chart_svg(rounds, series=series))
        print(f"\nChart of the rounds: {chart}")
        if matched is not None:
            print_matches(s3, matched, truth)
    say(f"finished in {time.monotonic() - started:.1f}s")
    return 0 if ended == "success" and matched is not None else 1


def wait_for_matches(airflow: Any, wait_until: Any) -> dict[str, Any]:
    """The matching DAG's run after the last evaluation (through the transform's asset), once its
    review round is over: its summary."""
    say(
        f"waiting for {MATCHING_DAG_ID}, scheduled on the transform's asset, to run the FindMatches job "
        "and have the groups it is unsure of reviewed"
    )

    def matched() -> dict[str, Any] | None:
        for run in reversed(airflow.runs(MATCHING_DAG_ID)):
            if run["state"] == "success" and airflow.states(
                MATCHING_DAG_ID, run["dag_run_id"], ["count_matches"]
            ) == {"count_matches": "success"}:
                return dict(airflow.xcom(MATCHING_DAG_ID, run["dag_run_id"], "count_matches", "return_value"))
        return None

    summary: dict[str, Any] = wait_until(
        matched, 300, f"{MATCHING_DAG_ID} to write the matches", airflow.logs
    )
    return summary


def print_matches(s3: Any, summary: dict[str, Any], truth: dict[str, str]) -> None:
    """The matches the job wrote, and their pairwise precision and recall against the known truth."""
    from airflow_provider_glue_labeling.emulator.seed import pairwise_quality, read_matches

    quality = pairwise_quality(read_matches(s3, summary["output_path"]), truth, "id")
    print(
        f"\nMatches, {summary['output_path']} (the FindMatches job of {MATCHING_DAG_ID}):\n"
        f"  {quality['records']} records in {quality['match_groups']} match groups "
        f"({quality['entities']} true entities)\n"
        f"  pairwise against the known truth: precision {quality['precision']:.4f}, "
        f"recall {quality['recall']:.4f}, F1 {quality['f1']:.4f}"
    )


if __name__ == "__main__":
    sys.exit(main())
