"""The emulated Glue's data: S3 objects and catalog tables through moto's backends, and CSV files.

What a task run reads and writes, the error that ends a run FAILED (:class:`RunFailed`) and the
one that refuses a call (:class:`GlueErrorResponse`).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.s3.models import s3_backends

from airflow_provider_glue_labeling.glue.statuses import ErrorCode
from airflow_provider_glue_labeling.labels.files import as_prefix, hidden_file
from airflow_provider_glue_labeling.labels.format import LABEL_COLUMNS

S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?$")


class GlueErrorResponse(JsonRESTError):
    """Glue's answer to a refused call, in AWS's JSON shape: ``__type`` is the Glue error code, ``Message`` the text."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message)
        self.code = status


class RunFailed(Exception):
    """Ends a task run FAILED; the message becomes the run's ``ErrorString``."""


def parse_s3_uri(parameter: str, uri: Any) -> tuple[str, str]:
    """Split ``s3://bucket/prefix``; anything else is Glue's ``InvalidInputException``."""
    match = S3_URI.match(uri) if isinstance(uri, str) else None
    if not match:
        raise GlueErrorResponse(
            ErrorCode.INVALID_INPUT, f"{parameter} '{uri}' is not a valid S3 path s3://bucket/key"
        )
    return match.group(1), match.group(2) or ""


class GlueData:
    """The S3 objects and catalog tables one moto Glue backend (account and region) reaches.

    :param backend: moto's Glue backend.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def s3(self) -> Any:
        return s3_backends[self.backend.account_id][self.backend.partition]

    def bucket(self, bucket: str) -> Any:
        buckets = self.s3().buckets
        if bucket not in buckets:
            raise RunFailed(f"Amazon S3 bucket {bucket} does not exist or is not accessible")
        return buckets[bucket]

    def objects(self, uri: str) -> list[tuple[str, bytes]]:
        """The object at ``uri``, or every object under it when it is a prefix."""
        bucket_name, key = parse_s3_uri("S3Path", uri)
        keys = self.bucket(bucket_name).keys
        if key and key in keys:
            return [(f"s3://{bucket_name}/{key}", keys[key].value)]
        prefix = as_prefix(key)
        return [
            (f"s3://{bucket_name}/{name}", keys[name].value)
            for name in sorted(keys.keys())
            if name.startswith(prefix) and not name.endswith("/") and not hidden_file(name)
        ]

    def write(self, uri: str, name: str, body: str) -> None:
        bucket_name, key = parse_s3_uri("OutputS3Path", uri)
        self.bucket(bucket_name)
        self.s3().put_object(bucket_name, as_prefix(key) + name, body.encode("utf-8"))

    def read_source(self, transform: Any) -> tuple[list[dict[str, str]], list[str]]:
        rows: list[dict[str, str]] = []
        columns: list[str] = []
        for table_ref in transform.input_record_tables:
            database, name = table_ref.get("DatabaseName"), table_ref.get("TableName")
            try:
                table = self.backend.get_table(database, name)
            except JsonRESTError as error:
                raise RunFailed(f"Input table {database}.{name} not found: {error.message}") from None
            location = table.as_dict()["StorageDescriptor"]["Location"]
            for uri, data in self.objects(location):
                table_rows, table_columns = read_csv(uri, data)
                rows.extend(table_rows)
                columns.extend(c for c in table_columns if c not in columns)
        if not rows:
            raise RunFailed(
                f"No records found in the input tables of transform {transform.transform_id}: "
                "the source data is missing or empty"
            )
        return rows, columns

    def read_frame(self, what: str, uri: str) -> tuple[list[dict[str, str]], list[str]]:
        """The CSV records at or under ``uri`` (a job's input frame), every file with the same
        header; none found fails the run.

        :param what: what the records are, for the error message.
        :param uri: an S3 object or prefix.
        """
        rows: list[dict[str, str]] = []
        columns: list[str] | None = None
        for file_uri, data in self.objects(uri):
            file_rows, file_columns = read_csv(file_uri, data)
            if columns is not None and file_columns != columns:
                raise RunFailed(
                    f"File {file_uri} of the {what} has the columns {file_columns}, not {columns}"
                )
            columns = file_columns
            rows.extend(file_rows)
        if not rows or columns is None:
            raise RunFailed(f"No records found in the {what} {uri}")
        return rows, columns

    def read_labels(self, uri: str, transform: Any) -> list[dict[str, str]]:
        """Every labels file at or under ``uri``, by Glue's labeling file format; a breach fails the run."""
        source_columns = self.schema_columns(transform)
        labels: list[dict[str, str]] = []
        for file_uri, data in self.objects(uri):
            if data.startswith(b"\xef\xbb\xbf"):
                raise RunFailed(
                    f"Labels file {file_uri} starts with a byte-order mark: save it as UTF-8 without BOM"
                )
            rows, columns = read_csv(file_uri, data)
            if tuple(columns[:2]) != LABEL_COLUMNS:
                raise RunFailed(
                    f"Labels file {file_uri} must start with the columns labeling_set_id,label; "
                    f"found {','.join(columns[:2])}"
                )
            if source_columns and columns[2:] != source_columns:
                raise RunFailed(
                    f"Labels file {file_uri} has the columns {columns[2:]} after label; the source has {source_columns}"
                )
            for number, row in enumerate(rows, start=2):
                if not row.get("labeling_set_id") or not row.get("label"):
                    raise RunFailed(f"Labels file {file_uri} line {number} has no labeling_set_id or label")
            labels.extend(rows)
        return labels

    def schema_columns(self, transform: Any) -> list[str]:
        """The source columns a labels file must carry: the transform's ``Schema``, if it has one."""
        return [column["Name"] for column in self.schema(transform)]

    def schema(self, transform: Any) -> list[dict[str, str]]:
        """GetMLTransform's ``Schema``: the columns of its one input table (none if it has no table)."""
        if len(transform.input_record_tables) != 1:
            return []
        ref = transform.input_record_tables[0]
        try:
            table = self.backend.get_table(ref.get("DatabaseName"), ref.get("TableName"))
        except JsonRESTError:
            return []
        descriptor = table.as_dict()["StorageDescriptor"]
        return [
            {"Name": c["Name"], "DataType": c.get("Type", "string")} for c in descriptor.get("Columns", [])
        ]


def primary_key(transform: Any) -> str | None:
    params = transform.parameters.get("FindMatchesParameters") or {}
    return params.get("PrimaryKeyColumnName")


def read_csv(uri: str, data: bytes) -> tuple[list[dict[str, str]], list[str]]:
    """Parse a UTF-8 CSV with a header; an empty or unreadable file ends the run FAILED."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RunFailed(f"File {uri} is not UTF-8 text") from None
    if not text.strip():
        raise RunFailed(f"File {uri} is empty")
    try:
        reader = csv.DictReader(io.StringIO(text))
        columns = list(reader.fieldnames or [])
        rows = [dict(row) for row in reader]
    except csv.Error as error:
        raise RunFailed(f"File {uri} is not valid CSV: {error}") from None
    if len(columns) < 2 or any(None in row for row in rows):
        raise RunFailed(f"File {uri} is not valid CSV: rows do not match the header {columns}")
    return rows, columns


def to_csv(rows: list[dict[str, str]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
