"""The drafts a labeling task's page keeps beside its labels file: reading them, writing one
over the version it was made from, and who holds a claim on a set.

Drafts are S3 objects beside the labels file, one per set (two people on two sets never
overwrite each other), named with a leading ``_`` (``_labels.csv.draft.<set>.json``), which
Glue's and Spark's file listings skip, as the import does. With an ``overlap``, some sets get a
second copy (``_labels.csv.draft2.<set>.json``) labeled blind by someone else, and an
adjudicator's decision (``_labels.csv.settled.<set>.json``) settles where the copies disagree
(:class:`~airflow_provider_glue_labeling.labels.team.Team`). Each carries a version: a save names
the version it was made from and is refused when a newer one is kept (written with S3's
``IfMatch``/``IfNoneMatch``, so two saves at once cannot both win). A draft also says who
claimed its set and when: others see who is on it until the claim lapses
(:data:`CLAIM_SECONDS`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from airflow_provider_glue_labeling.labels.agreement import COPIES
from airflow_provider_glue_labeling.labels.files import KEPT, S3Files, WriteConflict, beside, kept_key
from airflow_provider_glue_labeling.labels.format import LabelingError
from airflow_provider_glue_labeling.labels.team import people_of

# A claim on a set (someone is labeling it) lapses when its holder has not saved it for this long.
CLAIM_SECONDS = 30 * 60
# Drafts read at once when a task opens (S3 serves parallel GETs; a set's draft is about 1 KiB).
DRAFT_READERS = 16
# The drafts this process read or wrote: (bucket, key) -> (ETag, draft). A listing's ETags tell
# which are still current; only the others are read again.
_drafts: dict[tuple[str, str], tuple[str, Any]] = {}
log = logging.getLogger(__name__)


class ClaimedByOther(LabelingError):
    """Someone else holds a live claim on the set: they are labeling it."""


class StaleDraft(LabelingError):
    """A draft saved from an older version than the one kept: the newer one is not overwritten.

    :param draft: the draft kept now (who saved it, when, its version).
    """

    def __init__(self, message: str, draft: dict[str, Any]) -> None:
        super().__init__(message)
        self.draft = draft


class KeptDrafts:
    """The drafts kept beside one labels file (:data:`~.files.KEPT`: each set's first copy,
    second copy and decision).

    :param s3: the labeling task's S3 files.
    :param bucket: the labels file's bucket.
    :param key: the labels file's key.
    """

    def __init__(self, s3: S3Files, bucket: str, key: str) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key

    def all(self) -> dict[str, dict[str, dict[str, Any]]]:
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

    def read(self, kind: str, set_id: str) -> tuple[bytes, str] | None:
        """The kept ``kind`` of ``set_id`` and its ETag, or None."""
        return self.s3.read_version(self.bucket, kept_key(self.key, kind, set_id))

    def write(
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

    def must_hold(
        self, set_id: str, copy: int, kept: dict[str, Any], user: str, overlapped: Collection[str]
    ) -> None:
        """A copy of an overlapped set is blind: only the people who work on it may write it (or
        anyone, once its holder let its claim lapse without finishing it).

        :param overlapped: the sets that get a second copy.
        :raises ClaimedByOther: the copy is done, or claimed, by someone else.
        """
        if set_id not in overlapped or not kept:
            return
        if user not in people_of(kept) and (kept.get("done") or live_claims({set_id: kept})):
            raise ClaimedByOther(
                f"copy {copy} of labeling set {set_id} is {kept.get('by')}'s (its copies are labeled "
                "blind): take the other copy, or another set"
            )

    def free_copy(self, set_id: str, user: str, overlapped: Collection[str]) -> int:
        """The copy of ``set_id`` a claim takes: 1 unless the set is overlapped; of an overlapped
        set the copy ``user`` worked on, else the first one nobody holds (done, or a live claim).

        :param overlapped: the sets that get a second copy.
        :raises ClaimedByOther: both copies are held by others.
        """
        if set_id not in overlapped:
            return 1
        drafts = []
        for kind in ("first", "second"):
            found = self.read(kind, set_id)
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

    def _remember(self, key: str, etag: str, data: bytes) -> None:
        try:
            draft = json.loads(data)
        except ValueError:
            draft = None
        _drafts[(self.bucket, key)] = (etag, draft)


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
