"""Checks of user input, run before any AWS call; each error names the parameter, value and rule."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_NOTHING = ("None", "null", "")
MAX_LABELS_FILE_BYTES = 10 * 1024 * 1024  # Glue's limit for a labels file


class GlueMLInputError(ValueError):
    """A parameter's value breaks a rule; the message names the parameter, the value and the rule."""

    def __init__(self, parameter: str, value: Any, rule: str) -> None:
        hint = (
            " (an upstream XCom or template rendered to nothing)" if value is None or value == "None" else ""
        )
        super().__init__(f"Invalid {parameter}={value!r}{hint}: {rule}")
        self.parameter = parameter
        self.value = value


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
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise GlueMLInputError(parameter, value, "expected a number from 0 to 1, or None")
    return float(value)


def labels_file_problem(size: int, read: Any) -> str | None:
    """The first problem of a labels file (size in bytes, ``read()`` gives its bytes), or None."""
    if size == 0:
        return "the file is empty"
    if size > MAX_LABELS_FILE_BYTES:
        return f"the file has {size} bytes; Glue accepts at most 10 MB"
    try:
        text = read().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return f"the file is not UTF-8 text ({error})"
    if not text.strip():
        return "the file is empty"
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        return f"the file is not valid CSV ({error})"
    header = [c.strip() for c in rows[0]]
    if header[:2] != ["labeling_set_id", "label"]:
        return (
            f"the first two columns must be labeling_set_id,label; found {','.join(header[:2]) or 'nothing'}"
        )
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            return f"line {line} has {len(row)} fields, the header has {len(header)}"
        if not row[0].strip():
            return f"line {line} has no labeling_set_id"
    return None
