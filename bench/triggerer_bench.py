"""Triggerer benchmark: our GlueMLTaskRunTrigger against the Amazon provider's GlueJobCompleteTrigger.

Run with ``make bench``. Everything talks to a moto server on 127.0.0.1 with the emulator; no
AWS account, no network. One run measures, side by side:

* triggerer load: N concurrent waits in one asyncio loop (the way the triggerer runs them),
  each polling K+1 times, in a fresh process per case, with the server in another process:
  peak RSS added per wait, CPU seconds per poll, wall time; and the steady-state CPU per poll
  as the marginal cost between K=2 and K=6 at N=1,000;
* DAG-parse cost: importing ``airflow.sdk`` and our operators and sensors against
  ``airflow.sdk`` and the Amazon ``base_aws`` operator and sensor, median of fresh processes;
* AWS calls per run: GetMLTaskRun calls for a run of known length T at delay d, from the
  emulator's call log, against ceil(T/d)+1.

It prints a table and writes the figures to ``bench/results/triggerer.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "triggerer.json"
DELAY = 1
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
RUNS_PER_TRANSFORM = 100


def environment(endpoint: str, home: str) -> dict[str, str]:
    connection = {"conn_type": "aws", "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    return {
        **os.environ,
        **FAKE_ENV,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
    }


class Server:
    """The emulator as a separate process on 127.0.0.1 (its CPU is not the waiters')."""

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "-m", "airflow_provider_glue_labeling.emulator", "--port", "0", *args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, env={**os.environ, **FAKE_ENV}
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        self.endpoint = line.strip().rsplit(" ", 1)[-1]
        if not self.endpoint.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the emulator did not start: {line!r}")

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def anchor_times_for(polls: int) -> tuple[int, int]:
    """moto's manual job-run transition that ends a run at poll ``polls`` (or the nearest)."""
    from moto import mock_aws
    from moto.moto_api import state_manager

    os.environ.update(FAKE_ENV)
    best = (1, 0)
    with mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        glue.create_job(
            Name="calibrate", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/s.py"}
        )
        for times in range(1, 10):
            state_manager.set_transition(
                model_name="glue::job_run", transition={"progression": "manual", "times": times}
            )
            run_id = glue.start_job_run(JobName="calibrate")["JobRunId"]
            count = 1
            while glue.get_job_run(JobName="calibrate", RunId=run_id)["JobRun"]["JobRunState"] != "SUCCEEDED":
                count += 1
            if abs(count - polls) < abs(best[1] - polls) or best[1] == 0:
                best = (times, count)
        state_manager.unset_transition("glue::job_run")
    return best


def prepare_runs(impl: str, endpoint: str, n: int, times: int) -> list[dict[str, str]]:
    glue = boto3.client("glue", region_name="us-east-1", endpoint_url=endpoint)
    if impl == "ours":
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        s3.create_bucket(Bucket="bench-exports")
        runs = []
        for start in range(0, n, RUNS_PER_TRANSFORM):
            transform_id = glue.create_ml_transform(
                Name=f"bench-{start}",
                InputRecordTables=[],
                Parameters={"TransformType": "FIND_MATCHES"},
                Role="r",
            )["TransformId"]
            for _ in range(min(RUNS_PER_TRANSFORM, n - start)):
                run_id = glue.start_export_labels_task_run(
                    TransformId=transform_id, OutputS3Path="s3://bench-exports/labels/"
                )["TaskRunId"]
                runs.append({"transform_id": transform_id, "task_run_id": run_id})
        return runs
    transition = {"model_name": "glue::job_run", "transition": {"progression": "manual", "times": times}}
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition", json=transition, timeout=30
    ).raise_for_status()
    glue.create_job(
        Name="bench-job",
        Role="r",
        Command={"Name": "glueetl", "ScriptLocation": "s3://bench/script.py"},
        ExecutionProperty={"MaxConcurrentRuns": n + 1},
    )
    return [
        {"job_name": "bench-job", "run_id": glue.start_job_run(JobName="bench-job")["JobRunId"]}
        for _ in range(n)
    ]


def load_case(impl: str, n: int, k: int, anchor_times: int) -> dict[str, Any]:
    """One triggerer-load case: a fresh server and a fresh waiting process."""
    server_args = ["--polls-to-finish", str(k), "--max-concurrent-runs", str(RUNS_PER_TRANSFORM + 1)]
    with Server(*server_args) as server, tempfile.TemporaryDirectory() as home:
        runs = prepare_runs(impl, server.endpoint, n, anchor_times)
        spec = Path(home) / "runs.json"
        spec.write_text(json.dumps(runs))
        worker = subprocess.run(
            [sys.executable, __file__, "--worker", impl, str(spec)],
            capture_output=True,
            text=True,
            env=environment(server.endpoint, home),
            timeout=900,
            check=False,
        )
        if worker.returncode != 0:
            raise RuntimeError(f"worker {impl} N={n} failed:\n{worker.stderr[-3000:]}")
        result = json.loads(worker.stdout.strip().splitlines()[-1])
    result.update(impl=impl, n=n, k=k)
    return result


def worker(impl: str, spec: Path) -> None:
    """Inside a fresh process: build the triggers and run them all in one loop, measuring it."""
    # Modules every wait needs are imported before the baseline: their one-off cost is not per wait.
    import aiobotocore.session  # noqa: F401
    import aiohttp  # noqa: F401
    import psutil
    from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger

    from airflow_provider_glue_labeling.triggers import GlueMLTaskRunTrigger

    runs = json.loads(spec.read_text())
    process = psutil.Process()
    base_rss = process.memory_info().rss
    peak = [base_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started_cpu, started = time.process_time(), time.perf_counter()
    if impl == "ours":
        triggers: list[Any] = [
            GlueMLTaskRunTrigger(**run, waiter_delay=DELAY, waiter_max_attempts=100, region_name="us-east-1")
            for run in runs
        ]
    else:
        triggers = [
            GlueJobCompleteTrigger(
                **run, waiter_delay=DELAY, waiter_max_attempts=100, region_name="us-east-1"
            )
            for run in runs
        ]

    async def wait(trigger: Any) -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise RuntimeError("no event")

    async def all_waits() -> list[dict[str, Any]]:
        return await asyncio.gather(*(wait(t) for t in triggers))

    events = asyncio.run(all_waits())
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    done.set()
    sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    failed = [e for e in events if e.get("status") != "success"]
    if failed:
        raise SystemExit(f"{len(failed)} waits failed, e.g. {failed[0]}")
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "rss_added_bytes": peak[0] - base_rss}))


def parse_cost(repeats: int) -> dict[str, float]:
    """CPU to import what a DAG file needs: the floor, then ours on top, in the same fresh process.

    The floor is ``airflow.sdk`` with the Amazon ``base_aws`` operator and sensor (what any
    AwsBaseOperator subclass pays); ours is the floor plus our operators and sensors. Measuring
    both in one process cancels the machine's noise between processes.
    """
    code = (
        "import time; t0 = time.process_time()\n"
        "import airflow.sdk, airflow.providers.amazon.aws.operators.base_aws, "
        "airflow.providers.amazon.aws.sensors.base_aws\n"
        "t1 = time.process_time()\n"
        "import airflow_provider_glue_labeling.operators, airflow_provider_glue_labeling.sensors\n"
        "print(t1 - t0, time.process_time() - t0)"
    )
    floors, totals = [], []
    with tempfile.TemporaryDirectory() as home:
        env = environment("http://127.0.0.1:9", home)
        for _ in range(repeats):
            out = subprocess.run(
                [sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True
            )
            floor, total = map(float, out.stdout.split())
            floors.append(floor)
            totals.append(total)
    ours_s, floor_s = statistics.median(totals), statistics.median(floors)
    return {"ours_s": ours_s, "floor_s": floor_s, "ratio": ours_s / floor_s, "repeats": repeats}


def calls_per_run(cases: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """GetMLTaskRun calls for runs of length T polled every d, from the emulator's call log."""
    home = tempfile.mkdtemp(prefix="bench-calls-")
    os.environ.update(environment("http://127.0.0.1:9", home))
    import airflow_provider_glue_labeling.emulator as emulator
    from airflow_provider_glue_labeling.triggers import GlueMLTaskRunTrigger

    out = []
    with emulator.serve() as endpoint:
        os.environ.update(environment(endpoint, home))
        glue = boto3.client("glue", region_name="us-east-1", endpoint_url=endpoint)
        boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint).create_bucket(Bucket="calls")
        transform_id = glue.create_ml_transform(
            Name="calls", InputRecordTables=[], Parameters={"TransformType": "FIND_MATCHES"}, Role="r"
        )["TransformId"]
        for length, delay in cases:
            emulator.reset()
            emulator.configure(run_seconds=length, starting_seconds=0)
            run_id = glue.start_export_labels_task_run(
                TransformId=transform_id, OutputS3Path="s3://calls/x/"
            )["TaskRunId"]
            trigger = GlueMLTaskRunTrigger(
                transform_id=transform_id, task_run_id=run_id, waiter_delay=delay, waiter_max_attempts=1000
            )

            async def wait(trigger: GlueMLTaskRunTrigger = trigger) -> None:
                async for _ in trigger.run():
                    return

            asyncio.run(wait())
            calls = len([c for c in emulator.calls("GetMLTaskRun") if c[2].get("TaskRunId") == run_id])
            out.append(
                {"T_s": length, "d_s": delay, "calls": calls, "expected": math.ceil(length / delay) + 1}
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "SPEC"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smaller N (100/300/1,000) for a fast look")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]))
        return

    started = time.perf_counter()
    sizes = [100, 300] if args.quick else [100, 1000]
    big = 1000 if args.quick else 10000
    k, k2 = 3, 6
    times_k, anchor_polls_k = anchor_times_for(k + 1)
    times_k2, anchor_polls_k2 = anchor_times_for(k2 + 1)
    print(
        f"anchor: moto job runs end at poll {anchor_polls_k} (K={k}) and {anchor_polls_k2} (K={k2})",
        flush=True,
    )

    cases: list[dict[str, Any]] = []
    plan = [("ours", n, k) for n in [*sizes, big]] + [("anchor", n, k) for n in sizes]
    plan += [("ours", sizes[-1], k2), ("anchor", sizes[-1], k2)]
    for impl, n, kk in plan:
        result = load_case(impl, n, kk, times_k if kk == k else times_k2)
        polls = (kk + 1) if impl == "ours" else (anchor_polls_k if kk == k else anchor_polls_k2)
        result.update(polls_per_wait=polls, cpu_ms_per_poll=1000 * result["cpu_s"] / (n * polls))
        result["kib_per_wait"] = result["rss_added_bytes"] / n / 1024
        cases.append(result)
        print(
            f"  {impl:<6} N={n:<6} K={kk}: {result['kib_per_wait']:8.1f} KiB/wait "
            f"{result['cpu_ms_per_poll']:6.2f} ms CPU/poll  {result['wall_s']:6.1f} s",
            flush=True,
        )

    def case(impl: str, n: int, kk: int) -> dict[str, Any]:
        return next(c for c in cases if (c["impl"], c["n"], c["k"]) == (impl, n, kk))

    steady = {}
    for impl in ("ours", "anchor"):
        low, high = case(impl, sizes[-1], k), case(impl, sizes[-1], k2)
        extra_polls = sizes[-1] * (high["polls_per_wait"] - low["polls_per_wait"])
        steady[impl] = 1000 * (high["cpu_s"] - low["cpu_s"]) / extra_polls
    parse = parse_cost(repeats=15)
    calls = calls_per_run([(2.5, 1.0), (3.7, 0.5)])
    figures = {
        "delay_s": DELAY,
        "load": cases,
        "steady_cpu_ms_per_poll": steady,
        "dag_parse": parse,
        "calls_per_run": calls,
        "ratios": {
            f"memory_per_wait_N{n}": case("ours", n, k)["kib_per_wait"] / case("anchor", n, k)["kib_per_wait"]
            for n in sizes
        }
        | {
            f"cpu_per_poll_N{n}": case("ours", n, k)["cpu_ms_per_poll"]
            / case("anchor", n, k)["cpu_ms_per_poll"]
            for n in sizes
        }
        | {"steady_cpu_per_poll": steady["ours"] / steady["anchor"], "dag_parse": parse["ratio"]},
        "bench_seconds": time.perf_counter() - started,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    print_table(figures, sizes, big, k)


def print_table(figures: dict[str, Any], sizes: list[int], big: int, k: int) -> None:
    load = {(c["impl"], c["n"], c["k"]): c for c in figures["load"]}
    print(f"\nTriggerer load (waiter_delay {figures['delay_s']:g} s, K={k}: each wait polls K+1 times)")
    print(
        "| waits | ours KiB/wait | anchor KiB/wait | ratio | ours ms CPU/poll | anchor ms CPU/poll | ratio | ours wall s | anchor wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in [*sizes, big]:
        ours, anchor = load[("ours", n, k)], load.get(("anchor", n, k))
        if anchor:
            print(
                f"| {n:,} | {ours['kib_per_wait']:.1f} | {anchor['kib_per_wait']:.1f} | "
                f"{ours['kib_per_wait'] / anchor['kib_per_wait']:.3f} | {ours['cpu_ms_per_poll']:.2f} | "
                f"{anchor['cpu_ms_per_poll']:.2f} | {ours['cpu_ms_per_poll'] / anchor['cpu_ms_per_poll']:.3f} | "
                f"{ours['wall_s']:.1f} | {anchor['wall_s']:.1f} |"
            )
        else:
            print(
                f"| {n:,} | {ours['kib_per_wait']:.1f} | - | - | {ours['cpu_ms_per_poll']:.2f} | - | - | "
                f"{ours['wall_s']:.1f} | - |"
            )
    steady = figures["steady_cpu_ms_per_poll"]
    print(
        f"\nSteady-state CPU per poll (marginal, K=3 -> 6 at N={sizes[-1]:,}): ours {steady['ours']:.2f} ms, "
        f"anchor {steady['anchor']:.2f} ms, ratio {steady['ours'] / steady['anchor']:.3f}"
    )
    parse = figures["dag_parse"]
    print(
        f"DAG-parse import (CPU, median of {parse['repeats']} processes): ours {parse['ours_s'] * 1000:.0f} ms, "
        f"base_aws floor {parse['floor_s'] * 1000:.0f} ms, ratio {parse['ratio']:.3f}"
    )
    for row in figures["calls_per_run"]:
        print(
            f"GetMLTaskRun calls for a run of T={row['T_s']} s at d={row['d_s']} s: {row['calls']} "
            f"(ceil(T/d)+1 = {row['expected']})"
        )
    print(
        f"\nfigures written to {RESULTS.relative_to(ROOT)}; benchmark took {figures['bench_seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
