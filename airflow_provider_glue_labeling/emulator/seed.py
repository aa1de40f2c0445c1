"""Set up a FindMatches transform over a CSV source, make demo data and label it from known truth."""

from __future__ import annotations

import csv
import io
import itertools
import random
from pathlib import Path
from typing import Any

PEOPLE_COLUMNS = ("id", "first_name", "last_name", "email", "phone", "city", "birth_year")
_FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Edsger",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "John",
    "Radia",
    "Tim",
    "Hedy",
    "Dennis",
]
_LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Dijkstra",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Backus",
    "Perlman",
    "Lee",
    "Lamarr",
    "Ritchie",
]
_CITY = [
    "Berlin",
    "Lisbon",
    "Oslo",
    "Porto",
    "Lyon",
    "Turin",
    "Ghent",
    "Leeds",
    "Cork",
    "Graz",
    "Brno",
    "Pecs",
    "Split",
    "Tartu",
    "Malmo",
]


def create_findmatches_transform(
    glue: Any,
    s3: Any,
    *,
    bucket: str,
    source_csv: bytes,
    primary_key: str,
    name: str = "findmatches",
    database: str = "findmatches",
    table: str = "records",
) -> str:
    """Upload ``source_csv``, catalog it as a table and create a FindMatches transform over it.

    :param glue: a boto3 Glue client (against the emulator or AWS).
    :param s3: a boto3 S3 client.
    :param bucket: the bucket for the source data (created when missing).
    :param source_csv: the records, CSV with a header.
    :param primary_key: the column that identifies a record.
    :return: the TransformId.
    """
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=f"source/{table}/records.csv", Body=source_csv)
    columns = next(csv.reader(io.StringIO(source_csv.decode("utf-8-sig"))))
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(
        DatabaseName=database,
        TableInput={
            "Name": table,
            "StorageDescriptor": {
                "Location": f"s3://{bucket}/source/{table}/",
                "Columns": [{"Name": c, "Type": "string"} for c in columns],
            },
            "Parameters": {"classification": "csv"},
        },
    )
    return glue.create_ml_transform(
        Name=name,
        InputRecordTables=[{"DatabaseName": database, "TableName": table}],
        Parameters={
            "TransformType": "FIND_MATCHES",
            "FindMatchesParameters": {"PrimaryKeyColumnName": primary_key, "PrecisionRecallTradeoff": 0.5},
        },
        Role="arn:aws:iam::123456789012:role/GlueFindMatches",
        GlueVersion="2.0",
    )["TransformId"]


def people(count: int = 400, duplicate_share: float = 0.35, seed: int = 7) -> tuple[bytes, dict[str, str]]:
    """Made-up people, some entered twice with typos; returns the CSV and record id -> person."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    truth: dict[str, str] = {}
    for person in range(count):
        first, last, city = rng.choice(_FIRST), rng.choice(_LAST), rng.choice(_CITY)
        year = str(rng.randint(1940, 2005))
        email = f"{first}.{last}{rng.randint(1, 999)}@example.com".lower()
        phone = f"+44 {rng.randint(1000, 9999)} {rng.randint(100000, 999999)}"
        copies = 2 if rng.random() < duplicate_share else 1
        for copy in range(copies):
            # A second entry of a person has the errors people make when typing a record again.
            again = copy > 0
            record = {
                "id": f"r{len(rows):05d}",
                "first_name": _typo(rng, first) if again and rng.random() < 0.6 else first,
                "last_name": _typo(rng, last) if again and rng.random() < 0.3 else last,
                "email": email if not again else rng.choice(["", email, email, _typo(rng, email)]),
                "phone": phone if not again else rng.choice(["", phone, _typo(rng, phone)]),
                "city": "" if again and rng.random() < 0.15 else city,
                "birth_year": str(int(year) + rng.choice((-1, 1))) if again and rng.random() < 0.2 else year,
            }
            rows.append(record)
            truth[record["id"]] = f"p{person:05d}"
    rng.shuffle(rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PEOPLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8"), truth


def dblp_acm(folder: Path) -> tuple[bytes, dict[str, str]]:
    """The DBLP-ACM entity-matching benchmark in ``folder`` (its files ``DBLP2.csv``, ``ACM.csv``
    and ``DBLP-ACM_perfectMapping.csv``) as one table (id, title, authors, venue, year), and
    record id -> entity."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "title", "authors", "venue", "year"])
    for name in ("DBLP2.csv", "ACM.csv"):
        with open(folder / name, encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            next(rows)
            writer.writerows(rows)
    truth = {}
    with open(folder / "DBLP-ACM_perfectMapping.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            truth[row["idDBLP"]] = truth[row["idACM"]] = row["idACM"]
    return out.getvalue().encode(), truth


def _typo(rng: random.Random, word: str) -> str:
    """One slip of the keyboard: a letter dropped, doubled, swapped with the next or replaced."""
    at = rng.randrange(len(word))
    kind = rng.randrange(4)
    if kind == 0 or len(word) < 3:
        return word[:at] + word[at + 1 :]
    if kind == 1:
        return word[: at + 1] + word[at:]
    if kind == 2 and at < len(word) - 1:
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return word[:at] + rng.choice("aeiouns") + word[at + 1 :]


def read_matches(s3: Any, output_path: str) -> list[dict[str, str]]:
    """Every row a FindMatches job wrote under ``output_path`` (its CSV files, read in key order).

    :param s3: a boto3 S3 client.
    :param output_path: the job's ``--output_path``, ``s3://bucket/prefix/``.
    """
    from airflow_provider_glue_labeling.validation import check_s3_uri

    bucket, prefix = check_s3_uri("output_path", output_path)
    rows: list[dict[str, str]] = []
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        rows.extend(csv.DictReader(io.StringIO(body)))
    return rows


def pairwise_quality(matches: list[dict[str, str]], truth: dict[str, str], key: str) -> dict[str, Any]:
    """Pairwise precision, recall and F1 of a matching job's output against the known truth.

    Two records are a predicted pair when they share a ``match_id``, a true pair when they belong
    to one entity; each pair counts once. Also: records, match groups, true entities.

    :param matches: the job's rows (source columns and ``match_id``).
    :param truth: record id (``key``'s value) to its entity.
    """
    predicted = _pairs({row[key]: row["match_id"] for row in matches})
    true = _pairs({row[key]: truth.get(row[key], row[key]) for row in matches})
    hits = len(predicted & true)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(true) if true else 0.0
    return {
        "records": len(matches),
        "match_groups": len({row["match_id"] for row in matches}),
        "entities": len({truth.get(row[key], row[key]) for row in matches}),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


def _pairs(group_of: dict[str, str]) -> set[tuple[str, str]]:
    members: dict[str, list[str]] = {}
    for record, group in group_of.items():
        members.setdefault(group, []).append(record)
    return {(a, b) for group in members.values() for a, b in itertools.combinations(sorted(group), 2)}


def label_from_truth(labeling_set: bytes, truth: dict[str, str], primary_key: str) -> bytes:
    """Fill the ``label`` column of a labeling set: records of one true entity share a label."""
    reader = csv.DictReader(io.StringIO(labeling_set.decode("utf-8-sig")))
    rows = list(reader)
    for row in rows:
        row["label"] = truth.get(row[primary_key], row[primary_key])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
