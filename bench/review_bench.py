"""Review benchmark: once a transform has plateaued, do review sets teach it more per label than
Glue's labeling sets?

Run with ``make bench-review`` (``python bench/review_bench.py --first-seed N --seeds K``). Each
seed runs on the emulator, in process (real boto3 clients, no network), over
``people(PEOPLE, seed=s)``:

1. **Teach** a transform on Glue's labeling sets (``TAUGHT_ROUNDS`` rounds of about 100 labels,
   labeled from the known truth, imported), until it has plateaued.
2. **Copy** that taught state: export its labels and import them into a second transform over
   the same table; both then have the same labels, model and true F1.
3. Spend the same budget (``EXTRA_ROUNDS`` rounds of about 100 labels) two ways:

   * **labeling sets**: the first transform goes on with Glue's labeling sets;
   * **review sets**: each round, the second transform's FindMatches job runs with
     ``--compute_match_confidence_scores true`` (the example job script, Glue 2.0), the review
     set is built from its output by :func:`~airflow_provider_glue_labeling.labels.review_sets.build_review_set`
     with the operator's defaults, labeled from the truth and imported.

After each arm it reports the true F1 gain (``emulator.true_quality``, which Glue cannot know)
per 100 labels, and how the job's matches moved from the taught state to the arm's end, against
the truth: record pairs fixed (a wrong pair no longer matched, a missed pair now matched) and
broken, groups split and joined. The last line printed is one JSON object:
``{"seeds", "gain_ratio", "review_gain_per_100", "sets_gain_per_100"}`` (the ratio of the mean
gains over the seeds). Everything is written to ``bench/results/review.json``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from emulated import BUCKET, ROOT, Transform, emulated_transform, seed_parser, seeds_of

RESULTS = ROOT / "bench" / "results"
PEOPLE = 1000
TAUGHT_ROUNDS, EXTRA_ROUNDS = 10, 3


def pairs(group_of: dict[str, str]) -> set[tuple[str, str]]:
    """Every pair of records that share a group (each pair once)."""
    members: dict[str, list[str]] = {}
    for record, group in group_of.items():
        members.setdefault(group, []).append(record)
    return {p for group in members.values() for p in itertools.combinations(sorted(group), 2)}


def moved(before: dict[str, str], after: dict[str, str], truth: dict[str, str]) -> dict[str, int]:
    """How the matches moved from ``before`` to ``after`` (record id to match id), against the truth."""
    true = pairs({r: truth.get(r, r) for r in before})
    was, now = pairs(before), pairs(after)
    fixed = len((was - true) - now) + len((true - was) & now)
    broken = len((was & true) - now) + len((now - true) - was)
    groups_before: dict[str, set[str]] = {}
    groups_after: dict[str, set[str]] = {}
    for record in before:
        groups_before.setdefault(before[record], set()).add(after[record])
        groups_after.setdefault(after[record], set()).add(before[record])
    return {
        "pairs_fixed": fixed,
        "pairs_broken": broken,
        "groups_split": sum(len(into) > 1 for into in groups_before.values()),
        "groups_joined": sum(len(of) > 1 for of in groups_after.values()),
    }


def run(seed: int) -> dict[str, Any]:
    """One seed: teach, copy, then spend the same budget both ways; the figures of each arm."""
    from airflow_provider_glue_labeling.emulator.seed import (
        label_from_truth,
        pairwise_quality,
        people,
        read_matches,
    )
    from airflow_provider_glue_labeling.labels.review_sets import build_review_set

    population = people(PEOPLE, seed=seed)
    source, truth = population
    columns = next(csv.reader(io.StringIO(source.decode())))
    with emulated_transform(population, name=f"people-{seed}") as sets_arm:
        glue, s3 = sets_arm.glue, sets_arm.s3
        described = glue.get_ml_transform(TransformId=sets_arm.transform_id)
        review_arm = Transform(
            glue,
            s3,
            glue.create_ml_transform(
                Name=f"people-{seed}-review",
                InputRecordTables=described["InputRecordTables"],
                Parameters=described["Parameters"],
                Role=described["Role"],
                GlueVersion="2.0",
            )["TransformId"],
            truth,
        )
        s3.put_object(
            Bucket=BUCKET,
            Key="scripts/findmatches_job.py",
            Body=(ROOT / "example_dags" / "findmatches_job.py").read_bytes(),
        )
        glue.create_job(
            Name="findmatches",
            Role=described["Role"],
            Command={"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/scripts/findmatches_job.py"},
            GlueVersion="2.0",
        )
        step = itertools.count()

        def matches(transform: Transform) -> list[dict[str, str]]:
            output = f"s3://{BUCKET}/matches/{next(step)}/"
            run_id = glue.start_job_run(
                JobName="findmatches",
                Arguments={
                    "--transform_id": transform.transform_id,
                    "--output_path": output,
                    "--compute_match_confidence_scores": "true",
                },
            )["JobRunId"]
            job_run = glue.get_job_run(JobName="findmatches", RunId=run_id)["JobRun"]
            assert "ErrorMessage" not in job_run, job_run
            return read_matches(s3, output)

        def state(transform: Transform) -> tuple[int, float]:
            return transform.label_count(), transform.true_f1()

        curve = []
        for number in range(TAUGHT_ROUNDS):
            sets_arm.label_from_truth(number)
            curve.append(state(sets_arm)[1])
        export = sets_arm.run("start_export_labels_task_run", OutputS3Path=f"s3://{BUCKET}/export/")
        review_arm.import_labels(0, s3.get_object(Bucket=BUCKET, Key=f"export/{export}.csv")["Body"].read())
        taught = state(sets_arm)
        assert state(review_arm) == taught, (state(review_arm), taught)
        before = matches(sets_arm)

        for number in range(TAUGHT_ROUNDS, TAUGHT_ROUNDS + EXTRA_ROUNDS):
            sets_arm.label_from_truth(number)
        reviews = []
        for number in range(1, EXTRA_ROUNDS + 1):
            review = build_review_set(matches(review_arm), columns, "id")
            reviews.append({"in_band": review.in_band, "sets": len(review.sets)})
            if not review.sets:
                break
            review_arm.import_labels(number, label_from_truth(review.data, truth, "id"))

        found: dict[str, Any] = {
            "seed": seed,
            "taught_curve": curve,
            "taught_labels": taught[0],
            "reviews": reviews,
        }
        group_of = {row["id"]: row["match_id"] for row in before}
        found["before"] = pairwise_quality(before, truth, "id")
        for name, transform_id in (("sets", sets_arm), ("review", review_arm)):
            labels, f1 = state(transform_id)
            after = matches(transform_id)
            spent = labels - taught[0]
            found[name] = {
                "labels": spent,
                "f1_gain": round(f1 - taught[1], 6),
                "gain_per_100": round((f1 - taught[1]) / spent * 100, 6) if spent else 0.0,
                "matches_f1": round(pairwise_quality(after, truth, "id")["f1"], 6),
                **moved(group_of, {row["id"]: row["match_id"] for row in after}, truth),
            }
        found["taught_f1"] = taught[1]
    return found


def summary(found: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of each arm's figures over the seeds, and the ratio of the mean gains."""
    out: dict[str, Any] = {"seeds": len(found)}
    for arm in ("sets", "review"):
        out[arm] = {
            key: round(statistics.mean(f[arm][key] for f in found), 6)
            for key in (
                "labels",
                "f1_gain",
                "gain_per_100",
                "matches_f1",
                "pairs_fixed",
                "pairs_broken",
                "groups_split",
                "groups_joined",
            )
        }
        out[arm]["seeds_gaining"] = sum(f[arm]["f1_gain"] > 0 for f in found)
    # Paired by seed (the same taught state): the difference of the gains and its standard error.
    differences = [f["review"]["gain_per_100"] - f["sets"]["gain_per_100"] for f in found]
    out["difference_per_100"] = round(statistics.mean(differences), 6)
    out["difference_se"] = (
        round(statistics.stdev(differences) / len(differences) ** 0.5, 6) if len(differences) > 1 else None
    )
    out["review_ahead"] = sum(f["review"]["gain_per_100"] > f["sets"]["gain_per_100"] for f in found)
    sets_gain, review_gain = out["sets"]["gain_per_100"], out["review"]["gain_per_100"]
    out["gain_ratio"] = round(review_gain / sets_gain, 3) if sets_gain else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = seed_parser(__doc__, 20)
    args, seeds = seeds_of(parser, argv)
    started = time.monotonic()
    with ProcessPoolExecutor(args.workers) as pool:
        found = list(pool.map(run, seeds))
    result = summary(found)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "review.json").write_text(json.dumps({"summary": result, "seeds": found}, indent=1))
    print(
        "| arm | labels | true F1 gain | per 100 labels | seeds gaining | matches' pair F1 | pairs fixed | pairs broken | groups split | groups joined |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for arm, name in (("sets", "labeling sets"), ("review", "review sets")):
        r = result[arm]
        print(
            f"| {name} | {r['labels']:.0f} | {r['f1_gain']:+.4f} | {r['gain_per_100']:+.4f} | {r['seeds_gaining']} of {len(found)} "
            f"| {r['matches_f1']:.4f} | {r['pairs_fixed']:.1f} | {r['pairs_broken']:.1f} | {r['groups_split']:.1f} | {r['groups_joined']:.1f} |"
        )
    print(
        f"\nreview sets gain more per label than labeling sets on {result['review_ahead']} of {len(found)} seeds; "
        f"paired difference of the gains per 100 labels {result['difference_per_100']:+.4f} "
        f"(standard error {result['difference_se']})"
    )
    taught = statistics.mean(f["taught_f1"] for f in found)
    print(
        f"\nseeds {seeds[0]}-{seeds[-1]}, people({PEOPLE}); taught {TAUGHT_ROUNDS} rounds (true F1 {taught:.4f}, "
        f"matches' pair F1 {statistics.mean(f['before']['f1'] for f in found):.4f}), then {EXTRA_ROUNDS} rounds each way; "
        f"{time.monotonic() - started:.0f} s; written to {RESULTS}/review.json"
    )
    print(
        json.dumps(
            {
                "seeds": len(found),
                "gain_ratio": result["gain_ratio"],
                "review_gain_per_100": result["review"]["gain_per_100"],
                "sets_gain_per_100": result["sets"]["gain_per_100"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
