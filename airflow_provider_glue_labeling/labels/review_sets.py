"""Review sets: the match groups a FindMatches job is unsure of, as a labeling set people label.

AWS's advice for match confidence scores ("Estimating the quality of matches using match
confidence scores", AWS Glue developer guide, https://docs.aws.amazon.com/glue/latest/dg/match-scoring.html):
merge the groups the model is highly confident of, have a human review the uncertain ones,
reject the unlikely ones, and adjust the training data where a score proves wrong.
:func:`build_review_set` turns the uncertain groups of a matching job's output into labeling
sets in Glue's format, each group with the records nearest to it, so that people labeling it
(the labeling page, :class:`~airflow_provider_glue_labeling.labeling.GlueMLLabelingOperator`)
split a group or join it to another. Pure functions over the job's rows; the operator that runs
it in a DAG is :class:`~airflow_provider_glue_labeling.review.GlueMLReviewSetOperator`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from airflow_provider_glue_labeling.labels.format import LABEL_COLUMNS

MATCH_ID = "match_id"
SCORE = "match_confidence_score"
# Glue's labeling sets: "about 100 records in about 10 sets"; a set of 2 to 30 rows is fine, over 50
# "may cause poor results or system failure" (AWS Glue developer guide, "Labeling file format").
SET_SIZE = 10
MAX_SETS = 10
MAX_SET_ROWS = 30
_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class ReviewedGroup:
    """One set of a review set: the match group it asks about and the records shown with it.

    :param set_id: the set's ``labeling_set_id``.
    :param match_id: the group's ``match_id``.
    :param score: the group's ``match_confidence_score``.
    :param records: the group's records.
    :param neighbours: records of the nearest other groups shown with it.
    """

    set_id: str
    match_id: str
    score: float
    records: int
    neighbours: int


@dataclass(frozen=True)
class ReviewSet:
    """What :func:`build_review_set` made.

    :param data: the review set, CSV in Glue's labeling-set format (empty when it has no set).
    :param sets: each set, most uncertain group first.
    :param in_band: the match groups whose score lies in the band.
    :param too_big: groups in the band left out: of ``MAX_SET_ROWS`` records or more, too many
        to show with another group in one set.
    """

    data: bytes
    sets: list[ReviewedGroup] = field(default_factory=list)
    in_band: int = 0
    too_big: int = 0

    @property
    def name(self) -> str:
        """A name for the file, the same for the same review set: ``review-<12 hex>.csv``."""
        return f"review-{hashlib.sha256(self.data).hexdigest()[:12]}.csv"


def matches_problem(header: Sequence[str], schema: Sequence[str]) -> str | None:
    """What keeps a matching job's output from making a review set, or None.

    :param header: the output's columns.
    :param schema: the transform's source columns (``GetMLTransform`` ``Schema``).
    """
    if MATCH_ID not in header:
        return (
            f"expected a FindMatches job's output, CSV with a {MATCH_ID} column; found the columns "
            f"{list(header)}"
        )
    if SCORE not in header:
        return (
            f"the matching output has no {SCORE} column: run FindMatches with "
            "computeMatchConfidenceScores=True (the example job: --compute_match_confidence_scores true)"
        )
    missing = [c for c in schema if c not in header]
    if missing:
        return (
            f"the matching output lacks the transform's columns {missing} (its schema is {list(schema)}): "
            "expected the output of a job applying this transform"
        )
    return None


def read_matches(files: list[bytes]) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of a matching job's CSV files (Spark writes one or more, each with
    its header; an empty file is skipped).

    :raises ValueError: files whose headers differ.
    """
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    for data in files:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        if reader.fieldnames is None:
            continue
        if header is not None and list(reader.fieldnames) != header:
            raise ValueError(f"its files have different columns: {header} and {list(reader.fieldnames)}")
        header = list(reader.fieldnames)
        rows.extend(reader)
    return header or [], rows


def _bag(row: dict[str, str], columns: Sequence[str]) -> frozenset[str]:
    return frozenset(_TOKEN.findall(" ".join(row.get(c) or "" for c in columns).lower()))


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def build_review_set(
    matches: list[dict[str, str]],
    columns: Sequence[str],
    primary_key: str | None = None,
    *,
    min_confidence: float = 0.4,
    max_confidence: float = 0.8,
    max_sets: int = MAX_SETS,
    set_size: int = SET_SIZE,
) -> ReviewSet:
    """A review set from a matching job's rows: the groups it is unsure of, as labeling sets.

    A group is in the band when ``min_confidence <= match_confidence_score <= max_confidence``
    (a group's score is its records' mean; FindMatches gives every record of a group the same).
    The groups nearest the middle of the band come first (ties by ``match_id``), up to
    ``max_sets``. Each becomes one labeling set: its records, then the nearest other groups,
    whole, while the set has at most ``set_size`` rows (a group of ``set_size`` records or more
    gets its nearest group, or that group's nearest records, up to ``MAX_SET_ROWS``). Nearest is
    a cheap token overlap: the Jaccard index of the words (lower-case letters and digits) of two
    records' columns but the primary key; a group is as near as its nearest record to any record
    of the reviewed group. A record is shown in one set only, and a group already shown beside
    another is not asked about again. Labels are left empty, as in a generated labeling set.

    Set ids are ``review-<12 hex>-<number>``, the hex from the records shown: labels mean
    something within their set only, and a review set's sets never merge with another's.

    :param matches: the job's rows: the source columns, ``match_id`` and ``match_confidence_score``.
    :param columns: the transform's source columns, in order: the review set's columns after
        ``labeling_set_id,label``.
    :param primary_key: the transform's primary key column, which the overlap leaves out.
    :param min_confidence: the band's low end (0 to 1).
    :param max_confidence: the band's high end (0 to 1, above ``min_confidence``).
    :param max_sets: at most this many sets (groups reviewed).
    :param set_size: the rows a set fills up to with nearby groups (2 to ``MAX_SET_ROWS``).
    :raises ValueError: rows without ``match_id``, with a score that is not a number from 0 to 1,
        or with a primary key another row has.
    """
    members: dict[str, list[int]] = {}
    seen: dict[str, int] = {}
    for number, row in enumerate(matches):
        if not row.get(MATCH_ID):
            raise ValueError(f"record {number + 1} has no {MATCH_ID}")
        members.setdefault(row[MATCH_ID], []).append(number)
        if primary_key is not None:
            first = seen.setdefault(row.get(primary_key) or "", number)
            if first != number:
                # A job writes each record once; Glue adds files to an output path, it does not
                # replace them, so two runs' outputs under one prefix show each record twice.
                raise ValueError(
                    f"records {first + 1} and {number + 1} have the same {primary_key} "
                    f"{row.get(primary_key)!r}: expected each record once, as one job run writes it "
                    "(are two runs' outputs under this path? give each run its own --output_path)"
                )
    scores: dict[str, float] = {}
    for match_id, group in members.items():
        values = []
        for number in group:
            try:
                value = float(matches[number].get(SCORE) or "nan")
            except ValueError:
                value = float("nan")
            if not 0 <= value <= 1:
                raise ValueError(
                    f"record {number + 1} has {SCORE}={matches[number].get(SCORE)!r}; expected a number from 0 to 1"
                )
            values.append(value)
        scores[match_id] = sum(values) / len(values)
    middle = (min_confidence + max_confidence) / 2
    in_band = sorted(
        (m for m, s in scores.items() if min_confidence <= s <= max_confidence),
        key=lambda m: (abs(scores[m] - middle), m),
    )
    compared = [c for c in columns if c != primary_key]
    bags = [_bag(row, compared) for row in matches]
    shown: set[str] = set()  # groups whose records are in a set already
    chosen: list[tuple[str, list[int]]] = []
    too_big = 0
    for match_id in in_band:
        if len(chosen) == max_sets:
            break
        group = members[match_id]
        if match_id in shown:
            continue
        if len(group) >= MAX_SET_ROWS:
            too_big += 1
            continue
        capacity = min(MAX_SET_ROWS, max(set_size, len(group) + 1))
        near = [
            max(_overlap(bags[i], bags[j]) for j in group) if matches[i][MATCH_ID] not in shown else -1.0
            for i in range(len(matches))
        ]
        others = sorted(
            (m for m in members if m != match_id and m not in shown),
            key=lambda m: (-max(near[i] for i in members[m]), m),
        )
        rows = list(group)
        for other in others:
            if len(rows) == capacity:
                break
            records = members[other]
            if len(rows) + len(records) > capacity:
                if len(rows) == len(group):  # the nearest group is too big: its nearest records
                    rows.extend(sorted(records, key=lambda i: (-near[i], i))[: capacity - len(rows)])
                    shown.add(other)
                break
            rows.extend(records)
            shown.add(other)
        if len(rows) < 2:  # a record alone, with no other record to show: nothing to ask
            continue
        shown.add(match_id)
        chosen.append((match_id, rows))
    if not chosen:
        return ReviewSet(b"", [], len(in_band), too_big)
    key_of = primary_key if primary_key in columns else None
    digest = hashlib.sha256(
        "\n".join(
            ",".join(matches[i].get(key_of, "") if key_of else str(i) for i in rows) for _, rows in chosen
        ).encode()
    ).hexdigest()[:12]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*LABEL_COLUMNS, *columns])
    sets = []
    for number, (match_id, rows) in enumerate(chosen):
        set_id = f"review-{digest}-{number:03d}"
        for i in rows:
            writer.writerow([set_id, "", *(matches[i].get(c, "") for c in columns)])
        size = len(members[match_id])
        sets.append(ReviewedGroup(set_id, match_id, round(scores[match_id], 6), size, len(rows) - size))
    return ReviewSet(out.getvalue().encode("utf-8"), sets, len(in_band), too_big)
