"""Glue ML task runs as the API defines them (botocore's glue model, 2017-03-31, and the developer guide)."""

from __future__ import annotations

from enum import StrEnum


class TaskRunStatus(StrEnum):
    """Glue's ``TaskStatusType``."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"


class TaskType(StrEnum):
    """Glue's ``TaskType`` of the runs this provider starts (``FIND_MATCHES`` is a job's, not ours)."""

    LABELING_SET_GENERATION = "LABELING_SET_GENERATION"
    IMPORT_LABELS = "IMPORT_LABELS"
    EXPORT_LABELS = "EXPORT_LABELS"
    EVALUATION = "EVALUATION"


# A run that still holds one of the transform's concurrent-run slots: STOPPING is no end.
ACTIVE_STATUSES = (TaskRunStatus.STARTING, TaskRunStatus.RUNNING, TaskRunStatus.STOPPING)
# A run to wait for or reconnect to; a STOPPING one is being cancelled.
RUNNING_STATUSES = (TaskRunStatus.STARTING, TaskRunStatus.RUNNING)
FAILURE_STATUSES = frozenset({TaskRunStatus.FAILED, TaskRunStatus.STOPPED, TaskRunStatus.TIMEOUT})

# The boto3 call that starts each type of run.
START_CALLS: dict[str, str] = {
    TaskType.LABELING_SET_GENERATION: "start_ml_labeling_set_generation_task_run",
    TaskType.IMPORT_LABELS: "start_import_labels_task_run",
    TaskType.EXPORT_LABELS: "start_export_labels_task_run",
    TaskType.EVALUATION: "start_ml_evaluation_task_run",
}
# The group of a run's ``Properties`` that echoes its start call (an evaluation echoes nothing).
ECHO_KEYS: dict[str, str] = {
    TaskType.LABELING_SET_GENERATION: "LabelingSetGenerationTaskRunProperties",
    TaskType.IMPORT_LABELS: "ImportLabelsTaskRunProperties",
    TaskType.EXPORT_LABELS: "ExportLabelsTaskRunProperties",
}
# The S3 path each echo carries: the run's output, or the import's input.
S3_PATH_PROPERTIES = (
    (ECHO_KEYS[TaskType.LABELING_SET_GENERATION], "OutputS3Path"),
    (ECHO_KEYS[TaskType.IMPORT_LABELS], "InputS3Path"),
    (ECHO_KEYS[TaskType.EXPORT_LABELS], "OutputS3Path"),
)
# Only generation and evaluation count against the transform's concurrent-run quota
# (ConcurrentRunsExceededException is documented on those two calls only); default 3 a transform.
QUOTA_TASK_TYPES = frozenset({TaskType.LABELING_SET_GENERATION, TaskType.EVALUATION})
MAX_CONCURRENT_RUNS = 3
# A task run's default timeout: GetMLTransform's Timeout defaults to 2,880 minutes.
DEFAULT_TASK_RUN_TIMEOUT_SECONDS = 2880 * 60


class ErrorCode(StrEnum):
    """The error codes of Glue's ML task-run calls (each error also carries a ``Message``)."""

    ENTITY_NOT_FOUND = "EntityNotFoundException"
    INVALID_INPUT = "InvalidInputException"
    OPERATION_TIMEOUT = "OperationTimeoutException"
    INTERNAL_SERVICE = "InternalServiceException"
    CONCURRENT_RUNS_EXCEEDED = "ConcurrentRunsExceededException"
    TRANSFORM_NOT_READY = "MLTransformNotReadyException"
    RESOURCE_NUMBER_LIMIT_EXCEEDED = "ResourceNumberLimitExceededException"
    THROTTLING = "ThrottlingException"


# Errors a later call may not meet again: throttling, Glue's faults (5xx) and time-outs.
TRANSIENT_CODES = frozenset(
    {
        ErrorCode.THROTTLING,
        ErrorCode.INTERNAL_SERVICE,
        ErrorCode.OPERATION_TIMEOUT,
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
    }
)
