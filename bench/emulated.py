"""What the benchmarks share: a FindMatches transform over made-up people on the emulator, in
process (real boto3 clients against ``mock_aws()``, no network, fake credentials), taught a round
at a time.

    with emulated_transform(people(1500, seed=7)) as transform:
        labeling_set = transform.labeling_set(0)
        transform.import_labels(0, label_from_truth(labeling_set, transform.truth, "id"))
        transform.true_f1()
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This checkout's package, also when the venv installed another checkout's.
sys.path.insert(0, str(ROOT))

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKET = "bench"


class Transform:
    """A FindMatches transform on the emulator and the known truth of its records.

    :param glue: a boto3 Glue client.
    :param s3: a boto3 S3 client.
    :param transform_id: the transform.
    :param truth: record id to entity.
    """

    def __init__(self, glue: Any, s3: Any, transform_id: str, truth: dict[str, str]) -> None:
        self.glue, self.s3, self.transform_id, self.truth = glue, s3, transform_id, truth

    def run(self, call: str, **arguments: Any) -> str:
        """Start a task run (``call``, a Glue client method) and check that it succeeded (the
        emulator, configured to take no time, ends it by the first poll); its TaskRunId."""
        run_id = str(getattr(self.glue, call)(TransformId=self.transform_id, **arguments)["TaskRunId"])
        status = self.glue.get_ml_task_run(TransformId=self.transform_id, TaskRunId=run_id)
        assert status["Status"] == "SUCCEEDED", status
        return run_id

    def labeling_set(self, number: int) -> bytes:
        """Generate labeling set ``number`` (about 100 records) and read it."""
        run_id = self.run(
            "start_ml_labeling_set_generation_task_run", OutputS3Path=f"s3://{BUCKET}/sets/{number}/"
        )
        return bytes(self.s3.get_object(Bucket=BUCKET, Key=f"sets/{number}/{run_id}.csv")["Body"].read())

    def import_labels(self, number: int, body: bytes, replace: bool = False) -> None:
        """Import the labels file ``body`` as round ``number``'s (``ReplaceAllLabels=replace``)."""
        key = f"{self.transform_id}/labels/{number}.csv"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        self.run("start_import_labels_task_run", InputS3Path=f"s3://{BUCKET}/{key}", ReplaceAllLabels=replace)

    def label_from_truth(self, number: int) -> None:
        """Round ``number``: a labeling set, labeled from the truth by careful people, imported."""
        from airflow_provider_glue_labeling.emulator.seed import label_from_truth

        self.import_labels(number, label_from_truth(self.labeling_set(number), self.truth, "id"))

    def label_count(self) -> int:
        """The transform's ``LabelCount``."""
        return int(self.glue.get_ml_transform(TransformId=self.transform_id).get("LabelCount") or 0)

    def true_f1(self) -> float:
        """The F1 of the transform's model against the full truth (Glue cannot know it)."""
        from airflow_provider_glue_labeling import emulator

        return float(emulator.true_quality(self.transform_id, self.truth)["F1"])


@contextlib.contextmanager
def emulated_transform(population: tuple[bytes, dict[str, str]], name: str = "people") -> Iterator[Transform]:
    """A transform over ``population`` (a source CSV with an ``id`` column and its truth, as
    :func:`~airflow_provider_glue_labeling.emulator.seed.people` makes it), on a fresh emulator.

    :param population: the source records and record id to entity.
    :param name: the transform's name.
    """
    os.environ.update(FAKE_ENV)
    logging.disable(logging.INFO)  # botocore's "Found credentials" once per client
    import boto3
    from moto import mock_aws

    from airflow_provider_glue_labeling import emulator
    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform

    emulator.configure(starting_seconds=0, run_seconds=0, stop_seconds=0)
    source, truth = population
    with mock_aws():
        glue, s3 = boto3.client("glue"), boto3.client("s3")
        transform_id = create_findmatches_transform(
            glue, s3, bucket=BUCKET, source_csv=source, primary_key="id", name=name
        )
        yield Transform(glue, s3, transform_id, truth)


def seed_parser(description: str | None, seeds: int) -> argparse.ArgumentParser:
    """A benchmark's command line: ``--first-seed N --seeds K --workers W`` (see :func:`seeds_of`).

    :param description: the benchmark's docstring.
    :param seeds: how many seeds by default.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first-seed", type=int, default=1000, help="the first seed of people")
    parser.add_argument("--seeds", type=int, default=seeds, help="how many seeds (at least 1)")
    parser.add_argument("--workers", type=int, default=2, help="processes (at least 1)")
    return parser


def seeds_of(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, list[int]]:
    """The parsed arguments and the seeds they name; a count below 1 is refused by name."""
    args = parser.parse_args(argv)
    for name in ("seeds", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)}: expected at least 1")
    return args, list(range(args.first_seed, args.first_seed + args.seeds))
