"""The labeling page's JSON: what its routes take (:class:`Draft`, :class:`Claim`) and what they
return (:class:`ListedTask`, :class:`TaskView`, :class:`SavedDraft`, :class:`Submitted`).

Each route of :mod:`~.app` returns one of these, so the app's OpenAPI schema says what it returns.
The service (:mod:`~.service`) gives plain dicts; a key it leaves out (a draft saved before drafts
had versions, a task without a quality history) is left out of the answer too (the routes answer
with ``response_model_exclude_unset``), and a field's default says what its absence means.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr


class Draft(BaseModel):
    """One set's draft as the page sends it: a group number per record, whether it is done, and
    the version of the draft it was made from (0: none yet)."""

    set_id: StrictStr
    groups: list[StrictInt]
    done: StrictBool
    version: StrictInt = 0


class Claim(BaseModel):
    """The set a person takes to label."""

    set_id: StrictStr


class TaskSummary(BaseModel):
    """A labeling task's ids, state and S3 paths (:meth:`~.service.LabelingTask.summary`)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None
    waiting_since: str | None  # when its try started (ISO 8601)
    transform_id: str
    labeling_set_s3_path: str
    labels_s3_path: str


class ListedTask(TaskSummary):
    """A waiting labeling task as the list shows it: how many sets and records it has, and who may
    label it (none named: whoever may edit the DAG's task instances)."""

    sets: int | None
    records: int | None
    problem: str | None = None  # why its labeling set could not be read (then no counts)
    assigned_users: list[str]


class SavedDraft(BaseModel):
    """A set's draft as it is kept: its groups, whether it is done, who saved it and when, its
    version, and who holds the set's claim since when."""

    set_id: str
    groups: list[int]
    done: bool
    by: str
    at: str
    version: int = 1  # a draft saved before drafts had versions
    claimed_by: str | None = None
    claimed_at: str | None = None


class Holder(BaseModel):
    """Who is labeling a set, since when (a live claim)."""

    by: str
    at: str


class SetRecords(BaseModel):
    """One labeling set: its id and its records (values in the order of the task's columns)."""

    set_id: str
    records: list[list[str]]


class Quality(BaseModel):
    """The transform now (``GetMLTransform``): its label count, status, last metrics and their 95 %
    intervals; with a quality history, its rounds and their chart (an SVG drawn by the server)."""

    # What the service reads of the transform may grow: a key this model does not name passes on.
    model_config = ConfigDict(extra="allow")

    LabelCount: int | None
    status: str | None
    metrics: dict[str, float | None]
    intervals: dict[str, list[float]] | None
    rounds: list[dict[str, Any]] | None = None
    chart_svg: str | None = None


class TaskView(TaskSummary):
    """A labeling task as its page shows it (:meth:`~.service.LabelingTask.view`), and who asks."""

    columns: list[str]
    sets: list[SetRecords]
    drafts: dict[str, SavedDraft]
    claims: dict[str, Holder]
    claim_seconds: int
    submitted: bool  # the labels file is written: the task is read-only
    quality: Quality
    you: str


class Submitted(BaseModel):
    """Where the labels file was written, how many records it labels, and by whom."""

    labels_s3_path: str
    rows: int
    by: str
