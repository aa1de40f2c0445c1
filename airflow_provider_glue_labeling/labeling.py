"""The labeling page's work, apart from the web: a labeling set's records, drafts and the labels file.

The page finds a waiting :class:`~airflow_provider_glue_labeling.operators.GlueMLLabelingOperator`
by its rendered template fields (:data:`FIELDS`: transform, labeling set, labels path, quality
history, AWS connection), which Airflow's task runner stores and users cannot edit.
:class:`LabelingTask` reads that labeling set, keeps people's drafts and writes the
labels file in Glue's labeling file format (Glue developer guide, "Labeling file format"): UTF-8
without a byte-order mark, ``labeling_set_id,label`` and then the source columns exactly as the
labeling set has them; records of one entity share a label within their set.

Drafts are S3 objects beside the labels file, one per set (two people on two sets never
overwrite each other), named with a leading ``_`` (``_labels.csv.draft.<set>.json``), which
Glue's and Spark's file listings skip, as the import does.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_provider_glue_labeling.exceptions import NOTHING
from airflow_provider_glue_labeling.history import METRIC_NAMES, chart_svg, read_rounds
from airflow_provider_glue_labeling.validation import (
    LABEL_COLUMNS,
    check_s3_uri,
    labels_file_problems,
    unlabeled_sets_problem,
)

# What the page reads of a labeling task's rendered template fields; the first three make one.
FIELDS = (
    "transform_id",
    "labeling_set_s3_path",
    "labels_s3_path",
    "history_s3_path",
    "aws_conn_id",
    "region_name",
    "verify",
)
log = logging.getLogger(__name__)


class LabelingError(ValueError):
    """A draft or a submission that cannot be taken as it is; the message says what to change."""


class AlreadySubmitted(LabelingError):
    """The labels file is there already: the waiting task takes it, and it is not rewritten."""


@dataclass
class LabelingSet:
    """A generated labeling set: its source columns and each set's records (values as generated).

    :param columns: the source columns, after ``labeling_set_id,label``.
    :param sets: labeling set id to its records, in the files' order.
    """

    columns: list[str]
    sets: dict[str, list[list[str]]]

    @classmethod
    def parse(cls, files: list[bytes]) -> LabelingSet:
        """Read the labeling set's CSV files (one or more, as Glue writes them under the output path)."""
        columns: list[str] | None = None
        sets: dict[str, list[list[str]]] = {}
        for data in files:
            rows = [row for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) if row]
            if not rows:
                continue
            header = rows[0]
            if tuple(header[:2]) != LABEL_COLUMNS or (columns is not None and header[2:] != columns):
                raise LabelingError(f"not a labeling set file: its header is {','.join(header)!r}")
            columns = header[2:]
            for row in rows[1:]:
                sets.setdefault(row[0], []).append(row[2:])
        return cls(columns or [], sets)

    def records(self) -> int:
        return sum(len(rows) for rows in self.sets.values())

    def check_draft(self, set_id: Any, groups: Any, done: Any) -> list[int]:
        """A set's draft as the page sends it: a group number per record, and whether it is done."""
        if not isinstance(set_id, str) or set_id not in self.sets:
            raise LabelingError(f"set_id {set_id!r} is not a set of this labeling set")
        size = len(self.sets[set_id])
        if (
            not isinstance(groups, list)
            or len(groups) != size
            or not all(isinstance(g, int) and not isinstance(g, bool) and 0 <= g < size for g in groups)
        ):
            raise LabelingError(
                f"groups of labeling set {set_id!r} must be {size} group numbers from 0 to {size - 1}, "
                f"one per record; got {groups!r}"
            )
        if not isinstance(done, bool):
            raise LabelingError(f"done of labeling set {set_id!r} must be true or false; got {done!r}")
        return groups

    def labels_file(self, drafts: dict[str, dict[str, Any]]) -> bytes:
        """The labels file from every set's draft; :class:`LabelingError` naming the sets not done."""
        if not self.sets:
            raise LabelingError("the labeling set has no records to label")
        missing = [s for s in self.sets if not drafts.get(s, {}).get("done")]
        if missing:
            raise LabelingError(
                f"labeling set(s) {', '.join(missing)} not labeled yet: group the records of every set "
                "and mark it done before submitting"
            )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*LABEL_COLUMNS, *self.columns])
        for set_id, rows in self.sets.items():
            names: dict[int, str] = {}
            for row, group in zip(rows, drafts[set_id]["groups"], strict=True):
                writer.writerow([set_id, names.setdefault(group, label_name(len(names))), *row])
        return out.getvalue().encode("utf-8")


def label_name(number: int) -> str:
    """A, B, ..., Z, AA, AB, ...: one label per group within a set."""
    letters = string.ascii_uppercase
    name = ""
    number += 1
    while number:
        number, rest = divmod(number - 1, 26)
        name = letters[rest] + name
    return name


# A boto3 client costs about 0.3 s to make (it loads its service model): the page's requests share
# one per connection and region for a while, and then take a new one (the connection may change).
HOOK_SECONDS = 300.0
_hooks: dict[tuple[type, Any, Any, Any], tuple[float, Any]] = {}


def _hook(kind: type, aws_conn_id: Any, region_name: Any, verify: Any) -> Any:
    key = (kind, aws_conn_id, region_name, verify)
    made, hook = _hooks.get(key, (0.0, None))
    if hook is None or time.monotonic() - made > HOOK_SECONDS:
        hook = kind(aws_conn_id=aws_conn_id, region_name=region_name, verify=verify)
        hook.conn  # noqa: B018 (make the client now, outside any other request's time)
        _hooks[key] = (time.monotonic(), hook)
    return hook


class LabelingTask:
    """A waiting labeling task's S3 side: its labeling set, drafts, labels file and transform.

    :param fields: the task's rendered template fields (:data:`FIELDS`).
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        # Rendered fields keep a None as the text "None".
        self.fields = {name: None if fields.get(name) in NOTHING else fields.get(name) for name in FIELDS}
        self.transform_id = str(self.fields["transform_id"])
        self.labeling_set_s3_path = str(self.fields["labeling_set_s3_path"])
        self.labels_s3_path = str(self.fields["labels_s3_path"])
        self.history_s3_path = self.fields["history_s3_path"]
        self.bucket, self.key = check_s3_uri("labels_s3_path", self.labels_s3_path)
        folder, _, name = self.key.rpartition("/")
        self.draft_prefix = f"{folder}/_{name}.draft." if folder else f"_{name}.draft."

    def _connection(self) -> tuple[Any, Any, Any]:
        verify = self.fields["verify"]
        verify = {"True": True, "False": False}.get(verify, verify) if isinstance(verify, str) else verify
        return self.fields["aws_conn_id"], self.fields["region_name"], verify

    @property
    def s3(self) -> Any:
        """An ``S3Hook``; only its (thread-safe) boto3 client is used, never a resource."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return _hook(S3Hook, *self._connection())

    @property
    def glue(self) -> Any:
        from airflow_provider_glue_labeling.hooks import GlueMLHook

        return _hook(GlueMLHook, *self._connection())

    def _read(self, bucket: str, key: str) -> bytes:
        return bytes(self.s3.conn.get_object(Bucket=bucket, Key=key)["Body"].read())

    def labeling_set(self) -> LabelingSet:
        return LabelingSet.parse(self._files())

    def _files(self) -> list[bytes]:
        """The labeling set's files, as Glue wrote them."""
        from airflow_provider_glue_labeling.operators import read_files

        bucket, key = check_s3_uri("labeling_set_s3_path", self.labeling_set_s3_path)
        return read_files(self.s3, bucket, key)

    def drafts(self) -> dict[str, dict[str, Any]]:
        """Each set's saved draft: ``{"groups", "done", "by", "at"}``."""
        found = {}
        for key in self.s3.list_keys(self.bucket, prefix=self.draft_prefix) or []:
            try:
                draft = json.loads(self._read(self.bucket, key))
                found[str(draft["set_id"])] = draft
            except (ValueError, KeyError, TypeError) as error:
                log.warning("Skipping s3://%s/%s: not a draft of this page (%r)", self.bucket, key, error)
        return found

    def save_draft(
        self, labeling: LabelingSet, set_id: Any, groups: Any, done: Any, user: str
    ) -> dict[str, Any]:
        """Keep one set's draft (checked first); log who saved it."""
        draft = {
            "set_id": set_id,
            "groups": labeling.check_draft(set_id, groups, done),
            "done": done,
            "by": user,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        key = self.draft_prefix + json.dumps(set_id)[1:-1].replace("/", "%2F") + ".json"
        self.s3.load_bytes(json.dumps(draft).encode(), key, self.bucket, replace=True)
        log.info(
            "User %s saved the draft of labeling set %s (%s) for %s",
            user,
            set_id,
            "done" if done else "in progress",
            self.labels_s3_path,
        )
        return draft

    def submit(self, user: str) -> LabelingSet:
        """Write the labels file from the drafts, after Glue's labels-file checks; log who did.

        A labels file already there is never rewritten: the waiting task may be reading it.
        """
        if self.s3.check_for_key(self.key, self.bucket):
            raise AlreadySubmitted(f"labels are at {self.labels_s3_path} already; they are not rewritten")
        files = self._files()
        labeling = LabelingSet.parse(files)
        data = labeling.labels_file(self.drafts())
        problem, _ = labels_file_problems(data, labeling.columns)
        problem = problem or unlabeled_sets_problem(files, data)
        if problem:
            raise LabelingError(f"the labels file {problem}")
        self.s3.load_bytes(data, self.key, self.bucket, replace=True)
        log.info(
            "User %s submitted the labels of %d set(s), %d record(s) to %s",
            user,
            len(labeling.sets),
            labeling.records(),
            self.labels_s3_path,
        )
        return labeling

    def quality(self) -> dict[str, Any]:
        """The transform's label count and its last evaluation's metrics (``GetMLTransform``), and
        with a quality history its rounds and their chart."""
        transform = self.glue.conn.get_ml_transform(TransformId=self.transform_id)
        metrics = transform.get("EvaluationMetrics", {}).get("FindMatchesMetrics", {})
        quality: dict[str, Any] = {
            "label_count": transform.get("LabelCount"),
            "status": transform.get("Status"),
            "metrics": {name: metrics.get(name) for name in METRIC_NAMES},
        }
        if self.history_s3_path:
            rounds = read_rounds(self.s3, str(self.history_s3_path), self.transform_id)
            quality.update(rounds=rounds, chart_svg=chart_svg(rounds) if rounds else None)
        return quality
