"""Checks of user input, run before any AWS call; each error names the parameter, value and rule."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_provider_glue_labeling import exceptions

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


if not TYPE_CHECKING:  # to type checkers, the module has only the names it defines

    def __getattr__(name: str) -> Any:
        """``validation.GlueMLInputError``, where 0.1.0 had it: deprecated, import it from :mod:`~.exceptions`."""
        return exceptions.moved_here(__name__, name, ("GlueMLInputError",))


def check_text(parameter: str, value: Any, rule: str = "expected a non-empty string") -> str:
    if not isinstance(value, str) or value.strip() in exceptions.NOTHING:
        raise exceptions.GlueMLInputError(parameter, value, rule)
    return value


def _check_id(parameter: str, value: Any, what: str) -> str:
    rule = f"expected a {what}: a non-empty string of at most 255 characters, no whitespace"
    check_text(parameter, value, rule)
    if len(value) > 255 or re.search(r"\s", value):
        raise exceptions.GlueMLInputError(parameter, value, rule)
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
        raise exceptions.GlueMLInputError(parameter, value, f"{rule} (the scheme must be s3://)")
    bucket, _, key = value[len("s3://") :].partition("/")
    if not bucket:
        raise exceptions.GlueMLInputError(parameter, value, f"{rule} (the bucket is missing)")
    problem = bucket_problem(bucket)
    if problem:
        raise exceptions.GlueMLInputError(
            parameter, value, f"{rule}; bucket {bucket!r} is invalid: {problem}"
        )
    return bucket, key


def check_optional_s3_uri(parameter: str, value: Any) -> str | None:
    """An ``s3://`` URI, or None for nothing (a template that rendered to ``None`` or empty)."""
    if value is None or value in exceptions.NOTHING:
        return None
    check_s3_uri(parameter, value)
    return str(value)


def check_bool(parameter: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise exceptions.GlueMLInputError(parameter, value, "expected True or False")
    return value


def check_positive(parameter: str, value: Any, kind: type = int) -> float:
    number_types = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, number_types) or value <= 0:
        raise exceptions.GlueMLInputError(parameter, value, f"expected a positive {kind.__name__}")
    return value


def check_count(parameter: str, value: Any) -> int:
    """A whole number, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise exceptions.GlueMLInputError(parameter, value, "expected a whole number, 0 or more")
    return value


def check_fraction(parameter: str, value: Any, low: float = 0.0) -> float | None:
    """A number from ``low`` (0) to 1, or None; a number rendered as text by a template counts as
    the number (a kappa takes ``low=-1``)."""
    if value is None:
        return None
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, int | float) or not low <= number <= 1:
        raise exceptions.GlueMLInputError(parameter, value, f"expected a number from {low:g} to 1, or None")
    return float(number)


def rendered_int(value: Any) -> Any:
    """A whole number rendered as text by a template, as the number; anything else as it is."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


def rendered_flag(value: Any) -> Any:
    """``True``/``False`` rendered as text by a template, as the flag; anything else as it is."""
    return (
        {"true": True, "false": False}.get(value.strip().lower(), value) if isinstance(value, str) else value
    )
