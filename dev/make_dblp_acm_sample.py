"""Make the DBLP-ACM sample under ``tests/data/dblp-acm/`` from the full benchmark.

``python -m dev.make_dblp_acm_sample FULL_DIR`` keeps every ``--every``-th true match (both its
records) and as many DBLP and ACM records without a match, in the benchmark's own file layout,
so the tests read the sample and the full files alike. The output is deterministic.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "dblp-acm"
FILES = ("DBLP2.csv", "ACM.csv", "DBLP-ACM_perfectMapping.csv")


def read(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("full_dir", type=Path, help="the folder with the benchmark's three CSV files")
    parser.add_argument("--every", type=int, default=15, help="keep every N-th true match")
    parser.add_argument("--unmatched", type=int, default=50, help="records without a match, per source")
    args = parser.parse_args(argv)
    mapping_header, mapping = read(args.full_dir / FILES[2])
    kept = sorted(mapping)[:: args.every]
    keep = {0: {m[0] for m in kept}, 1: {m[1] for m in kept}}
    matched = {0: {m[0] for m in mapping}, 1: {m[1] for m in mapping}}
    OUT.mkdir(parents=True, exist_ok=True)
    for side, name in enumerate(FILES[:2]):
        header, rows = read(args.full_dir / name)
        alone = sorted((r for r in rows if r[0] not in matched[side]), key=lambda r: r[0])
        chosen = {r[0] for r in alone[: args.unmatched]} | keep[side]
        write(OUT / name, header, sorted((r for r in rows if r[0] in chosen), key=lambda r: r[0]))
    write(OUT / FILES[2], mapping_header, kept)


if __name__ == "__main__":
    main()
