"""Stopping-rule benchmark: when does each plateau rule stop asking for labels, against the truth?

Run with ``make bench-stopping``. The teaching loop runs on the emulator (in process, real boto3
clients, no network): generate a labeling set (about 100 records), label it from the known
truth, import the labels, evaluate, record the round. It runs for 20 seeds of made-up people
(``people(400, seed=s)``) and for the DBLP-ACM sample in ``tests/data/dblp-acm``, 15 rounds and
two more to see where the true F1 went next. After each round the emulator also reports the
transform's *true* F1 against the full known truth (which Glue cannot know), and each rule is
asked, on the rounds so far, whether to stop:

* **before**: the first plateau rule (never released), on point estimates: F1 rose by less than
  ``min_gain`` from the round ``over_rounds`` before the last to the last (kept here as the
  baseline);
* **after**: :func:`airflow_provider_glue_labeling.history.decide`, the rule of this version
  (a trend weighted by each round's uncertainty, its 95 % upper bound, the label floor).

Both at their defaults: ``min_gain=0.01`` (the example DAG's), ``over_rounds`` 2 before and 3 after
(and the label floor of 10). For each rule
it reports the rounds and labels until the stop (a rule that never stops in 15 rounds stops at
15), the true F1 at the stop, how often it stopped *prematurely* (the true F1 still rose by at
least ``min_gain`` within the next two rounds) and how many rounds it went on after the true F1
stopped rising (*late*: the stop minus the first round from which no stop would have been
premature). It prints a table, writes ``bench/results/stopping.json`` and the chart of one
seed's estimated F1 (with its 95 % band) against its true F1 to ``bench/results/stopping.svg``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DBLP_ACM = ROOT / "tests" / "data" / "dblp-acm"
MIN_GAIN, HORIZON, LOOK_AHEAD = 0.01, 15, 2
OVER_ROUNDS_BEFORE, OVER_ROUNDS_AFTER = 2, 3  # each rule's default
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def teach(name: str, seed: int | None, rounds: int = HORIZON + LOOK_AHEAD) -> list[dict[str, Any]]:
    """The teaching loop on the emulator: each round's record, with ``TrueF1`` beside Glue's metrics."""
    os.environ.update(FAKE_ENV)
    logging.disable(logging.INFO)  # botocore's "Found credentials" once per client
    import boto3
    from moto import mock_aws

    from airflow_provider_glue_labeling import emulator
    from airflow_provider_glue_labeling.emulator.seed import (
        create_findmatches_transform,
        dblp_acm,
        label_from_truth,
        people,
    )
    from airflow_provider_glue_labeling.quality.rounds import make_round

    emulator.configure(starting_seconds=0, run_seconds=0, stop_seconds=0)
    source, truth = people(400, seed=seed) if seed is not None else dblp_acm(DBLP_ACM)
    out = []
    with mock_aws():
        glue, s3 = boto3.client("glue"), boto3.client("s3")
        transform_id = create_findmatches_transform(
            glue, s3, bucket="bench", source_csv=source, primary_key="id", name=name
        )

        def run(call: str, **arguments: Any) -> str:
            run_id = getattr(glue, call)(TransformId=transform_id, **arguments)["TaskRunId"]
            status = glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)
            assert status["Status"] == "SUCCEEDED", status
            return str(run_id)

        for number in range(rounds):
            run_id = run(
                "start_ml_labeling_set_generation_task_run", OutputS3Path=f"s3://bench/sets/{number}/"
            )
            labeling_set = s3.get_object(Bucket="bench", Key=f"sets/{number}/{run_id}.csv")["Body"].read()
            labels = label_from_truth(labeling_set, truth, "id")
            s3.put_object(Bucket="bench", Key=f"labels/{number}.csv", Body=labels)
            run(
                "start_import_labels_task_run",
                InputS3Path=f"s3://bench/labels/{number}.csv",
                ReplaceAllLabels=False,
            )
            evaluation = run("start_ml_evaluation_task_run")
            transform = dict(glue.get_ml_transform(TransformId=transform_id))
            round_ = make_round(transform, evaluation, None, None)
            round_["time"] = f"{number:04d}"
            round_["TrueF1"] = emulator.true_quality(transform_id, truth)["F1"]
            out.append(round_)
    return out


def rule_before(rounds: list[dict[str, Any]]) -> bool:
    """The first plateau rule, never released: F1 over ``over_rounds`` rounds rose by under ``MIN_GAIN``."""
    if len(rounds) <= OVER_ROUNDS_BEFORE:
        return False
    return round(rounds[-1]["F1"] - rounds[-1 - OVER_ROUNDS_BEFORE]["F1"], 9) < MIN_GAIN


def rule_after(rounds: list[dict[str, Any]]) -> bool:
    from airflow_provider_glue_labeling.history import PLATEAU, decide

    return decide(rounds, MIN_GAIN, OVER_ROUNDS_AFTER, {})["decision"] == PLATEAU


def premature(true_f1: list[float], stop: int) -> bool:
    """Stopping after round ``stop`` (0-based) left a rise of at least MIN_GAIN within two rounds."""
    return max(true_f1[stop + 1 : stop + 1 + LOOK_AHEAD]) >= true_f1[stop] + MIN_GAIN


def judge(rounds: list[dict[str, Any]], rule: Any) -> dict[str, Any]:
    """Where ``rule`` stops on these rounds, and how that compares with the true F1."""
    true_f1 = [r["TrueF1"] for r in rounds]
    stopped = next((n for n in range(HORIZON) if rule(rounds[: n + 1])), None)
    stop = HORIZON - 1 if stopped is None else stopped
    # the first round from which no stop is premature (the last, when the true F1 never settles)
    settled = next(
        (n for n in range(HORIZON) if not any(premature(true_f1, m) for m in range(n, HORIZON))), HORIZON - 1
    )
    return {
        "rounds": stop + 1,
        "labels": rounds[stop]["LabelCount"],
        "stopped": stopped is not None,
        "true_f1": true_f1[stop],
        "premature": stopped is not None and premature(true_f1, stop),
        "late": max(0, stop - settled),
    }


def summary(judged: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": len(judged),
        "premature": sum(j["premature"] for j in judged),
        "late_median": statistics.median(j["late"] for j in judged),
        "late_mean": round(statistics.mean(j["late"] for j in judged), 1),
        "rounds_median": statistics.median(j["rounds"] for j in judged),
        "labels_median": statistics.median(j["labels"] for j in judged),
        "true_f1_median": round(statistics.median(j["true_f1"] for j in judged), 4),
        "never_stopped": sum(not j["stopped"] for j in judged),
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        "| rule | data | premature stops | rounds late (median, mean) | rounds to stop (median) | "
        "labels at stop (median) | true F1 at stop (median) | no stop in 15 rounds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rule in ("before", "after"):
        for data, found in results[rule].items():
            lines.append(
                f"| {rule} | {data} | {found['premature']} of {found['runs']} | "
                f"{found['late_median']:g}, {found['late_mean']:g} | "
                f"{found['rounds_median']:g} | {found['labels_median']:g} | {found['true_f1_median']:.3f} | "
                f"{found['never_stopped']} of {found['runs']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds of made-up people")
    parser.add_argument("--first-seed", type=int, default=0, help="the first of them")
    parser.add_argument(
        "--chart-seed",
        type=int,
        help="the people seed the chart shows (default: the first where both rules stop)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="judge the rounds of the last run again")
    args = parser.parse_args(argv)
    started = time.monotonic()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    runs: dict[str, int | None] = {f"people-{seed}": seed for seed in seeds}
    runs["dblp-acm"] = None
    if args.reuse:
        rounds = json.loads((RESULTS / "stopping.json").read_text())["rounds"]
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            rounds = dict(zip(runs, pool.map(teach, runs, runs.values()), strict=True))
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "stopping.json").write_text(json.dumps({"rounds": rounds}))
    results: dict[str, Any] = {}
    for rule_name, rule in (("before", rule_before), ("after", rule_after)):
        judged = {name: judge(found, rule) for name, found in rounds.items()}
        people_runs = [j for name, j in judged.items() if name != "dblp-acm"]
        results[rule_name] = {
            f"people, {args.seeds} seeds" + (f" from {args.first_seed}" if args.first_seed else ""): summary(
                people_runs
            ),
            "DBLP-ACM sample": summary([judged["dblp-acm"]]),
        }
        results[f"{rule_name}_runs"] = judged
    from airflow_provider_glue_labeling.history import chart_svg

    both = [
        n
        for n in runs
        if n != "dblp-acm" and all(results[f"{r}_runs"][n]["stopped"] for r in ("before", "after"))
    ]
    name = f"people-{args.chart_seed}" if args.chart_seed is not None else (both or ["people-0"])[0]
    shown = rounds[name][:HORIZON]
    series = (("F1", "estimated F1", "#5b3fd1"), ("TrueF1", "true F1", "#d1495b"))
    marks: dict[int, str] = {}
    for rule_name in ("before", "after"):
        stop = results[f"{rule_name}_runs"][name]
        note = f"{rule_name}: {'stop' if stop['stopped'] else 'no stop in 15 rounds'}"
        marks[stop["labels"]] = f"{marks[stop['labels']]}, {note}" if stop["labels"] in marks else note
    (RESULTS / "stopping.svg").write_text(chart_svg(shown, series=series, marks=marks))
    (RESULTS / "stopping.json").write_text(json.dumps({"results": results, "rounds": rounds}, indent=1))
    print(table(results))
    print(f"\nThe chart shows {name}.")
    print(
        f"\nmin_gain={MIN_GAIN}, over_rounds {OVER_ROUNDS_BEFORE} before and {OVER_ROUNDS_AFTER} after, "
        f"{HORIZON} rounds of ~100 labels; "
        f"{time.monotonic() - started:.0f} s; written to {RESULTS}/stopping.json and stopping.svg"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
