"""Checks of user input, run before any AWS call; each error names the parameter, value and rule."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from airflow_provider_glue_labeling.exceptions import NOTHING as _NOTHING
from airflow_provider_glue_labeling.exceptions import GlueMLInputError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
MAX_LABELS_FILE_BYTES = 10 * 1024 * 1024  # Glue's limit for a labels file


def check_text(parameter: str, value: Any, rule: str = "expected a non-empty string") -> str:
    if not isinstance(value, str) or value.strip() in _NOTHING:
        raise GlueMLInputError(parameter, value, rule)
    return value


def _check_id(parameter: str, value: Any, what: str) -> str:
    rule = f"expected a {what}: a non-empty string of at most 255 characters, no whitespace"
    check_text(parameter, value, rule)
    if len(value) > 255 or re.search(r"\s", value):
        raise GlueMLInputError(parameter, value, rule)
    return value


def check_transform_id(value: Any, parameter: str = "transform_id") -> str:
    return _check_id(parameter, value, "Glue ML transform id")


def check_task_run_id(value: Any, parameter: str = "task_run_id") -> str:
    return _check_id(parameter, value, "Glue ML TaskRunId")


def bucket_problem(bucket: str) -> str | None:
    """Why ``bucket`` is not a valid S3 general-purpose bucket name, or None."""
    if not 3 <= len(bucket) <= 63:
        return "a bucket name has 3 to 63 characters"
    if not _BUCKET.match(bucket):
        return "a bucket name has only lowercase letters, digits, dots and hyphens, and starts and ends with a letter or digit"
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "a bucket name has no two adjacent dots and no dot next to a hyphen"
    if _IPV4.match(bucket):
        return "a bucket name is not formatted as an IP address"
    if bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3")):
        return "a bucket name does not use the reserved prefixes xn--/sthree- or suffixes -s3alias/--ol-s3"
    return None


def check_s3_uri(parameter: str, value: Any) -> tuple[str, str]:
    """Return ``(bucket, key)`` of an ``s3://bucket/key-prefix`` URI."""
    rule = "expected an S3 URI s3://bucket/key-prefix"
    check_text(parameter, value, rule)
    if not value.startswith("s3://"):
        raise GlueMLInputError(parameter, value, f"{rule} (the scheme must be s3://)")
    bucket, _, key = value[len("s3://") :].partition("/")
    if not bucket:
        raise GlueMLInputError(parameter, value, f"{rule} (the bucket is missing)")
    problem = bucket_problem(bucket)
    if problem:
        raise GlueMLInputError(parameter, value, f"{rule}; bucket {bucket!r} is invalid: {problem}")
    return bucket, key


def check_optional_s3_uri(parameter: str, value: Any) -> str | None:
    """An ``s3://`` URI, or None for nothing (a template that rendered to ``None`` or empty)."""
    if value is None or value in _NOTHING:
        return None
    check_s3_uri(parameter, value)
    return str(value)


def check_bool(parameter: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise GlueMLInputError(parameter, value, "expected True or False")
    return value


def check_positive(parameter: str, value: Any, kind: type = int) -> float:
    number_types = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, number_types) or value <= 0:
        raise GlueMLInputError(parameter, value, f"expected a positive {kind.__name__}")
    return value


def check_fraction(parameter: str, value: Any) -> float | None:
    """A number from 0 to 1, or None; a number rendered as text by a template counts as the number."""
    if value is None:
        return None
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, int | float) or not 0 <= number <= 1:
        raise GlueMLInputError(parameter, value, "expected a number from 0 to 1, or None")
    return float(number)


LABEL_COLUMNS = ("labeling_set_id", "label")
BIG_SET_ROWS = 50  # Glue's guide: "more than 50 ... may cause poor results or system failure"
SMALL_SET_ROWS = 2  # a set teaches which of its records match: one record teaches nothing


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    where = f"byte 0x{data[error.start]:02x} at offset {error.start}"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        likely = "UTF-16 (Excel's 'Unicode Text')"
    else:
        try:
            data.decode("cp1252")
            likely = "Windows-1252 (cp1252), as Excel on Windows saves CSV"
        except UnicodeDecodeError:
            likely = "not a text encoding we recognize"
    return f"is not UTF-8 ({where}); it looks like {likely}: save it as CSV in UTF-8 without BOM"


def labels_file_problems(
    data: bytes, source_columns: list[str] | None = None
) -> tuple[str | None, list[str]]:
    """Check a labels file by Glue's labeling file format: ``(problem or None, warnings)``.

    The rules, from the Glue developer guide ("Labeling file format", "Machine learning
    exceptions") and StartImportLabelsTaskRun's limits: not empty and at most 10 MB; UTF-8
    without a byte-order mark; CSV whose header starts exactly ``labeling_set_id,label``
    (labels are case-sensitive text, so nothing is trimmed) followed by the source's columns;
    every row has a ``labeling_set_id`` and a ``label``. A set of over 50 rows or of one row
    is legal but poor teaching: a warning.

    :param data: the file's bytes.
    :param source_columns: the transform's schema (``GetMLTransform`` ``Schema``), if known.
    """
    if not data:
        return "is empty (Glue refuses a labels file of size 0)", []
    if len(data) > MAX_LABELS_FILE_BYTES:
        return f"has {len(data)} bytes; Glue accepts at most 10 MB (10485760 bytes): split it into files", []
    if data.startswith(b"\xef\xbb\xbf"):
        return (
            "starts with a byte-order mark (Excel's 'CSV UTF-8' adds one): save it as UTF-8 without BOM",
            [],
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return _not_utf8(data, error), []
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as error:
        return f"is not valid CSV ({error})", []
    if not rows:
        return "is empty (Glue refuses a labels file of size 0)", []
    header = rows[0]
    if tuple(header[:2]) != LABEL_COLUMNS:
        found = ",".join(header[:2]) or "nothing"
        return f"row 1 must begin exactly labeling_set_id,label (lowercase, no spaces); found {found!r}", []
    if source_columns and header[2:] != list(source_columns):
        return (
            f"row 1 has the columns {header[2:]} after label, but the transform's schema is "
            f"{list(source_columns)}: keep the source columns as the labeling set has them"
        ), []
    sizes: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            return f"row {number} has {len(row)} fields, the header has {len(header)}", []
        if not row[0].strip():
            return f"row {number} has no labeling_set_id: keep the column as the labeling set has it", []
        if not row[1].strip():
            return (
                f"row {number} (labeling set {row[0]}) has no label: give every record a label, "
                "the same label for records of the same entity"
            ), []
        sizes[row[0]] = sizes.get(row[0], 0) + 1
    warnings = [
        f"labeling set {name} has {count} rows; over {BIG_SET_ROWS} may cause poor results or system failure"
        for name, count in sizes.items()
        if count > BIG_SET_ROWS
    ] + [
        f"labeling set {name} has {count} row; it teaches nothing (a set needs {SMALL_SET_ROWS} or more)"
        for name, count in sizes.items()
        if count < SMALL_SET_ROWS
    ]
    return None, warnings


def labeling_set_ids(data: bytes) -> list[str]:
    """The ``labeling_set_id`` values of a labeling set or labels file, in their first order."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    next(reader, None)
    return list(dict.fromkeys(row[0] for row in reader if row and row[0].strip()))


def unlabeled_sets_problem(labeling_sets: list[bytes], labels: bytes) -> str | None:
    """Which sets of the labeling set (one or more files) the labels file leaves out, or None.

    Glue learns from every set it generated; a set with no labels is work that was asked for
    and not done.
    """
    wanted = [i for data in labeling_sets for i in labeling_set_ids(data)]
    missing = [i for i in dict.fromkeys(wanted) if i not in set(labeling_set_ids(labels))]
    if not missing:
        return None
    return f"has no labels for the labeling set(s) {', '.join(missing)}: label every record of every set"


def hidden_file(key: str) -> bool:
    """A marker or hidden file under a prefix (``_SUCCESS``, ``.crc``), which Spark's file listing skips."""
    return key.rsplit("/", 1)[-1].startswith(("_", "."))
