"""State and behaviour of emulated Glue ML task runs, kept beside moto's Glue backend."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_glue_labeling.emulator.data import (
    S3_URI,
    GlueData,
    GlueErrorResponse,
    RunFailed,
    primary_key,
    to_csv,
)
from airflow_provider_glue_labeling.emulator.matching import (
    evaluate,
    labeling_set,
    match_confidence_scores,
    match_ids,
    train,
    true_quality,
)
from airflow_provider_glue_labeling.emulator.settings import SETTINGS, take_forced_outcome
from airflow_provider_glue_labeling.glue.statuses import ACTIVE_STATUSES, QUOTA_TASK_TYPES, ErrorCode
from airflow_provider_glue_labeling.labels.format import LABEL_COLUMNS, MAX_LABELS_FILE_BYTES

ONE_TABLE_TASKS = QUOTA_TASK_TYPES  # both read the transform's source table


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class TaskRun:
    """One ML task run; its status follows the clock (see :meth:`MLState.advance`)."""

    transform_id: str
    task_type: str
    properties: dict[str, Any]
    started_on: datetime = field(default_factory=now)
    task_run_id: str = field(default_factory=lambda: "tsk-" + uuid.uuid4().hex)
    status: str = "STARTING"
    error_string: str | None = None
    completed_on: datetime | None = None
    last_modified_on: datetime = field(default_factory=now)
    stop_requested_on: datetime | None = None
    forced: tuple[str, str] | None = None
    polls: int = 0

    def as_dict(self) -> dict[str, Any]:
        end = self.completed_on or now()
        body: dict[str, Any] = {
            "TransformId": self.transform_id,
            "TaskRunId": self.task_run_id,
            "Status": self.status,
            "LogGroupName": "/aws-glue/ml-transforms",
            "Properties": {"TaskType": self.task_type, **self.properties},
            "StartedOn": self.started_on,
            "LastModifiedOn": self.last_modified_on,
            "ExecutionTime": int((end - self.started_on).total_seconds()),
        }
        if self.error_string:
            body["ErrorString"] = self.error_string
        if self.completed_on:
            body["CompletedOn"] = self.completed_on
        return body


@dataclass
class TransformState:
    """What the emulator keeps for one transform: its task runs, labels and last metrics."""

    runs: dict[str, TaskRun] = field(default_factory=dict)
    labels: list[dict[str, str]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None


class MLState:
    """The emulated ML task-run state of one moto Glue backend (one account and region)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.data = GlueData(backend)
        self.transforms: dict[str, TransformState] = {}
        self.lock = threading.RLock()

    # -- lookup ---------------------------------------------------------------------------------
    def transform(self, transform_id: str) -> tuple[Any, TransformState]:
        if not isinstance(transform_id, str) or transform_id not in self.backend.ml_transforms:
            raise GlueErrorResponse(ErrorCode.ENTITY_NOT_FOUND, f"Transform with id {transform_id} not found")
        return self.backend.ml_transforms[transform_id], self.transforms.setdefault(
            transform_id, TransformState()
        )

    def run(self, transform_id: str, task_run_id: str) -> TaskRun:
        _, state = self.transform(transform_id)
        run = state.runs.get(task_run_id)
        if run is None:
            raise GlueErrorResponse(
                ErrorCode.ENTITY_NOT_FOUND,
                f"Task run {task_run_id} not found for transform {transform_id}",
            )
        self.advance(run)
        return run

    def poll(self, transform_id: str, task_run_id: str) -> TaskRun:
        """``GetMLTaskRun``: count the poll (see ``Settings.polls_to_finish``) and answer."""
        with self.lock:
            _, state = self.transform(transform_id)
            run = state.runs.get(task_run_id)
            if run is not None:
                run.polls += 1
            return self.run(transform_id, task_run_id)

    def all_runs(self, transform_id: str) -> list[TaskRun]:
        _, state = self.transform(transform_id)
        for run in state.runs.values():
            self.advance(run)
        return list(state.runs.values())

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, transform_id: str, task_type: str, properties: dict[str, Any]) -> TaskRun:
        """Refuse at the call what Glue refuses at the call, else start the run."""
        with self.lock:
            transform, state = self.transform(transform_id)
            if task_type in ONE_TABLE_TASKS and len(transform.input_record_tables) != 1:
                raise GlueErrorResponse(
                    ErrorCode.INVALID_INPUT, "Exactly one input record table must be provided."
                )
            if task_type == "EVALUATION" and self.transform_status(transform) != "READY":
                raise GlueErrorResponse(
                    ErrorCode.TRANSFORM_NOT_READY,
                    f"Transform {transform_id} is not ready: it has no labels yet",
                )
            if task_type == "EXPORT_LABELS" and not state.labels:
                raise GlueErrorResponse(
                    ErrorCode.ENTITY_NOT_FOUND, f"No labelset exists for transformId [{transform_id}]"
                )
            if task_type == "IMPORT_LABELS":
                self._check_labels_path(properties["ImportLabelsTaskRunProperties"]["InputS3Path"])
            active = [r for r in self.all_runs(transform_id) if r.status in ACTIVE_STATUSES]
            # The service model lists ConcurrentRunsExceededException for these two starts only.
            if task_type in QUOTA_TASK_TYPES and len(active) >= SETTINGS.max_concurrent_runs:
                raise GlueErrorResponse(
                    ErrorCode.CONCURRENT_RUNS_EXCEEDED,
                    f"Transform {transform_id} already has {len(active)} active task runs "
                    f"(limit {SETTINGS.max_concurrent_runs})",
                )
            run = TaskRun(transform_id, task_type, properties, forced=take_forced_outcome(task_type))
            state.runs[run.task_run_id] = run
            return run

    def _check_labels_path(self, uri: str) -> None:
        """StartImportLabelsTaskRun's own checks of the labels file, as Glue answers them."""
        match = S3_URI.match(uri) if isinstance(uri, str) else None
        if not match:
            raise GlueErrorResponse(ErrorCode.INVALID_INPUT, f"Invalid label file path: {uri}")
        bucket = self.data.s3().buckets.get(match.group(1))
        if bucket is None:
            raise GlueErrorResponse(ErrorCode.INVALID_INPUT, f"Cannot access the label file: {uri}")
        if bucket.region_name != self.backend.region_name:
            raise GlueErrorResponse(
                ErrorCode.INVALID_INPUT,
                f"The label file {uri} is in region {bucket.region_name}, the transform in {self.backend.region_name}",
            )
        files = self.data.objects(uri)
        if not files:
            raise GlueErrorResponse(ErrorCode.INVALID_INPUT, f"Cannot access the label file: {uri}")
        size = sum(len(data) for _, data in files)
        if size == 0:
            raise GlueErrorResponse(ErrorCode.INVALID_INPUT, "Invalid label file of size 0")
        if size > MAX_LABELS_FILE_BYTES:
            raise GlueErrorResponse(
                ErrorCode.RESOURCE_NUMBER_LIMIT_EXCEEDED,
                f"The label file {uri} has {size} bytes, more than the limit of {MAX_LABELS_FILE_BYTES}",
            )

    def cancel(self, transform_id: str, task_run_id: str) -> TaskRun:
        with self.lock:
            run = self.run(transform_id, task_run_id)
            if run.status not in ACTIVE_STATUSES:
                raise GlueErrorResponse(
                    ErrorCode.INVALID_INPUT,
                    f"Task run {task_run_id} is {run.status} and cannot be cancelled",
                )
            if run.stop_requested_on is None:
                run.stop_requested_on = now()
                self._set(run, "STOPPING")
            return run

    def advance(self, run: TaskRun) -> None:
        """Bring a run's status up to the clock; the work is done when its time is up."""
        with self.lock:
            if run.completed_on is not None:
                return
            current = now()
            if run.stop_requested_on is not None:
                if (current - run.stop_requested_on).total_seconds() >= SETTINGS.stop_seconds:
                    self._finish(run, "STOPPED", None)
                return
            elapsed = (current - run.started_on).total_seconds()
            if SETTINGS.polls_to_finish:
                unfinished = run.polls <= SETTINGS.polls_to_finish
            else:
                if elapsed < SETTINGS.starting_seconds:
                    return
                unfinished = elapsed < SETTINGS.run_seconds
            if unfinished:
                if run.status != "RUNNING":
                    self._set(run, "RUNNING")
                return
            if run.forced is not None:
                self._finish(run, *run.forced)
                return
            try:
                self._do_work(run)
            except RunFailed as failure:
                self._finish(run, "FAILED", str(failure))
            else:
                self._finish(run, "SUCCEEDED", None)

    def _set(self, run: TaskRun, status: str) -> None:
        run.status = status
        run.last_modified_on = now()

    def _finish(self, run: TaskRun, status: str, error_string: str | None) -> None:
        self._set(run, status)
        run.error_string = error_string
        run.completed_on = run.last_modified_on

    def transform_status(self, transform: Any) -> str:
        _, state = self.transform(transform.transform_id)
        return "READY" if state.labels else "NOT_READY"

    def describe_transform(self, transform: Any, body: dict[str, Any]) -> dict[str, Any]:
        """Fill ``Status``, ``LabelCount`` and ``EvaluationMetrics`` into moto's GetMLTransform."""
        with self.lock:
            _, state = self.transform(transform.transform_id)
            for run in state.runs.values():
                self.advance(run)
            body["Status"] = self.transform_status(transform)
            body["LabelCount"] = len(state.labels)
            schema = self.data.schema(transform)
            if schema:
                body["Schema"] = schema
            if state.metrics is not None:
                body["EvaluationMetrics"] = {
                    "TransformType": "FIND_MATCHES",
                    "FindMatchesMetrics": state.metrics,
                }
            return body

    def true_quality(self, transform_id: str, truth: dict[str, str]) -> dict[str, Any]:
        """The transform's quality against the known ``truth`` (record id to entity), with the
        labels it holds now (:func:`~.matching.true_quality`; not a Glue API)."""
        with self.lock:
            transform, state = self.transform(transform_id)
            rows, _ = self.data.read_source(transform)
            return true_quality(state.labels, rows, primary_key(transform) or "", truth)

    def find_matches(
        self,
        transform_id: str,
        output_path: str,
        name: str,
        *,
        scores: bool = False,
        incremental: tuple[str, str] | None = None,
    ) -> None:
        """What a Glue ETL job applying ``FindMatches.apply`` (or ``FindIncrementalMatches.apply``)
        writes: the records, each with a ``match_id`` column, as CSV under ``output_path`` (file
        ``name``).

        FindMatches matches the transform's source records. FindIncrementalMatches, given
        ``incremental``, writes the records matched before (with their ``match_id``, kept) and the
        new ones, each joining a group or starting its own; both frames must have the same
        columns. A transform with no labels has no model to apply: the job fails, as Glue's does.

        :param transform_id: the transform to apply.
        :param output_path: where to write, an S3 prefix.
        :param name: the output file's name.
        :param scores: add the ``match_confidence_score`` column (``computeMatchConfidenceScores``).
        :param incremental: FindIncrementalMatches' frames, as S3 paths: the existing frame (CSV
            with a ``match_id`` column) and the incremental frame (CSV of the new records).
        """
        with self.lock:
            transform, state = self.transform(transform_id)
            if not state.labels:
                raise RunFailed(
                    f"MLTransformNotReadyException: transform {transform_id} is not ready: teach it "
                    "with labels before applying it"
                )
            key = primary_key(transform)
            existing: list[str] | None = None
            if incremental is None:
                rows, columns = self.data.read_source(transform)
            else:
                rows, columns, existing = self._incremental_frames(*incremental)
            model = train(state.labels, key)  # once: the ids and the scores come from one model
            ids = match_ids(model, rows, existing)
            matched = [{**row, "match_id": match_id} for row, match_id in zip(rows, ids, strict=True)]
            columns = [*columns, "match_id"]
            if scores:
                for row, score in zip(matched, match_confidence_scores(model, rows, ids), strict=True):
                    row["match_confidence_score"] = str(score)
                columns.append("match_confidence_score")
            self.data.write(output_path, name, to_csv(matched, columns))

    def _incremental_frames(
        self, existing_path: str, incremental_path: str
    ) -> tuple[list[dict[str, str]], list[str], list[str]]:
        """FindIncrementalMatches' two frames as one: the existing records (their match ids apart)
        then the new ones, their common columns, and the existing records' match ids."""
        existing_rows, existing_columns = self.data.read_frame("existing frame", existing_path)
        new_rows, new_columns = self.data.read_frame("incremental frame", incremental_path)
        if "match_id" not in existing_columns:
            raise RunFailed(
                f"The existing frame {existing_path} has no match_id column: FindIncrementalMatches "
                "matches new records against records matched before (a FindMatches job's output)"
            )
        # A score from an earlier run is dropped and, when asked, computed anew.
        columns = [c for c in existing_columns if c not in ("match_id", "match_confidence_score")]
        if set(new_columns) != set(columns):
            missing, extra = sorted(set(columns) - set(new_columns)), sorted(set(new_columns) - set(columns))
            raise RunFailed(
                f"The incremental frame {incremental_path} does not have the existing frame's columns "
                f"(missing: {', '.join(missing) or 'none'}; not in the existing frame: "
                f"{', '.join(extra) or 'none'}): FindIncrementalMatches needs both frames in the "
                "transform's schema"
            )
        ids = [row["match_id"] for row in existing_rows]
        if not all(ids):
            raise RunFailed(
                f"The existing frame {existing_path} has a record without a match_id "
                f"(record {ids.index('') + 1} of {len(ids)})"
            )
        rows = [{c: row[c] for c in columns} for row in [*existing_rows, *new_rows]]
        return rows, columns, ids

    # -- the work of each task type -------------------------------------------------------------
    def _do_work(self, run: TaskRun) -> None:
        transform, state = self.transform(run.transform_id)
        props = run.properties
        if run.task_type == "LABELING_SET_GENERATION":
            path = props["LabelingSetGenerationTaskRunProperties"]["OutputS3Path"]
            rows, columns = self.data.read_source(transform)
            earlier = [
                r
                for r in state.runs.values()
                if r.task_type == run.task_type and r.started_on < run.started_on
            ]
            seed = f"{transform.name}:{len(earlier)}"  # the same data and history give the same set
            body = to_csv(
                labeling_set(rows, columns, primary_key(transform), seed=seed), [*LABEL_COLUMNS, *columns]
            )
            self.data.write(path, f"{run.task_run_id}.csv", body)
        elif run.task_type == "IMPORT_LABELS":
            spec = props["ImportLabelsTaskRunProperties"]
            labels = self.data.read_labels(spec["InputS3Path"], transform)
            state.labels = labels if spec["Replace"] else state.labels + labels
        elif run.task_type == "EXPORT_LABELS":
            path = props["ExportLabelsTaskRunProperties"]["OutputS3Path"]
            columns = list(dict.fromkeys(c for row in state.labels for c in row))
            self.data.write(
                path, f"{run.task_run_id}.csv", to_csv(state.labels, columns or list(LABEL_COLUMNS))
            )
        elif run.task_type == "EVALUATION":
            state.metrics = evaluate(state.labels, primary_key(transform))
