"""OpenLineage for every operator: what its Glue ML task run reads and writes, and the run itself.

:class:`GlueMLLineageMixin` gives each operator ``get_openlineage_facets_on_start``,
``..._on_complete`` and ``..._on_failure``, which the ``apache-airflow-providers-openlineage``
listener calls. OpenLineage is imported inside them: the provider works without it.

Datasets are named as OpenLineage's naming spec names them: a Glue catalog table is namespace
``arn:aws:glue:{region}:{account id}`` and name ``table/{database}/{table}``; an S3 object or prefix
is namespace ``s3://{bucket}`` and name ``{key}``. The transform, as the dataset labels are
imported into and evaluations read, sits beside its tables: same namespace, name
``mlTransform/{TransformId}`` (the resource part of its ARN). Each event carries the run facet
``glueMLTaskRun`` (:data:`FACET_SCHEMA`): the transform, the TaskRunId, its type, its status and
Glue's ``ErrorString``, and an evaluation's metrics.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_glue_labeling.labels.files import as_prefix
from airflow_provider_glue_labeling.validation import check_s3_uri

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

FACET_NAME = "glueMLTaskRun"
# The run facet's JSON schema ships with the provider: a URN names it (OpenLineage asks for a URI).
FACET_SCHEMA_URL = "urn:airflow-provider-glue-labeling:facets:GlueMLTaskRunRunFacet:1"
#: The JSON schema of the run facet ``glueMLTaskRun`` (``_schemaURL``: :data:`FACET_SCHEMA_URL`).
FACET_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": FACET_SCHEMA_URL,
    "type": "object",
    "properties": {
        "transformId": {"type": "string", "description": "the Glue ML transform (tfm-...)"},
        "taskRunId": {"type": ["string", "null"], "description": "the Glue ML task run"},
        "taskRunType": {"type": ["string", "null"], "description": "e.g. EVALUATION, IMPORT_LABELS"},
        "status": {"type": ["string", "null"], "description": "the run's Status, when known"},
        "errorString": {"type": ["string", "null"], "description": "Glue's ErrorString of a failed run"},
        "metrics": {"type": ["object", "null"], "description": "an evaluation's FindMatchesMetrics"},
    },
    "required": ["transformId"],
}


class Ref(NamedTuple):
    """A dataset a run reads or writes: ``("s3", uri)``, ``("tables", None)`` (the transform's
    source tables) or ``("transform", None)``."""

    kind: str
    value: str | None = None


@functools.cache
def _facet_class() -> type:
    """The run facet's class, built on OpenLineage's own (imported only when lineage is asked for)."""
    import attr
    from airflow.providers.common.compat.openlineage.facet import RunFacet

    @attr.define
    class GlueMLTaskRunRunFacet(RunFacet):  # type: ignore[misc]
        """The Glue ML task run of an Airflow task (see ``FACET_SCHEMA``)."""

        transformId: str
        taskRunId: str | None = None
        taskRunType: str | None = None
        status: str | None = None
        errorString: str | None = None
        metrics: dict[str, Any] | None = None

        @staticmethod
        def _get_schema() -> str:
            return FACET_SCHEMA_URL

    return GlueMLTaskRunRunFacet


class GlueMLLineageMixin:
    """OpenLineage inputs, outputs and run facet of an operator on one transform.

    Operators say what they read and write in :meth:`lineage_inputs` and :meth:`lineage_outputs`;
    lineage never fails a task: what cannot be looked up is left out and logged.
    """

    transform_id: str
    log: Any

    def lineage_inputs(self) -> list[Ref]:
        return []

    def lineage_outputs(self) -> list[Ref]:
        return []

    def lineage_run_type(self) -> str | None:
        """The task run's type when the operator knows it before asking Glue."""
        return None

    def lineage_metrics(self) -> dict[str, Any] | None:
        return None

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        """What the task will read and write, and the run it starts with (once rendered)."""
        return self._lineage(finished=False)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """What the task read and wrote, and its run's end (status; metrics of an evaluation).

        :param task_instance: the finished task instance (unused: the operator holds its run).
        """
        return self._lineage(finished=True)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        """As on complete, with Glue's ``ErrorString`` of a run that failed.

        :param task_instance: the failed task instance (unused: the operator holds its run).
        """
        return self._lineage(finished=True)

    def _lineage(self, finished: bool) -> OperatorLineage:
        from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        places = _Places(self)
        inputs = [InputDataset(n, name) for n, name in places.datasets(self.lineage_inputs())]
        outputs = [OutputDataset(n, name) for n, name in places.datasets(self.lineage_outputs())]
        task_run_id = getattr(self, "task_run_id", None)
        run: dict[str, Any] = {"transformId": self.transform_id, "taskRunId": task_run_id}
        run["taskRunType"] = self.lineage_run_type()
        if finished and task_run_id:
            found = places.task_run(task_run_id)
            run["status"], run["errorString"] = found.get("Status"), found.get("ErrorString")
            run["taskRunType"] = run["taskRunType"] or (found.get("Properties") or {}).get("TaskType")
        run["metrics"] = self.lineage_metrics()
        facet = _facet_class()(**run)
        return OperatorLineage(inputs=inputs, outputs=outputs, run_facets={FACET_NAME: facet})


class _Places:
    """Names datasets for one event, asking Glue (and STS for the account) at most once each."""

    def __init__(self, operator: Any) -> None:
        self.operator = operator

    def _ask(self, what: str, call: Any) -> Any:
        try:
            return call()
        except Exception as error:  # lineage is never worth failing a task
            self.operator.log.warning("OpenLineage: could not read %s: %s", what, error)
            return None

    @functools.cached_property
    def transform(self) -> dict[str, Any]:
        hook = self.operator.hook
        return self._ask("the transform", lambda: hook.get_transform(self.operator.transform_id)) or {}

    @functools.cached_property
    def namespace(self) -> str | None:
        """``arn:aws:glue:{region}:{account}``: the catalog of the transform's tables."""
        hook = self.operator.hook
        tables = self.transform.get("InputRecordTables") or [{}]
        account = tables[0].get("CatalogId") or self._ask("the AWS account", lambda: hook.account_id)
        region = self._ask("the AWS region", lambda: hook.conn_region_name)
        partition = self._ask("the AWS partition", lambda: hook.conn_partition) or "aws"
        return f"arn:{partition}:glue:{region}:{account}" if account and region else None

    def task_run(self, task_run_id: str) -> dict[str, Any]:
        hook = self.operator.hook
        return (
            self._ask("the task run", lambda: hook.get_task_run(self.operator.transform_id, task_run_id))
            or {}
        )

    def datasets(self, refs: list[Ref]) -> list[tuple[str, str]]:
        named: list[tuple[str, str]] = []
        for ref in refs:
            if ref.kind == "s3" and ref.value:
                place = self._ask(
                    f"the S3 path {ref.value!r}", lambda v=ref.value: check_s3_uri("s3 path", v)
                )
                if place:  # a path the task refused is logged, not named
                    # a folder is named without its trailing "/"; the whole bucket is "/"
                    named.append((f"s3://{place[0]}", as_prefix(place[1]).removesuffix("/") or "/"))
            elif ref.kind == "tables" and self.namespace:
                for table in self.transform.get("InputRecordTables") or []:
                    named.append((self.namespace, f"table/{table['DatabaseName']}/{table['TableName']}"))
            elif ref.kind == "transform" and self.namespace:
                named.append((self.namespace, f"mlTransform/{self.operator.transform_id}"))
        return named
