"""The labeling page's JSON: what its routes take (:class:`Draft`, :class:`Claim`,
:class:`Decision`) and what they return (:class:`ListedTask`, :class:`TaskView`,
:class:`SavedDraft`, :class:`Submitted`).

Each route of :mod:`~.app` returns one of these, so the app's OpenAPI schema says what it returns.
The service (:mod:`~.service`) gives plain dicts; a key it leaves out (a draft saved before drafts
had versions, a task without a quality history) is left out of the answer too (the routes answer
with ``response_model_exclude_unset``), and a field's default says what its absence means.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr


class Draft(BaseModel):
    """One set's draft as the page sends it: a group number per record, whether it is done, the
    version of the draft it was made from (0: none yet), and which copy of an overlapped set it is
    (1 or 2; 1 for any other set)."""

    set_id: StrictStr
    groups: list[StrictInt]
    done: StrictBool
    version: StrictInt = 0
    copy_number: StrictInt = 1


class Claim(BaseModel):
    """The set a person takes to label; of an overlapped set, the copy (none: theirs, or a free one)."""

    set_id: StrictStr
    copy_number: StrictInt | None = None


class Decision(BaseModel):
    """An adjudicator's grouping of an overlapped set whose copies are both done, made from the
    version of the decision it was made from (0: none yet)."""

    set_id: StrictStr
    groups: list[StrictInt]
    version: StrictInt = 0


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
    """A set's draft (or decision) as it is kept: its groups, whether it is done, who saved it and
    when, its version, who holds the set's claim since when, which copy it is and who worked on it.
    A copy of an overlapped set is ``hidden`` (no groups) from others until both copies are done."""

    set_id: str
    groups: list[int] | None
    done: bool
    by: str
    at: str
    version: int = 1  # a draft saved before drafts had versions
    claimed_by: str | None = None
    claimed_at: str | None = None
    copy_number: int = 1
    people: list[str] | None = None
    hidden: bool = False


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


class SetAgreementView(BaseModel):
    """The agreement of an overlapped set's two copies, once both are done: who labeled them,
    pairwise F1 and Cohen's kappa over the set's record pairs, the records (positions) in a pair
    they disagree on, and whether an adjudicator settled it."""

    set_id: str
    people: list[str]
    f1: float
    kappa: float
    disagreements: list[int]
    settled: bool


class Labeler(BaseModel):
    """One labeler's agreement with the others, pooled over the overlapped sets they labeled."""

    kappa: float
    f1: float
    sets: int
    pairs: int
    error: float | None = None  # the estimated share of records they misgroup; None: cannot tell


class Agreement(BaseModel):
    """The team's agreement (:meth:`~airflow_provider_glue_labeling.labels.agreement.Team.summary`)
    and each compared set's."""

    overlapped_sets: int
    compared_sets: int
    pairs: int
    kappa: float | None
    f1: float | None
    settled_sets: list[str]
    labelers: dict[str, Labeler]
    sets: list[SetAgreementView]


class TaskView(TaskSummary):
    """A labeling task as its page shows it (:meth:`~.service.LabelingTask.view`), and who asks."""

    columns: list[str]
    sets: list[SetRecords]
    drafts: dict[str, SavedDraft]  # each set's first copy
    second_drafts: dict[str, SavedDraft]  # an overlapped set's second copy
    decisions: dict[str, SavedDraft]  # an adjudicator's decision on an overlapped set
    claims: dict[str, Holder]
    second_claims: dict[str, Holder]
    claim_seconds: int
    overlap: float  # the share of sets labeled twice, blind
    overlapped: list[str]  # the sets labeled twice
    min_agreement: float | None  # below it (kappa), an unsettled set's copies are refused at submit
    agreement: Agreement
    submitted: bool  # the labels file is written: the task is read-only
    quality: Quality
    you: str


class Submitted(BaseModel):
    """Where the labels file was written, how many records it labels, and by whom."""

    labels_s3_path: str
    rows: int
    by: str
