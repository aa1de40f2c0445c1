"""The labeling page's work, apart from HTTP: the labeling tasks that wait, their sets, drafts and labels.

The page finds a waiting :class:`~airflow_provider_glue_labeling.labeling.GlueMLLabelingOperator`
by its rendered template fields (:data:`RENDERED_FIELDS`: transform, labeling set, labels path,
quality history, and the four AWS connection fields), which Airflow's task runner stores and users
cannot edit, so the connection (with its ``botocore_config``) and the S3 paths the page uses are
the task's own (:class:`~airflow_provider_glue_labeling.hooks.AwsConnection`). The drafts, kept
beside the labels file, are :mod:`~airflow_provider_glue_labeling.ui.drafts`'. The labels file is
written only if absent (``IfNoneMatch="*"``): of submits at once, one wins. Once it exists the
task is read-only for everyone.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from airflow_provider_glue_labeling.exceptions import NOTHING, GlueMLError, GlueMLInputError
from airflow_provider_glue_labeling.hooks import CONNECTION_FIELDS, AwsConnection, GlueMLHook
from airflow_provider_glue_labeling.labels.agreement import COPIES, AgreementError, check_taker, second_copies
from airflow_provider_glue_labeling.labels.files import (
    S3Files,
    WriteConflict,
    labels_file_problem,
)
from airflow_provider_glue_labeling.labels.format import AlreadySubmitted, LabelingError, LabelingSet
from airflow_provider_glue_labeling.labels.team import Team, people_of
from airflow_provider_glue_labeling.quality.chart import chart_svg
from airflow_provider_glue_labeling.quality.intervals import intervals
from airflow_provider_glue_labeling.quality.metrics import find_matches_metrics, numbers
from airflow_provider_glue_labeling.quality.rounds import read_rounds
from airflow_provider_glue_labeling.ui.drafts import (
    CLAIM_SECONDS,
    ClaimedByOther,
    KeptDrafts,
    StaleDraft,
    live_claims,
)
from airflow_provider_glue_labeling.validation import check_fraction, check_s3_uri

# What the page reads of a labeling task's rendered template fields; the first three make one.
RENDERED_FIELDS = (
    "transform_id",
    "labeling_set_s3_path",
    "labels_s3_path",
    "history_s3_path",
    "overlap",
    "min_agreement",
    *CONNECTION_FIELDS,
)
# The page's writes carry this header: a form on another site cannot send it, and a script there
# cannot either without a CORS preflight, which the page's app never answers (request forgery).
WRITE_HEADER = "X-Glue-Labeling"
# A labeling task waits in one of these states: for an answer (Airflow 3.3+), deferred, rescheduled
# between looks, or in a worker.
WAITING_STATES = ("awaiting_input", "deferred", "up_for_reschedule", "running")
log = logging.getLogger(__name__)


class NotWaiting(LabelingError):
    """The labeling task no longer waits for labels: nothing more is written for it."""


# What the service refuses with: a labeling error, or S3 (botocore) and Glue refusing a call.
REFUSALS: tuple[type[Exception], ...] = (LabelingError, BotoCoreError, ClientError, GlueMLError)

# A boto3 client costs about 0.3 s to make (it loads its service model): the page's requests share
# one per connection (its four fields) for a while, then take a new one (the connection may change).
CLIENT_SECONDS = 300.0
_clients: dict[tuple[Any, ...], tuple[float, Any]] = {}


def _client(kind: str, connection: AwsConnection) -> Any:
    """The shared ``connection.s3()`` or ``connection.glue()`` (``kind``), made anew when it is old."""
    key = (kind, *connection.key())
    made, made_client = _clients.get(key, (0.0, None))
    if made_client is None or time.monotonic() - made > CLIENT_SECONDS:
        made_client = getattr(connection, kind)()
        _clients[key] = (time.monotonic(), made_client)
    return made_client


class LabelingTask:
    """A labeling task's S3 side: its labeling set, drafts, labels file and transform.

    :param ti: the task instance.
    :param fields: its rendered template fields (:data:`RENDERED_FIELDS`).
    """

    def __init__(self, ti: Any, fields: dict[str, Any]) -> None:
        self.ti = ti
        # Rendered fields keep a None as the text "None".
        self.fields = {n: None if fields.get(n) in NOTHING else fields.get(n) for n in RENDERED_FIELDS}
        self.transform_id = str(self.fields["transform_id"])
        self.labeling_set_s3_path = str(self.fields["labeling_set_s3_path"])
        self.labels_s3_path = str(self.fields["labels_s3_path"])
        self.history_s3_path = self.fields["history_s3_path"]
        self.bucket, self.key = check_s3_uri("labels_s3_path", self.labels_s3_path)
        self.connection = AwsConnection.rendered(fields)

    @property
    def overlap(self) -> float:
        """The share of sets labeled twice (the task's ``overlap``; 0 for a task without one)."""
        return self._rendered_share("overlap", 0.0) or 0.0

    @property
    def min_agreement(self) -> float | None:
        """The least kappa the submit takes of an overlapped set's copies (None: no gate)."""
        return self._rendered_share("min_agreement", -1.0)

    def _rendered_share(self, name: str, low: float) -> float | None:
        try:
            return check_fraction(name, self.fields[name], low)
        except GlueMLInputError as error:
            raise LabelingError(str(error)) from None

    @property
    def s3(self) -> S3Files:
        return _client("s3", self.connection)

    @property
    def glue(self) -> GlueMLHook:
        return _client("glue", self.connection)

    def summary(self) -> dict[str, Any]:
        """The task as the list shows it."""
        ti = self.ti
        return {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": ti.map_index,
            "state": ti.state,
            "waiting_since": ti.start_date.isoformat() if ti.start_date else None,
            "transform_id": self.transform_id,
            "labeling_set_s3_path": self.labeling_set_s3_path,
            "labels_s3_path": self.labels_s3_path,
        }

    def _must_wait(self) -> None:
        if self.ti.state not in WAITING_STATES:
            raise NotWaiting(f"the labeling task is {self.ti.state}, not waiting for labels")

    def labeling_set(self) -> LabelingSet:
        return LabelingSet.parse(self.s3.read_files(self.labeling_set_s3_path, "labeling_set_s3_path"))

    @property
    def store(self) -> KeptDrafts:
        """The drafts kept beside the labels file."""
        return KeptDrafts(self.s3, self.bucket, self.key)

    def team(self, labeling: LabelingSet, kept: dict[str, dict[str, dict[str, Any]]]) -> Team:
        """The team's copies and decisions on ``labeling`` at the task's ``overlap``."""
        try:
            return Team.of(labeling, self.overlap, kept["first"], kept["second"], kept["settled"])
        except AgreementError as error:  # the task's overlap (a rendered value) is not a share
            raise LabelingError(f"the labeling task's {error}") from None

    def view(self, user: str) -> dict[str, Any]:
        """The task as its page shows ``user``: columns, sets and records, drafts, quality, whether
        the labels were submitted (then the page is read-only), and with an overlap the second
        copies, the decisions and the agreement of the sets whose copies are both done.

        The copies of an overlapped set are blind: until both are done, a copy's groups are shown
        only to the people who worked on it (``hidden`` for everyone else).
        """
        labeling = self.labeling_set()
        kept = self.store.all()
        team = self.team(labeling, kept)

        def shown(kind: str) -> dict[str, dict[str, Any]]:
            return {
                set_id: {**draft, "groups": None, "hidden": True}
                if set_id in team.overlapped and not team.both_done(set_id) and user not in people_of(draft)
                else draft
                for set_id, draft in kept[kind].items()
                if kind == "first" or set_id in team.overlapped
            }

        return {
            **self.summary(),
            "columns": labeling.columns,
            "sets": [{"set_id": set_id, "records": rows} for set_id, rows in labeling.sets.items()],
            "drafts": shown("first"),
            "second_drafts": shown("second"),
            "decisions": {s: d for s, d in kept["settled"].items() if s in team.overlapped},
            "claims": live_claims(kept["first"]),
            "second_claims": live_claims(shown("second")),
            "claim_seconds": CLAIM_SECONDS,
            "overlap": self.overlap,
            "overlapped": [s for s in labeling.sets if s in team.overlapped],
            "min_agreement": self.min_agreement,
            "agreement": {**team.summary(), "sets": team.compared_sets()},
            "submitted": self.s3.exists(self.bucket, self.key),
            "quality": self.quality(),
        }

    def _must_be_open(self) -> None:
        """Refuse a write once the labels are submitted (the server's state: the labels file)."""
        if self.s3.exists(self.bucket, self.key):
            raise AlreadySubmitted(
                f"labels were submitted to {self.labels_s3_path}; the labeling task is read-only"
            )
        self._must_wait()

    def _overlapped(self, labeling: LabelingSet) -> set[str]:
        """The sets of ``labeling`` that get a second copy at the task's ``overlap``."""
        return set(second_copies(list(labeling.sets), self.overlap))

    def _kind_of_copy(self, labeling: LabelingSet, set_id: str, copy: int, user: str) -> str:
        """Which kept draft copy ``copy`` (1 or 2) of ``set_id`` is, if ``user`` may work on it:
        never on both copies of an overlapped set.

        :raises AgreementError: a copy other than 1 or 2, a second copy of a set labeled once, or
            a person who worked on the other copy.
        """
        if set_id not in labeling.sets:
            raise LabelingError(f"no labeling set '{set_id}' in {self.labeling_set_s3_path}")
        if copy not in range(1, COPIES + 1):
            raise AgreementError(f"copy {copy!r} of labeling set {set_id}: expected 1 or 2")
        if set_id not in self._overlapped(labeling):
            if copy != 1:
                raise AgreementError(
                    f"labeling set {set_id} is labeled once (overlap {self.overlap:g} does not give it a "
                    "second copy): expected copy 1"
                )
            return "first"
        kind, other = ("first", "second") if copy == 1 else ("second", "first")
        found = self.store.read(other, set_id)
        others = people_of(json.loads(found[0])) if found else []
        if user in others:
            check_taker(set_id, user, others)
        return kind

    def save_draft(
        self, set_id: str, groups: list[int], done: bool, user: str, version: int = 0, copy: int = 1
    ) -> dict[str, Any]:
        """Keep one set's draft (checked against its set first); log who saved it. The saver
        holds the set's claim (until it is done, or lapses).

        :param version: the version of the draft the save was made from (0: none yet).
        :param copy: which copy of an overlapped set (1 or 2); 1 for any other set.
        :raises StaleDraft: a newer version is kept (it is not overwritten).
        """
        self._must_be_open()
        labeling = self.labeling_set()
        checked = labeling.check_draft(set_id, groups, done)
        kind = self._kind_of_copy(labeling, set_id, copy, user)
        found = self.store.read(kind, set_id)
        self.store.must_hold(
            set_id, copy, json.loads(found[0]) if found else {}, user, self._overlapped(labeling)
        )
        draft = self.store.write(kind, set_id, version, user, groups=checked, done=done, found=found)
        state = "done" if done else "in progress"
        log.info(
            "User %s saved the draft of labeling set %s%s (%s, version %d) for %s",
            user,
            set_id,
            f" (copy {copy})" if kind == "second" else "",
            state,
            draft["version"],
            self.labels_s3_path,
        )
        return draft

    def claim(self, set_id: str, user: str, copy: int | None = None) -> dict[str, Any]:
        """Take a set to label: others see who is on it, and since when, until it lapses. Of an
        overlapped set, the copy ``user`` worked on, else a free one (``copy``: that one).

        :raises ClaimedByOther: someone else holds a live claim on it, or both its copies.
        """
        self._must_be_open()
        labeling = self.labeling_set()
        if set_id not in labeling.sets:
            raise LabelingError(f"no labeling set '{set_id}' in {self.labeling_set_s3_path}")
        if copy is None:  # the server picks: of two people taking the same copy at once, one gets
            try:  # it, the other the next free one
                return self._claim(
                    labeling, set_id, user, self.store.free_copy(set_id, user, self._overlapped(labeling))
                )
            except (StaleDraft, ClaimedByOther):
                return self._claim(
                    labeling, set_id, user, self.store.free_copy(set_id, user, self._overlapped(labeling))
                )
        return self._claim(labeling, set_id, user, copy)

    def _claim(self, labeling: LabelingSet, set_id: str, user: str, copy: int) -> dict[str, Any]:
        kind = self._kind_of_copy(labeling, set_id, copy, user)
        found = self.store.read(kind, set_id)
        kept = json.loads(found[0]) if found else {}
        holder = live_claims({set_id: kept}).get(set_id) if kept else None
        if holder and holder["by"] != user:
            raise ClaimedByOther(f"labeling set {set_id} is claimed by {holder['by']} since {holder['at']}")
        self.store.must_hold(set_id, copy, kept, user, self._overlapped(labeling))
        draft = self.store.write(
            kind,
            set_id,
            int(kept.get("version", 1)) if kept else 0,
            user,
            groups=kept.get("groups") or list(range(len(labeling.sets[set_id]))),
            done=bool(kept.get("done")),
            found=found,
        )
        log.info(
            "User %s claimed labeling set %s%s for %s",
            user,
            set_id,
            " (copy 2)" if kind == "second" else "",
            self.labels_s3_path,
        )
        return draft

    def settle(self, set_id: str, groups: list[int], user: str, version: int = 0) -> dict[str, Any]:
        """Keep an adjudicator's decision on an overlapped set whose copies are both done: a
        grouping of the whole set, which the labels file takes instead of the copies. Anyone who
        may label the task may settle, either labeler or a third person.

        :param version: the version of the decision it was made from (0: none yet).
        :raises AgreementError: a set that is not overlapped, or whose copies are not both done.
        :raises StaleDraft: a newer decision is kept (it is not overwritten).
        """
        self._must_be_open()
        labeling = self.labeling_set()
        checked = labeling.check_draft(set_id, groups, True)
        team = self.team(labeling, self.store.all())
        if set_id not in team.overlapped:
            raise AgreementError(f"labeling set {set_id} is labeled once: it has no copies to settle")
        if not team.both_done(set_id):
            done = team.copies().get(set_id, [])
            raise AgreementError(
                f"labeling set {set_id} has {len(done)} of its {COPIES} copies done: expected both copies "
                "done before it is settled"
            )
        found = self.store.read("settled", set_id)
        draft = self.store.write("settled", set_id, version, user, groups=checked, done=True, found=found)
        log.info(
            "User %s settled labeling set %s (version %d) for %s",
            user,
            set_id,
            draft["version"],
            self.labels_s3_path,
        )
        return draft

    def submit(self, user: str) -> LabelingSet:
        """Write the labels file from the drafts, after Glue's labels-file checks; log who did.

        The labels file is written only if absent, atomically: of submits at once one wins, and a
        labels file already there is never rewritten (the waiting task may be reading it).
        """
        self._must_be_open()
        files = self.s3.read_files(self.labeling_set_s3_path, "labeling_set_s3_path")
        labeling = LabelingSet.parse(files)
        team = self.team(labeling, self.store.all())
        team.gate(self.min_agreement)
        data = team.labels_file()
        problem = labels_file_problem(data, labeling.columns, self.labels_s3_path, log, files)
        if problem:
            raise LabelingError(f"the labels file {problem}")
        try:
            self.s3.write(self.bucket, self.key, data, if_absent=True)
        except WriteConflict:
            raise AlreadySubmitted(
                f"labels were submitted to {self.labels_s3_path} by someone else just now; they are not rewritten"
            ) from None
        log.info(
            "User %s submitted the labels of %d set(s), %d record(s) to %s",
            user,
            len(labeling.sets),
            labeling.records(),
            self.labels_s3_path,
        )
        return labeling

    def quality(self) -> dict[str, Any]:
        """The transform's ``LabelCount``, last metrics (``GetMLTransform``) and their 95 %
        intervals, and with a quality history its rounds and their chart."""
        transform = self.glue.get_transform(self.transform_id)
        metrics = find_matches_metrics(transform)
        quality: dict[str, Any] = {
            "LabelCount": transform.get("LabelCount"),
            "status": transform.get("Status"),
            "metrics": numbers(metrics),
            "intervals": intervals(metrics),
        }
        if self.history_s3_path:
            rounds = read_rounds(self.s3, str(self.history_s3_path), self.transform_id)
            quality.update(rounds=rounds, chart_svg=chart_svg(rounds) if rounds else None)
        return quality
