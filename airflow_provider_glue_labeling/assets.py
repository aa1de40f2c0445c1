"""The assets of FindMatches teaching: a DAG can be scheduled on "the transform was taught".

:func:`transform_asset` names a transform's asset ``glue-ml-transform://<TransformId>/``. A
transform id is unique in its account and region and carries 32 random hex digits (``tfm-…``),
so the id alone names the transform in a deployment that reaches several accounts.

The label import and the evaluation (when they wait for their run) update it: when the task
succeeds Airflow records an asset event whose ``extra`` says what the run did
(:func:`event_extra`). With a ``transform_id`` fixed when the DAG is parsed, the asset itself is
their outlet; with a templated one (a DAG param) the transform is known only when the task runs,
and the event goes through the asset alias ``glue-ml-transforms`` (Airflow's way to name assets
at run time). Either way the event is an event of ``glue-ml-transform://<TransformId>/``, and a
DAG scheduled on that asset runs. The labeling task records each labels file as an asset of its
own (``s3://…/labels.csv``) through the alias ``glue-ml-labels``. On Airflow 2 assets are called
datasets (``airflow.datasets.Dataset``): a fixed transform id's dataset is updated the same way;
aliases are left out there (see :data:`~.versions.HAS_ASSET_ALIASES`), so a templated transform id
and the labels files record no event on Airflow 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.assets import Asset, AssetAlias

from airflow_provider_glue_labeling.exceptions import GlueMLInputError
from airflow_provider_glue_labeling.validation import check_transform_id
from airflow_provider_glue_labeling.versions import HAS_ASSET_ALIASES

if TYPE_CHECKING:
    from airflow.sdk import Context

SCHEME = "glue-ml-transform"
TRANSFORMS_ALIAS = "glue-ml-transforms"  # the events of transforms named by a template
LABELS_ALIAS = "glue-ml-labels"  # the labels files, each an asset of its own
# The key of an evaluation event's extra that says the round passed (see the evaluation's event_facts).
PASSED = "passed"


def transform_asset(transform_id: str) -> Asset:
    """The asset of the transform ``transform_id``: ``glue-ml-transform://<transform_id>/``.

    :param transform_id: the Glue ML transform id (``tfm-…``), not a template.
    """
    if isinstance(transform_id, str) and "{{" in transform_id:
        raise GlueMLInputError(
            "transform_id",
            transform_id,
            "an asset is named when the DAG is parsed: give the transform id itself, not a template",
        )
    check_transform_id(transform_id)
    return Asset(f"{SCHEME}://{transform_id}/")  # as Airflow normalizes it: a path of "/"


def transform_of(outlet: Any) -> str | None:
    """The transform id an outlet is the asset of, or None for any other outlet."""
    uri = str(getattr(outlet, "uri", ""))
    prefix = f"{SCHEME}://"
    return uri[len(prefix) :].rstrip("/") if uri.startswith(prefix) else None


def _alias_name(outlet: Any) -> str | None:
    return outlet.name if isinstance(outlet, AssetAlias) else None


def add_transform_outlet(operator: Any) -> None:
    """Add the transform's asset (fixed id) or the alias ``glue-ml-transforms`` (templated id) to the
    outlets of an operator that waits for its run.

    :param operator: an import or evaluation operator, once its ``__init__`` has set its fields.
    """
    transform_id = operator.transform_id
    if operator.wait_for_completion is not True or not isinstance(transform_id, str):
        return
    outlet: Any = AssetAlias(TRANSFORMS_ALIAS) if HAS_ASSET_ALIASES else None
    if "{{" not in transform_id:
        try:
            outlet = transform_asset(transform_id)
        except GlueMLInputError:
            return  # validate() names the parameter when the task runs
    if outlet is not None and not any(str(o) == str(outlet) for o in operator.outlets):
        operator.outlets = [*operator.outlets, outlet]


def add_labels_outlet(operator: Any) -> None:
    """Add the alias ``glue-ml-labels`` to the labeling task's outlets: each labels file is an asset."""
    if HAS_ASSET_ALIASES and not any(_alias_name(o) == LABELS_ALIAS for o in operator.outlets):
        operator.outlets = [*operator.outlets, AssetAlias(LABELS_ALIAS)]


def check_transform_outlets(operator: Any) -> None:
    """Refuse, before any AWS call, an outlet naming another transform than the rendered one."""
    for outlet in operator.outlets:
        other = transform_of(outlet)
        if other is not None and other != operator.transform_id:
            raise GlueMLInputError(
                "outlets",
                outlet.uri,
                f"the asset of another transform than transform_id={operator.transform_id!r}: an "
                "operator records events only for the transform it teaches",
                explain_empty=False,
            )


def record_event(operator: Any, context: Context, extra: dict[str, Any]) -> None:
    """Put ``extra`` on the asset event of the operator's transform (recorded when the task succeeds).

    :param operator: the operator whose outlets hold the transform's asset.
    :param context: the task's context (``outlet_events``).
    :param extra: JSON-serializable facts about the run (:func:`event_extra`).
    """
    events: Any = context.get("outlet_events")
    for outlet in operator.outlets if events is not None else ():
        if transform_of(outlet) == operator.transform_id:
            events[outlet].extra = extra
        elif _alias_name(outlet) == TRANSFORMS_ALIAS:
            events[outlet].add(transform_asset(operator.transform_id), extra=extra)


def record_labels_event(operator: Any, context: Context, extra: dict[str, Any]) -> None:
    """Record the labels file as an asset (its ``s3://`` URI) through the alias ``glue-ml-labels``.

    :param operator: the labeling task, with the file's rendered ``labels_s3_path``.
    :param extra: what the event says of the file (the transform, who took it and when).
    """
    events: Any = context.get("outlet_events")
    for outlet in operator.outlets if events is not None else ():
        if _alias_name(outlet) == LABELS_ALIAS:
            events[outlet].add(Asset(operator.labels_s3_path), extra=extra)


def event_extra(
    transform_id: str, task_run_id: str | None, task_run_type: str, **facts: Any
) -> dict[str, Any]:
    """An event's extra: the transform, the run, its type and what the run found.

    :param facts: e.g. ``metrics``, ``label_count``, ``decision``, ``reason`` and ``passed`` for
        an evaluation; ``input_s3_path`` and ``replace_all_labels`` for an import.
    """
    return {"transform_id": transform_id, "task_run_id": task_run_id, "task_run_type": task_run_type, **facts}
