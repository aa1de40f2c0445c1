"""The Glue ML task-run operations, added to moto's Glue request handler."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ConnectionClosedError
from moto.core.responses import ActionResult
from moto.core.utils import camelcase_to_underscores
from moto.glue.models import FakeJobRun, FakeMLTransform, GlueBackend, glue_backends
from moto.glue.responses import GlueResponse
from moto.s3.responses import S3Response

from airflow_provider_glue_labeling.emulator import settings
from airflow_provider_glue_labeling.emulator.data import GlueErrorResponse, RunFailed, parse_s3_uri
from airflow_provider_glue_labeling.emulator.models import MLState, TaskRun
from airflow_provider_glue_labeling.glue.statuses import ErrorCode

SORT_KEYS: dict[str, Callable[[TaskRun], Any]] = {
    "TASK_RUN_TYPE": lambda r: r.task_type,
    "STATUS": lambda r: r.status,
    "STARTED": lambda r: r.started_on,
}


def ml_state(backend: GlueBackend) -> MLState:
    """The emulator's state kept on one moto Glue backend (created on first use)."""
    state = backend.__dict__.get("_glue_ml_state")
    if state is None:
        state = backend.__dict__.setdefault("_glue_ml_state", MLState(backend))
    return state


_S3_WRITES = threading.Lock()


def true_quality(transform_id: str, truth: dict[str, str]) -> dict[str, Any]:
    """The quality of the transform ``transform_id`` against the known ``truth`` (record id to
    entity): precision, recall and F1 of its model, trained on all its labels, over the source
    records (see :func:`~.matching.true_quality`). Not a Glue API: Glue does not know the truth;
    benchmarks and the demo do.
    """
    for regions in glue_backends.values():
        for backend in regions.values():
            if transform_id in backend.ml_transforms:
                return ml_state(backend).true_quality(transform_id, truth)
    raise GlueErrorResponse(ErrorCode.ENTITY_NOT_FOUND, f"Transform with id {transform_id} not found")


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def request_parameters(response: GlueResponse) -> dict[str, Any]:
    """The call's parameters, read from its JSON body (Glue speaks AWS JSON 1.1) as the client sent
    them: the same on every moto release, whatever moto's own parsing makes of them (moto 5.2.6
    dropped ``GlueResponse.parameters`` and parses the body by the service model instead).
    """
    body = response.body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        parameters = json.loads(body) if body else {}
    except ValueError:
        raise GlueErrorResponse(ErrorCode.INVALID_INPUT, "The request body is not valid JSON") from None
    if not isinstance(parameters, dict):
        raise GlueErrorResponse(ErrorCode.INVALID_INPUT, "The request body is not a JSON object")
    return parameters


def _apply_faults(response: GlueResponse, operation: str) -> float:
    """Raise or sleep as the faults on this call say; return how long to hold the answer back."""
    hold = 0.0
    for fault in settings.record_call(operation, request_parameters(response)):
        if fault.kind == "slow_reply":
            hold += fault.seconds
        elif fault.kind == "latency":
            time.sleep(fault.seconds)
        elif fault.kind == "throttle":
            raise GlueErrorResponse(ErrorCode.THROTTLING, "Rate exceeded")
        elif fault.kind == "server_error":
            raise GlueErrorResponse(ErrorCode.INTERNAL_SERVICE, "Internal service error", 500)
        elif fault.kind == "timeout":
            raise GlueErrorResponse(ErrorCode.OPERATION_TIMEOUT, "Operation timed out")
        elif fault.kind == "reset":
            _drop_connection(response)
    return hold


def _drop_connection(response: GlueResponse) -> None:
    """Reset the client's TCP connection (server mode), or raise what botocore sees in-process."""
    environ = getattr(getattr(response, "normalized_request", None), "environ", None) or {}
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    raise ConnectionClosedError(endpoint_url=getattr(response, "uri", "glue"))


Handler = Callable[[dict[str, Any], MLState], dict[str, Any]]


def _operation(name: str) -> Callable[[Handler], Any]:
    """Wrap a handler of the call's parameters as a moto response method: call log, faults, then
    the handler."""

    def wrap(handler: Handler) -> Any:
        def method(self: GlueResponse) -> ActionResult:
            hold = _apply_faults(self, name)
            result = ActionResult(handler(request_parameters(self), ml_state(self.glue_backend)))
            time.sleep(hold)  # the work is done; the client waits for the answer
            return result

        method.__name__ = handler.__name__
        return method

    return wrap


def _start(task_type: str, properties: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
    def handler(params: dict[str, Any], state: MLState) -> dict[str, Any]:
        run = state.start(params.get("TransformId", ""), task_type, properties(params))
        return {"TaskRunId": run.task_run_id}

    return handler


def _path(params: dict[str, Any], parameter: str) -> str:
    value = params.get(parameter)
    parse_s3_uri(parameter, value)  # refuses anything but an s3:// path
    return str(value)


def get_ml_task_run(params: dict[str, Any], state: MLState) -> dict[str, Any]:
    return state.poll(params.get("TransformId", ""), params.get("TaskRunId", "")).as_dict()


def get_ml_task_runs(params: dict[str, Any], state: MLState) -> dict[str, Any]:
    runs = state.all_runs(params.get("TransformId", ""))
    flt = params.get("Filter") or {}
    after, before = _timestamp(flt.get("StartedAfter")), _timestamp(flt.get("StartedBefore"))
    runs = [
        r
        for r in runs
        if flt.get("TaskRunType") in (None, r.task_type)
        and flt.get("Status") in (None, r.status)
        and (after is None or r.started_on >= after)
        and (before is None or r.started_on <= before)
    ]
    sort = params.get("Sort") or {"Column": "STARTED", "SortDirection": "DESCENDING"}
    if sort.get("Column") not in SORT_KEYS:
        raise GlueErrorResponse(ErrorCode.INVALID_INPUT, f"Sort column {sort.get('Column')} is not valid")
    runs.sort(key=SORT_KEYS[sort["Column"]], reverse=sort.get("SortDirection") != "ASCENDING")
    max_results = int(params.get("MaxResults") or 100)
    if not 1 <= max_results <= 1000:
        raise GlueErrorResponse(
            ErrorCode.INVALID_INPUT, f"MaxResults {max_results} is not between 1 and 1000"
        )
    token = params.get("NextToken")
    try:
        offset = int(token or 0)
    except ValueError:
        raise GlueErrorResponse(ErrorCode.INVALID_INPUT, f"NextToken {token} is not valid") from None
    page = runs[offset : offset + max_results]
    body: dict[str, Any] = {"TaskRuns": [r.as_dict() for r in page]}
    if offset + max_results < len(runs):
        body["NextToken"] = str(offset + max_results)
    return body


def cancel_ml_task_run(params: dict[str, Any], state: MLState) -> dict[str, Any]:
    run = state.cancel(params.get("TransformId", ""), params.get("TaskRunId", ""))
    return {"TransformId": run.transform_id, "TaskRunId": run.task_run_id, "Status": run.status}


HANDLERS: dict[str, Handler] = {
    "StartMLLabelingSetGenerationTaskRun": _start(
        "LABELING_SET_GENERATION",
        lambda r: {"LabelingSetGenerationTaskRunProperties": {"OutputS3Path": _path(r, "OutputS3Path")}},
    ),
    "StartImportLabelsTaskRun": _start(
        "IMPORT_LABELS",
        lambda r: {
            "ImportLabelsTaskRunProperties": {
                "InputS3Path": r.get("InputS3Path"),  # checked by MLState.start, as Glue does
                "Replace": bool(r.get("ReplaceAllLabels", False)),
            }
        },
    ),
    "StartExportLabelsTaskRun": _start(
        "EXPORT_LABELS",
        lambda r: {"ExportLabelsTaskRunProperties": {"OutputS3Path": _path(r, "OutputS3Path")}},
    ),
    "StartMLEvaluationTaskRun": _start("EVALUATION", lambda r: {}),
    "GetMLTaskRun": get_ml_task_run,
    "GetMLTaskRuns": get_ml_task_runs,
    "CancelMLTaskRun": cancel_ml_task_run,
}

# The transforms a Glue ETL job script can apply (``awsglueml.transforms``), each with the job
# arguments the emulator reads, as example_dags/findmatches_job.py and
# example_dags/findincrementalmatches_job.py take them. The incremental one first: its call does
# not contain the other's, but a script may name both.
TRANSFORM_CALLS: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "FindIncrementalMatches": (
        b"FindIncrementalMatches.apply(",
        ("--transform_id", "--existing_path", "--incremental_path", "--output_path"),
    ),
    "FindMatches": (b"FindMatches.apply(", ("--transform_id", "--output_path")),
}
# Optional: "true" passes computeMatchConfidenceScores=True to the transform, as the example scripts do.
SCORES_ARGUMENT = "--compute_match_confidence_scores"
# "Currently, the FindMatches API only works with Glue 2.0 [...] If the version of AWS Glue is not
# Glue 2.0, the job will fail at runtime with the following error message: 'cannot import name
# 'FindMatches' from 'awsglueml.transforms''" (AWS Glue developer guide, "Using FindMatches in a
# visual job"); incremental matching too (Glue 2.0 "is the only version of AWS Glue that supports
# incremental matches", "Finding incremental matches").
FINDMATCHES_GLUE_VERSION = "2.0"
# A job created without a GlueVersion runs on Glue's default: "Jobs that are created without
# specifying a Glue version default to Glue 5.1" (API reference, Job.GlueVersion; botocore 1.43's
# Glue service model). moto stores no version for such a job (FakeJob.glue_version is None).
DEFAULT_JOB_GLUE_VERSION = "5.1"


def run_findmatches_job(backend: GlueBackend, job_name: str, run_id: str) -> None:
    """Do the work of a job run whose script applies FindMatches or FindIncrementalMatches; moto
    only records other jobs' runs.

    The script is read from the job's ``Command.ScriptLocation`` in S3; the transform, the paths
    and :data:`SCORES_ARGUMENT` come from the run's arguments over the job's ``DefaultArguments``.
    A job not on Glue 2.0 fails as the script imports the transform. The records with their match
    ids are written as the run starts; a failure ends the run FAILED with its ``ErrorMessage``, as
    Glue reports a job's error.

    :param backend: moto's Glue backend of the job.
    :param job_name: the job's name.
    :param run_id: the run just started.
    """
    job = backend.get_job(job_name)
    run = job.get_job_run(run_id)
    state = ml_state(backend)
    try:
        command: Any = job.command or {}  # moto types it str; the API gives a dict
        location = command.get("ScriptLocation") or ""
        script = b"".join(body for _, body in state.data.objects(location)) if location else b""
        applied = [(name, needed) for name, (call, needed) in TRANSFORM_CALLS.items() if call in script]
        if not applied:
            return
        transform, needed = applied[0]
        if (job.glue_version or DEFAULT_JOB_GLUE_VERSION) != FINDMATCHES_GLUE_VERSION:
            raise RunFailed(f"ImportError: cannot import name '{transform}' from 'awsglueml.transforms'")
        arguments = {**job.default_arguments, **(run.arguments or {})}
        missing = [name for name in needed if not arguments.get(name)]
        if missing:
            raise RunFailed(f"The job's script needs the arguments {', '.join(missing)}")
        # Glue's DynamicFrame writer names its files run-<epoch ms>-part-r-<number>, with no
        # extension, whatever the format; one file here.
        state.find_matches(
            arguments["--transform_id"],
            arguments["--output_path"],
            f"run-{int(time.time() * 1000)}-part-r-00000",
            scores=str(arguments.get(SCORES_ARGUMENT, "")).strip().lower() == "true",
            incremental=(
                (arguments["--existing_path"], arguments["--incremental_path"])
                if transform == "FindIncrementalMatches"
                else None
            ),
        )
    except (RunFailed, GlueErrorResponse) as failure:
        run.status = "FAILED"
        run.__dict__["error_message"] = getattr(failure, "message", None) or str(failure)


_installed = False


def install() -> None:
    """Add the operations to moto's Glue (idempotent); GetMLTransform(s) gain the emulated state."""
    global _installed
    if _installed:
        return
    for operation, handler in HANDLERS.items():
        setattr(GlueResponse, camelcase_to_underscores(operation), _operation(operation)(handler))

    moto_get_ml_transform = GlueResponse.get_ml_transform

    def get_ml_transform(self: GlueResponse) -> ActionResult:
        hold = _apply_faults(self, "GetMLTransform")
        result = moto_get_ml_transform(self)
        time.sleep(hold)
        return result

    moto_as_dict = FakeMLTransform.as_dict

    def as_dict(self: FakeMLTransform) -> dict[str, Any]:
        return ml_state(self.backend).describe_transform(self, moto_as_dict(self))

    moto_put_object = S3Response.put_object

    def put_object(self: S3Response) -> Any:
        # S3 checks a conditional write (IfNoneMatch="*", IfMatch) and writes atomically; moto's
        # server checks, then writes, on as many threads as there are requests: one lock makes it so.
        with _S3_WRITES:
            return moto_put_object(self)

    moto_start_job_run = GlueBackend.start_job_run

    def start_job_run(self: GlueBackend, name: str, *args: Any, **kwargs: Any) -> str:
        run_id = moto_start_job_run(self, name, *args, **kwargs)
        self.get_job(name).get_job_run(run_id).__dict__["started"] = time.monotonic()
        run_findmatches_job(self, name, run_id)
        return run_id

    moto_job_run_as_dict = FakeJobRun.as_dict

    def job_run_as_dict(self: FakeJobRun) -> dict[str, Any]:
        """A job run's state by the clock, as the emulator's task runs (STARTING, RUNNING,
        SUCCEEDED after ``run_seconds``), or FAILED with its ``ErrorMessage``."""
        body = moto_job_run_as_dict(self)
        elapsed = time.monotonic() - self.__dict__.get("started", 0.0)
        if self.__dict__.get("error_message"):
            body["JobRunState"], body["ErrorMessage"] = "FAILED", self.__dict__["error_message"]
        elif elapsed < settings.SETTINGS.starting_seconds:
            body["JobRunState"] = "STARTING"
        else:
            body["JobRunState"] = "RUNNING" if elapsed < settings.SETTINGS.run_seconds else "SUCCEEDED"
        return body

    GlueBackend.start_job_run = start_job_run  # type: ignore[method-assign]
    FakeJobRun.as_dict = job_run_as_dict  # type: ignore[method-assign]
    GlueResponse.get_ml_transform = get_ml_transform  # type: ignore[method-assign]
    FakeMLTransform.as_dict = as_dict  # type: ignore[method-assign]
    S3Response.put_object = put_object  # type: ignore[method-assign]
    _installed = True
