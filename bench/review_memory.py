"""Review-set memory: how much the worker holds to build a review set from a matching output.

``GlueMLReviewSetOperator`` reads the whole matching output into the worker (every row, and
the words of each for the nearest groups). This measures that, per record, with ``tracemalloc``:
for each seed, ``people(--people, seed=s)`` (about 1.34 records a person, seven columns) as a
FindMatches output (each person's records one match group, a made-up score from 0 to 1), the
CSV bytes as the operator gets them from S3, then ``read_matches`` and ``build_review_set`` at
the operator's defaults. Its last line is one JSON object:
``{"seeds", "records", "peak_mb", "bytes_per_record", "output_mb"}`` (means over the seeds).

``python bench/review_memory.py --first-seed 1000 --seeds 3 --people 75000``
"""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
import sys
import tracemalloc
from typing import Any

from emulated import seed_parser, seeds_of

from airflow_provider_glue_labeling.emulator.seed import people
from airflow_provider_glue_labeling.labels.review_sets import MATCH_ID, SCORE, build_review_set, read_matches


def matching_output(count: int, seed: int) -> tuple[bytes, list[str]]:
    """A FindMatches output with scores over ``people(count, seed)``: the CSV and its source columns."""
    source, truth = people(count, seed=seed)
    rows = list(csv.DictReader(io.StringIO(source.decode())))
    columns = list(rows[0])
    rng = random.Random(seed)
    score = {entity: f"{rng.random():.6f}" for entity in set(truth.values())}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*columns, MATCH_ID, SCORE])
    for row in rows:
        entity = truth[row["id"]]
        writer.writerow([*row.values(), entity, score[entity]])
    return out.getvalue().encode(), columns


def measure(count: int, seed: int) -> dict[str, Any]:
    data, columns = matching_output(count, seed)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    _, rows = read_matches([data])
    review = build_review_set(rows, columns, "id")
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return {"records": len(rows), "peak": peak, "output": len(data), "sets": len(review.sets)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = seed_parser(__doc__, seeds=3)
    parser.add_argument("--people", type=int, default=75_000, help="people in each seed's table")
    args, seeds = seeds_of(parser, argv)
    runs = []
    for seed in seeds:
        run = measure(args.people, seed)
        runs.append(run)
        print(
            f"seed {seed}: {run['records']} records, output {run['output'] / 1e6:.1f} MB, "
            f"peak {run['peak'] / 1e6:.1f} MB, {run['sets']} sets",
            flush=True,
        )
    summary = {
        "seeds": len(seeds),
        "records": round(statistics.mean(r["records"] for r in runs)),
        "peak_mb": round(statistics.mean(r["peak"] for r in runs) / 1e6, 1),
        "bytes_per_record": round(statistics.mean(r["peak"] / r["records"] for r in runs)),
        "output_mb": round(statistics.mean(r["output"] for r in runs) / 1e6, 1),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
