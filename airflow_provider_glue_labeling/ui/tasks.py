"""Where the labeling page finds labeling tasks: Airflow's metadata DB, by rendered template fields."""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow_provider_glue_labeling.ui.service import REFUSALS, RENDERED_FIELDS, LabelingTask

log = logging.getLogger(__name__)
# What Airflow's secrets masker leaves of a sensitive value (``proxies``, a password) in the
# rendered fields it stores.
MASKED = "***"


class NotALabelingTask(LookupError):
    """No waiting-or-not labeling task instance has these ids."""


def labeling_tasks(session: Any, **where: Any) -> list[LabelingTask]:
    """The task instances of labeling tasks, found by their rendered template fields.

    :param session: a metadata DB session.
    :param where: ``TaskInstance`` columns to match (a tuple: any of its values).
    """
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import and_, select

    join = and_(
        Rendered.dag_id == TaskInstance.dag_id,
        Rendered.run_id == TaskInstance.run_id,
        Rendered.task_id == TaskInstance.task_id,
        Rendered.map_index == TaskInstance.map_index,
    )
    query = select(TaskInstance, Rendered.rendered_fields).join(Rendered, join)
    for name, value in where.items():
        column = getattr(TaskInstance, name)
        query = query.where(column.in_(value) if isinstance(value, tuple) else column == value)
    found = []
    for ti, fields in session.execute(query.order_by(TaskInstance.start_date)).all():
        if isinstance(fields, dict) and all(fields.get(name) for name in RENDERED_FIELDS[:3]):
            try:
                found.append(LabelingTask(ti, with_botocore_config(ti, fields)))
            except ValueError as error:  # a labels_s3_path that is not an S3 URI
                log.warning("Not a labeling task: %s %s %s: %s", ti.dag_id, ti.run_id, ti.task_id, error)
    return found


def with_botocore_config(ti: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """The rendered fields with the task's ``botocore_config`` whole: Airflow masks sensitive
    values in the rendered fields it stores (``proxies``, which may hold a password), so those
    are read from the DAG's own (serialized) task, where they are kept as written.

    :param ti: the task instance.
    :param fields: its rendered template fields.
    :raises ValueError: a masked value that the DAG writes as a template (it cannot be rendered here).
    """
    rendered = fields.get("botocore_config")
    if MASKED not in json.dumps(rendered, default=str):
        return fields
    task = ti.dag_version.serialized_dag.dag.get_task(ti.task_id)
    return {**fields, "botocore_config": unmasked(rendered, getattr(task, "botocore_config", None))}


def unmasked(rendered: Any, written: Any, where: str = "botocore_config") -> Any:
    """``rendered`` with each value Airflow masked taken from ``written``, the DAG's own.

    :param rendered: a rendered value, with :data:`MASKED` in place of sensitive values.
    :param written: the value as the DAG writes it.
    :param where: the value's name, for the error.
    :raises ValueError: a masked value written as a template, or not written at all.
    """
    if rendered == MASKED:
        if written is None or written == MASKED or "{{" in json.dumps(written, default=str):
            raise ValueError(
                f"{where} is masked in the task's rendered fields and written as a template "
                f"({written!r}): the page cannot render it; give it in the AWS connection's extra "
                "(config_kwargs) or without a template"
            )
        return written
    if isinstance(rendered, dict) and isinstance(written, dict):
        return {key: unmasked(value, written.get(key), f"{where}.{key}") for key, value in rendered.items()}
    return rendered


def one_task(session: Any, dag_id: str, run_id: str, task_id: str, map_index: str) -> LabelingTask:
    """The labeling task with these ids; :class:`NotALabelingTask` when there is none.

    The UI leaves ``{MAP_INDEX}`` as it is in a task-instance tab's link for a task that is not mapped.
    """
    try:
        index = int(map_index)
    except ValueError:
        index = -1
    found = labeling_tasks(session, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=index)
    if not found:
        raise NotALabelingTask(f"{dag_id} / {run_id} / {task_id}[{index}] is not a labeling task")
    return found[0]


def counts(task: LabelingTask) -> dict[str, Any]:
    """How many sets and records a task's labeling set has; a problem with one task is not the list's."""
    try:
        labeling = task.labeling_set()
    except REFUSALS as error:
        return {"sets": None, "records": None, "problem": str(error)}
    return {"sets": len(labeling.sets), "records": labeling.records()}
