"""The labeling page's work, apart from HTTP: the labeling tasks that wait, their sets, drafts and labels.

The page finds a waiting :class:`~airflow_provider_glue_labeling.labeling.GlueMLLabelingOperator`
by its rendered template fields (:data:`RENDERED_FIELDS`: transform, labeling set, labels path,
quality history, and the four AWS connection fields), which Airflow's task runner stores and users
cannot edit, so the connection (with its ``botocore_config``) and the S3 paths the page uses are
the task's own (:class:`~airflow_provider_glue_labeling.hooks.AwsConnection`).

Drafts are S3 objects beside the labels file, one per set (two people on two sets never
overwrite each other), named with a leading ``_`` (``_labels.csv.draft.<set>.json``), which
Glue's and Spark's file listings skip, as the import does. With an ``overlap``, some sets get a
second copy (``_labels.csv.draft2.<set>.json``) labeled blind by someone else, and an
adjudicator's decision (``_labels.csv.settled.<set>.json``) settles where the copies disagree
(:class:`~airflow_provider_glue_labeling.labels.agreement.Team`). Each carries a version: a save names
the version it was made from and is refused when a newer one is kept (written with S3's
``IfMatch``/``IfNoneMatch``, so two saves at once cannot both win). The labels file is written
only if absent (``IfNoneMatch="*"``): of submits at once, one wins. Once it exists the task is
read-only for everyone.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from airflow_provider_glue_labeling.exceptions import NOTHING, GlueMLError, GlueMLInputError
from airflow_provider_glue_labeling.hooks import CONNECTION_FIELDS, AwsConnection, GlueMLHook
from airflow_provider_glue_labeling.labels.agreement import COPIES, AgreementError, check_taker, second_copies
from airflow_provider_glue_labeling.labels.files import (
    KEPT,
    S3Files,
    WriteConflict,
    beside,
    kept_key,
    labels_file_problem,
)
from airflow_provider_glue_labeling.labels.format import AlreadySubmitted, LabelingError, LabelingSet
from airflow_provider_glue_labeling.labels.team import Team, people_of
from airflow_provider_glue_labeling.quality.chart import chart_svg
from airflow_provider_glue_labeling.quality.intervals import intervals
from airflow_provider_glue_labeling.quality.metrics import find_matches_metrics, numbers
from airflow_provider_glue_labeling.quality.rounds import read_rounds
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
# A claim on a set (someone is labeling it) lapses when its holder has not saved it for this long.
CLAIM_SECONDS = 30 * 60
# A labeling task waits in one of these states: for an answer (Airflow 3.3+), deferred, rescheduled
# between looks, or in a worker.
WAITING_STATES = ("awaiting_input", "deferred", "up_for_reschedule", "running")
log = logging.getLogger(__name__)


class NotWaiting(LabelingError):
    """The labeling task no longer waits for labels: nothing more is written for it."""


class ClaimedByOther(LabelingError):
    """Someone else holds a live claim on the set: they are labeling it."""


class StaleDraft(LabelingError):
    """A draft saved from an older version than the one kept: the newer one is not overwritten.

    :param draft: the draft kept now (who saved it, when, its version).
    """

    def __init__(self, message: str, draft: dict[str, Any]) -> None:
        super().__init__(message)
        self.draft = draft


# What the service refuses with: a labeling error, or S3 (botocore) and Glue refusing a call.
REFUSALS: tuple[type[Exception], ...] = (LabelingError, BotoCoreError, ClientError, GlueMLError)

# A boto3 client costs about 0.3 s to make (it loads its service model): the page's requests share
# one per connection (its four fields) for a while, then take a new one (the connection may change).
CLIENT_SECONDS = 300.0
_clients: dict[tuple[Any, ...], tuple[float, Any]] = {}
# Drafts read at once when a task opens (S3 serves parallel GETs; a set's draft is about 1 KiB).
DRAFT_READERS = 16
# The drafts this process read or wrote: (bucket, key) -> (ETag, draft). A listing's ETags tell
# which are still current; only the others are read again.
_drafts: dict[tuple[str, str], tuple[str, Any]] = {}


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

    def kept(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Each set's kept drafts, by kind (:data:`~.files.KEPT`: ``"first"``, ``"second"``,
        ``"settled"``): set id to ``{"groups", "done", "by", "at", "version", "people", ...}``.

        One listing gives every kept object's ETag; only those this process has not read (or
        written) at that ETag are read, a few at a time: 300 drafts open in one call, not 300.
        """
        prefixes = {kind: beside(self.key, suffix) for kind, suffix in KEPT.items()}
        listed = {
            key: etag
            for key, etag in self.s3.versions(self.bucket, beside(self.key, ".")).items()
            if key.startswith(tuple(prefixes.values()))
        }
        unread = [key for key, etag in listed.items() if _drafts.get((self.bucket, key), ("",))[0] != etag]
        with ThreadPoolExecutor(max_workers=min(DRAFT_READERS, len(unread) or 1)) as pool:
            for key, kept in zip(
                unread, pool.map(lambda k: self.s3.read_version(self.bucket, k), unread), strict=True
            ):
                if kept is not None:
                    self._remember(key, kept[1], kept[0])
        found: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KEPT}
        for key in listed:
            draft = _drafts.get((self.bucket, key), ("", None))[1]
            kind = next(k for k, prefix in prefixes.items() if key.startswith(prefix))
            if isinstance(draft, dict) and "set_id" in draft:
                found[kind][str(draft["set_id"])] = draft
            else:
                log.warning("Skipping s3://%s/%s: not a draft of this page", self.bucket, key)
        return found

    def drafts(self) -> dict[str, dict[str, Any]]:
        """Each set's (first copy's) draft: ``{"groups", "done", "by", "at", "version", ...}``."""
        return self.kept()["first"]

    def team(self, labeling: LabelingSet, kept: dict[str, dict[str, dict[str, Any]]]) -> Team:
        """The team's copies and decisions on ``labeling`` at the task's ``overlap``."""
        try:
            return Team.of(labeling, self.overlap, kept["first"], kept["second"], kept["settled"])
        except AgreementError as error:  # the task's overlap (a rendered value) is not a share
            raise LabelingError(f"the labeling task's {error}") from None

    def _remember(self, key: str, etag: str, data: bytes) -> None:
        try:
            draft = json.loads(data)
        except ValueError:
            draft = None
        _drafts[(self.bucket, key)] = (etag, draft)

    def view(self, user: str) -> dict[str, Any]:
        """The task as its page shows ``user``: columns, sets and records, drafts, quality, whether
        the labels were submitted (then the page is read-only), and with an overlap the second
        copies, the decisions and the agreement of the sets whose copies are both done.

        The copies of an overlapped set are blind: until both are done, a copy's groups are shown
        only to the people who worked on it (``hidden`` for everyone else).
        """
        labeling = self.labeling_set()
        kept = self.kept()
        team = self.team(labeling, kept)

        def shown(kind: str) -> dict[str, dict[str, Any]]:
            return {
                set_id: {**draft, "groups": None, "hidden": True}
                if set_id in team.overlapped and not team.both_done(set_id) and user not in people_of(draft)
                else draft
                for set_id, draft in kept[kind].items()
                if kind == "first" or set_id in team.overlapped
            }

        found = team.agreements()
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
            "agreement": {
                **team.summary(),
                "sets": [
                    {
                        "set_id": a.set_id,
                        "people": list(a.people),
                        "f1": round(a.f1, 4),
                        "kappa": round(a.kappa, 4),
                        "disagreements": list(a.disagreements),
                        "settled": a.set_id in kept["settled"],
                    }
                    for a in found
                ],
            },
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

    def _read_kept(self, kind: str, set_id: str) -> tuple[bytes, str] | None:
        return self.s3.read_version(self.bucket, kept_key(self.key, kind, set_id))

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
        overlapped = set(second_copies(list(labeling.sets), self.overlap))
        if set_id not in overlapped:
            if copy != 1:
                raise AgreementError(
                    f"labeling set {set_id} is labeled once (overlap {self.overlap:g} does not give it a "
                    "second copy): expected copy 1"
                )
            return "first"
        kind, other = ("first", "second") if copy == 1 else ("second", "first")
        found = self._read_kept(other, set_id)
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
        found = self._read_kept(kind, set_id)
        self._must_hold(labeling, set_id, copy, json.loads(found[0]) if found else {}, user)
        draft = self._write_draft(kind, set_id, version, user, groups=checked, done=done, found=found)
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
                return self._claim(labeling, set_id, user, self._free_copy(labeling, set_id, user))
            except (StaleDraft, ClaimedByOther):
                return self._claim(labeling, set_id, user, self._free_copy(labeling, set_id, user))
        return self._claim(labeling, set_id, user, copy)

    def _claim(self, labeling: LabelingSet, set_id: str, user: str, copy: int) -> dict[str, Any]:
        kind = self._kind_of_copy(labeling, set_id, copy, user)
        found = self._read_kept(kind, set_id)
        kept = json.loads(found[0]) if found else {}
        holder = live_claims({set_id: kept}).get(set_id) if kept else None
        if holder and holder["by"] != user:
            raise ClaimedByOther(f"labeling set {set_id} is claimed by {holder['by']} since {holder['at']}")
        self._must_hold(labeling, set_id, copy, kept, user)
        draft = self._write_draft(
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

    def _must_hold(
        self, labeling: LabelingSet, set_id: str, copy: int, kept: dict[str, Any], user: str
    ) -> None:
        """A copy of an overlapped set is blind: only the people who work on it may write it (or
        anyone, once its holder let its claim lapse without finishing it).

        :raises ClaimedByOther: the copy is done, or claimed, by someone else.
        """
        if set_id not in second_copies(list(labeling.sets), self.overlap) or not kept:
            return
        if user not in people_of(kept) and (kept.get("done") or live_claims({set_id: kept})):
            raise ClaimedByOther(
                f"copy {copy} of labeling set {set_id} is {kept.get('by')}'s (its copies are labeled "
                "blind): take the other copy, or another set"
            )

    def _free_copy(self, labeling: LabelingSet, set_id: str, user: str) -> int:
        """The copy of ``set_id`` a claim takes: 1 unless the set is overlapped; of an overlapped
        set the copy ``user`` worked on, else the first one nobody holds (done, or a live claim).

        :raises ClaimedByOther: both copies are held by others.
        """
        if set_id not in second_copies(list(labeling.sets), self.overlap):
            return 1
        drafts = []
        for kind in ("first", "second"):
            found = self._read_kept(kind, set_id)
            drafts.append(json.loads(found[0]) if found else {})
        for copy, draft in enumerate(drafts, 1):
            if user in people_of(draft):
                return copy
        held = [d for d in drafts if d and (d.get("done") or live_claims({set_id: d}))]
        if len(held) >= COPIES:
            raise ClaimedByOther(
                f"both copies of labeling set {set_id} are taken ({', '.join(str(d.get('by')) for d in held)})"
            )
        return next(copy for copy, d in enumerate(drafts, 1) if not any(d is h for h in held))

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
        team = self.team(labeling, self.kept())
        if set_id not in team.overlapped:
            raise AgreementError(f"labeling set {set_id} is labeled once: it has no copies to settle")
        if not team.both_done(set_id):
            done = team.copies().get(set_id, [])
            raise AgreementError(
                f"labeling set {set_id} has {len(done)} of its {COPIES} copies done: expected both copies "
                "done before it is settled"
            )
        found = self._read_kept("settled", set_id)
        draft = self._write_draft("settled", set_id, version, user, groups=checked, done=True, found=found)
        log.info(
            "User %s settled labeling set %s (version %d) for %s",
            user,
            set_id,
            draft["version"],
            self.labels_s3_path,
        )
        return draft

    def _write_draft(
        self,
        kind: str,
        set_id: str,
        version: int,
        user: str,
        groups: list[int],
        done: bool,
        found: tuple[bytes, str] | None,
    ) -> dict[str, Any]:
        """Write a set's kept ``kind`` over the version ``version`` (0: none), as ``user``'s, who
        then holds its claim; refuse when a newer version is kept.

        :param kind: ``"first"``, ``"second"`` (copies) or ``"settled"`` (:data:`~.files.KEPT`).
        :param found: the kept draft and its ETag as the caller read them (None: none kept).
        """
        key = kept_key(self.key, kind, set_id)
        kept = json.loads(found[0]) if found else None
        kept_version = int(kept.get("version", 1)) if kept else 0
        if kept is not None and kept_version != version:
            raise self._stale(set_id, kept)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        people = people_of(kept or {})
        draft = {
            "set_id": set_id,
            "groups": groups,
            "done": done,
            "by": user,
            "at": now,
            "version": kept_version + 1,
            "claimed_by": user,
            "claimed_at": now,
            "copy_number": 2 if kind == "second" else 1,
            "people": people if user in people else [*people, user],
        }
        data = json.dumps(draft).encode()
        try:
            etag = self.s3.write(self.bucket, key, data, if_absent=found is None, if_match=found and found[1])
            self._remember(key, etag, data)
        except WriteConflict:  # another save won between the read and the write
            newer = self.s3.read_version(self.bucket, key)
            raise self._stale(set_id, json.loads(newer[0]) if newer else {}) from None
        return draft

    def _stale(self, set_id: str, kept: dict[str, Any]) -> StaleDraft:
        return StaleDraft(
            f"labeling set {set_id} was saved by {kept.get('by')} at {kept.get('at')} (version "
            f"{kept.get('version', 1)}) after the version this page had; the newer draft is kept",
            kept,
        )

    def submit(self, user: str) -> LabelingSet:
        """Write the labels file from the drafts, after Glue's labels-file checks; log who did.

        The labels file is written only if absent, atomically: of submits at once one wins, and a
        labels file already there is never rewritten (the waiting task may be reading it).
        """
        self._must_be_open()
        files = self.s3.read_files(self.labeling_set_s3_path, "labeling_set_s3_path")
        labeling = LabelingSet.parse(files)
        team = self.team(labeling, self.kept())
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


def live_claims(drafts: dict[str, dict[str, Any]], now: datetime | None = None) -> dict[str, dict[str, str]]:
    """Who is on which set: ``{set_id: {"by", "at"}}`` for the sets claimed within
    :data:`CLAIM_SECONDS` and not done."""
    now = now or datetime.now(UTC)
    live = {}
    for set_id, draft in drafts.items():
        by, at = draft.get("claimed_by"), draft.get("claimed_at")
        if not by or not at or draft.get("done"):
            continue
        try:
            age = (now - datetime.fromisoformat(str(at))).total_seconds()
        except ValueError:
            continue
        if age < CLAIM_SECONDS:
            live[set_id] = {"by": str(by), "at": str(at)}
    return live
