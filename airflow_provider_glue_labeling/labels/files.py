"""Labeling sets and labels files in S3: one way to reach S3, list a path's files and check them.

Every S3 access of the provider goes through :class:`S3Files`: the operators' checks, the
quality history and the labeling page.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_glue_labeling.labels.format import labels_file_problems, unlabeled_sets_problem

# S3's answers to a conditional write that lost: the object is there, or changed, or another
# conditional write to it is in flight (S3 conditional writes; HTTP 412 and 409).
CONDITION_FAILED = ("PreconditionFailed", "ConditionalRequestConflict")


class WriteConflict(Exception):
    """S3 refused a conditional write: the object was there already, or is not the version read."""


def as_prefix(key: str) -> str:
    """``key`` as a folder prefix: empty (the whole bucket) or ending in ``/``. A folder is the
    same with or without its trailing ``/``, as Glue takes it: listed, compared or named, a path
    goes through this.

    :param key: an S3 key, or an ``s3://`` path.
    """
    return key if not key or key.endswith("/") else key + "/"


def hidden_file(key: str) -> bool:
    """A marker or hidden file under a prefix (``_SUCCESS``, ``.crc``), which Spark's file listing skips."""
    return key.rsplit("/", 1)[-1].startswith(("_", "."))


def beside(key: str, suffix: str) -> str:
    """The hidden key ``_<name><suffix>`` in ``key``'s folder: drafts, markers and files kept aside
    (a leading ``_`` keeps them out of Glue's, Spark's and the import's listings)."""
    folder, _, name = key.rpartition("/")
    return f"{folder}/_{name}{suffix}" if folder else f"_{name}{suffix}"


# What the labeling page keeps beside the labels file, one object per set, under these suffixes:
# the first copy of every set (``_labels.csv.draft.<set>.json``), the second copy of an overlapped
# set, and an adjudicator's decision (see :mod:`~.agreement`).
KEPT = {"first": ".draft.", "second": ".draft2.", "settled": ".settled."}


def kept_key(key: str, kind: str, set_id: str) -> str:
    """The key of one set's kept ``kind`` (:data:`KEPT`) beside the labels file at ``key``: the set
    id as JSON escapes it, ``/`` as ``%2F`` (one object, not a folder).

    :param key: the labels file's key.
    :param kind: ``"first"``, ``"second"`` or ``"settled"``.
    :param set_id: the labeling set's set id.
    """
    return beside(key, KEPT[kind]) + json.dumps(set_id)[1:-1].replace("/", "%2F") + ".json"


class S3Files:
    """The S3 objects one AWS connection reaches, through the Amazon provider's ``S3Hook``.

    Only the hook's boto3 client is used (threads may share it), never a boto3 resource. Make
    one for a task with :meth:`~airflow_provider_glue_labeling.hooks.AwsConnection.s3`, which
    takes all of the task's connection fields.

    :param hook: the S3 hook to reach S3 through.
    """

    def __init__(self, hook: Any) -> None:
        self.hook = hook

    def exists(self, bucket: str, key: str) -> bool:
        return bool(self.hook.check_for_key(key, bucket))

    def read(self, bucket: str, key: str) -> bytes:
        client: Any = self.hook.conn
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def read_version(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """The object and its ETag (the version a conditional write names), or None when absent."""
        from botocore.exceptions import ClientError

        client: Any = self.hook.conn
        try:
            found = client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return bytes(found["Body"].read()), str(found["ETag"])

    def write(
        self, bucket: str, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None
    ) -> str:
        """Write the object; return its ETag.

        :param if_absent: only if no object is at ``key`` (``IfNoneMatch="*"``), atomically.
        :param if_match: only over the version with this ETag (``IfMatch``), atomically.
        :raises WriteConflict: the condition did not hold; nothing was written.
        """
        from botocore.exceptions import ClientError

        client: Any = self.hook.conn
        condition = {"IfNoneMatch": "*"} if if_absent else {"IfMatch": if_match} if if_match else {}
        try:
            return str(client.put_object(Bucket=bucket, Key=key, Body=data, **condition).get("ETag", ""))
        except ClientError as error:
            if condition and error.response.get("Error", {}).get("Code") in CONDITION_FAILED:
                raise WriteConflict(f"s3://{bucket}/{key} changed: {error}") from error
            raise

    def move(self, bucket: str, key: str, to_key: str) -> None:
        """Rename an object (S3 copies it, then deletes the old key)."""
        client: Any = self.hook.conn
        client.copy_object(Bucket=bucket, Key=to_key, CopySource={"Bucket": bucket, "Key": key})
        self.delete(bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        client: Any = self.hook.conn
        client.delete_object(Bucket=bucket, Key=key)

    def versions(self, bucket: str, prefix: str) -> dict[str, str]:
        """Every key under ``prefix`` and its ETag (one listing call per 1,000 keys)."""
        client: Any = self.hook.conn
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({obj["Key"]: str(obj["ETag"]) for obj in page.get("Contents", [])})
        return found

    def keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix``, all pages."""
        return list(self.hook.list_keys(bucket, prefix=prefix) or [])

    def files_at(self, bucket: str, key: str) -> list[str]:
        """The object at ``key``, or every object under it as a prefix but marker files."""
        if key and not key.endswith("/") and self.exists(bucket, key):
            return [key]
        return [k for k in self.keys(bucket, as_prefix(key)) if not k.endswith("/") and not hidden_file(k)]

    def read_files(self, uri: str, parameter: str) -> list[bytes]:
        """The bytes of each file at ``uri`` (see :meth:`files_at`).

        :param uri: ``s3://bucket/key``, one file or a prefix of files.
        :param parameter: the parameter ``uri`` came from, named if it is not an S3 URI.
        """
        # imported here: the emulator reads S3 by this module's rules and runs without Airflow
        from airflow_provider_glue_labeling.validation import check_s3_uri

        bucket, key = check_s3_uri(parameter, uri)
        return [self.read(bucket, k) for k in self.files_at(bucket, key)]


def schema_columns(glue: Any, transform_id: str) -> list[str]:
    """The transform's source columns (``GetMLTransform`` ``Schema``; empty when it has none).

    :param glue: a :class:`~airflow_provider_glue_labeling.hooks.GlueMLHook`.
    """
    return [c["Name"] for c in glue.get_transform(transform_id).get("Schema") or []]


def labels_file_problem(
    data: bytes, schema: list[str], where: str, log: Any, labeling_sets: list[bytes] | None = None
) -> str | None:
    """What makes Glue refuse a labels file, or a labeling set it leaves unlabeled; warnings are logged.

    :param data: the labels file.
    :param schema: the transform's source columns.
    :param where: the file's name in messages.
    :param log: where warnings go.
    :param labeling_sets: the labeling set's files, when every set of it must be labeled.
    """
    problem, warnings = labels_file_problems(data, schema)
    for warning in warnings:
        log.warning("Labels file %s: %s", where, warning)
    if problem is None and labeling_sets is not None:
        problem = unlabeled_sets_problem(labeling_sets, data)
    return problem


def read_kept(s3: S3Files, bucket: str, key: str) -> dict[str, dict[str, dict[str, Any]]]:
    """What the labeling page kept beside the labels file at ``key``: for each kind of
    :data:`KEPT`, set id to its draft (objects that are not drafts are skipped).

    :param s3: the S3 files the labeling task reaches.
    :param bucket: the labels file's bucket.
    :param key: the labels file's key.
    """
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, suffix in KEPT.items():
        found[kind] = {}
        for kept in s3.keys(bucket, beside(key, suffix)):
            try:
                draft = json.loads(s3.read(bucket, kept))
            except ValueError:
                continue
            if isinstance(draft, dict) and "set_id" in draft and isinstance(draft.get("groups"), list):
                found[kind][str(draft["set_id"])] = draft
    return found
