"""Labels a team agrees on: second copies of some labeling sets, the agreement of the two copies,
a gate on agreement, and the settled labels file.

A labeling set's set (about 10 records) is labeled by grouping its records: records of one
entity share a group. A grouping says something about every pair of the set's records: the
same entity or not. Two people who label the same set blind can therefore be compared pair
by pair (pairwise agreement, as entity resolution scores a clustering against another):

* ``both``: pairs both copies call the same entity; ``first_only`` and ``second_only``: pairs
  one copy calls the same entity and the other does not; ``neither``: pairs neither does.
* pairwise precision of the second copy against the first ``both / (both + second_only)``,
  recall ``both / (both + first_only)``, F1 ``2 both / (2 both + first_only + second_only)``
  (symmetric in the two copies).
* Cohen's kappa over all pairs of the set (Cohen 1960, "A coefficient of agreement for nominal
  scales"): with ``N`` pairs, observed agreement ``po = (both + neither) / N`` and the agreement
  expected by chance from each copy's share of matching pairs
  ``pe = ((both + first_only)(both + second_only) + (neither + second_only)(neither + first_only)) / N**2``,
  ``kappa = (po - pe) / (1 - pe)``. Most pairs of a set are different entities, so ``po`` is
  high even for careless work; kappa discounts that.

Degenerate cases, defined here: when ``pe`` is 1 the two copies call every pair the same way
(all different entities in both, or all one entity in both), and kappa is 1 (complete
agreement, nothing left to chance); a set of fewer than 2 records has no pairs, and every
figure is 1. Precision is 1 when the second copy calls no pair a match, recall 1 when the first
calls none, F1 1 when neither copy calls any.

The records the copies disagree on are those in at least one pair they disagree on; the records
one copy must move to become the other are the transfer distance between the two groupings
(:mod:`~airflow_provider_glue_labeling.labels.groupings`). Each labeler's figures, pooled over
the sets they labeled, are :mod:`~airflow_provider_glue_labeling.labels.labelers`'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from airflow_provider_glue_labeling.labels.format import LabelingError, LabelingSet
from airflow_provider_glue_labeling.labels.groupings import matching_pairs, transfer_distance

COPIES = 2  # an overlapped set is labeled twice, by two different people


class AgreementError(LabelingError):
    """Overlap, copies or settling that cannot be taken as given; the message says what to change."""


class Copy(NamedTuple):
    """One person's grouping of one set.

    :param person: who labeled it.
    :param groups: a label or group number per record, in the set's order; records with the
        same value are the same entity.
    """

    person: str
    groups: Sequence[Hashable]


def second_copies(set_ids: Sequence[str], overlap: float) -> list[str]:
    """The sets that go to a second person: ``round(overlap * len(set_ids))`` of them, chosen by
    a hash of their ids (so the same labeling set always overlaps the same sets), in the given
    order. The hash is salted so that these are not the sets an evaluation holds out.

    :param set_ids: the labeling set's set ids.
    :param overlap: the share of sets labeled twice, from 0 (none) to 1 (all).
    :raises AgreementError: when ``overlap`` is not a number in [0, 1].
    """
    if isinstance(overlap, bool) or not isinstance(overlap, int | float) or not 0 <= overlap <= 1:
        raise AgreementError(
            f"overlap {overlap!r} is not a share of labeling sets: expected a number from 0 to 1 "
            "(e.g. 0.2 labels one set in five twice)"
        )
    unique = list(dict.fromkeys(set_ids))
    ranked = sorted(unique, key=lambda s: hashlib.sha256(f"second copy:{s}".encode()).hexdigest())
    chosen = set(ranked[: round(overlap * len(unique))])
    return [s for s in unique if s in chosen]


def check_taker(set_id: str, person: str, holders: Collection[str], copies: int = COPIES) -> None:
    """Whether ``person`` may take a copy of ``set_id``: never a second copy of a set they hold
    one of (the copies are blind and independent), never more copies than the set gets.

    :param set_id: the set.
    :param person: who asks for a copy.
    :param holders: who holds a copy of it already.
    :param copies: how many copies the set gets: 2 when overlapped, else 1.
    :raises AgreementError: naming the set and the person.
    """
    if person in holders:
        raise AgreementError(
            f"{person} already holds a copy of labeling set {set_id}: the second copy must go to "
            "someone else (the two copies are compared, so they must be independent)"
        )
    if len(holders) >= copies:
        raise AgreementError(
            f"labeling set {set_id} has its {copies} cop{'y' if copies == 1 else 'ies'} taken "
            f"({', '.join(sorted(holders))}): expected at most {copies}"
        )


def pair_kappa(both: int, first_only: int, second_only: int, neither: int) -> float:
    """Cohen's kappa of two groupings over pairs, from the counts of pairs (see the module).

    :param both: pairs both call the same entity.
    :param first_only: pairs only the first calls the same entity.
    :param second_only: pairs only the second calls the same entity.
    :param neither: pairs neither calls the same entity.
    """
    total = both + first_only + second_only + neither
    if total == 0:
        return 1.0
    observed = (both + neither) / total
    chance = (
        (both + first_only) * (both + second_only) + (neither + second_only) * (neither + first_only)
    ) / (total * total)
    if chance == 1:
        return 1.0
    return (observed - chance) / (1 - chance)


def pair_f1(both: int, first_only: int, second_only: int) -> float:
    """Pairwise F1 of two groupings, from the counts of pairs (see the module): 1 when neither
    calls any pair the same entity.

    :param both: pairs both call the same entity.
    :param first_only: pairs only the first calls the same entity.
    :param second_only: pairs only the second calls the same entity.
    """
    differ = first_only + second_only
    return 2 * both / (2 * both + differ) if both + differ else 1.0


@dataclass(frozen=True)
class SetAgreement:
    """The agreement of two copies of one set, counted over the set's record pairs.

    :param set_id: the set.
    :param people: who labeled the first and the second copy.
    :param both: pairs both copies call the same entity.
    :param first_only: pairs only the first copy calls the same entity.
    :param second_only: pairs only the second copy calls the same entity.
    :param neither: pairs neither copy calls the same entity.
    :param disagreements: positions of the records in a pair the copies disagree on.
    :param records: the set's records.
    :param moved: the fewest records one copy must move to become the other
        (:func:`transfer_distance`).
    """

    set_id: str
    people: tuple[str, str]
    both: int
    first_only: int
    second_only: int
    neither: int
    disagreements: tuple[int, ...]
    records: int
    moved: int

    @property
    def pairs(self) -> int:
        return self.both + self.first_only + self.second_only + self.neither

    @property
    def precision(self) -> float:
        called = self.both + self.second_only
        return self.both / called if called else 1.0

    @property
    def recall(self) -> float:
        called = self.both + self.first_only
        return self.both / called if called else 1.0

    @property
    def f1(self) -> float:
        return pair_f1(self.both, self.first_only, self.second_only)

    @property
    def kappa(self) -> float:
        return pair_kappa(self.both, self.first_only, self.second_only, self.neither)


def compare(set_id: str, first: Copy, second: Copy) -> SetAgreement:
    """The agreement of two copies of one set: pair counts, precision, recall, F1, kappa and the
    records they disagree on.

    :param set_id: the set.
    :param first: one person's copy.
    :param second: another person's copy of the same records.
    :raises AgreementError: when one person made both copies, or the copies differ in length.
    """
    if first.person == second.person:
        raise AgreementError(
            f"both copies of labeling set {set_id} are by {first.person}: agreement needs two "
            "different people"
        )
    if len(first.groups) != len(second.groups):
        raise AgreementError(
            f"the copies of labeling set {set_id} have {len(first.groups)} and {len(second.groups)} "
            "records: expected one group per record of the set in both"
        )
    ours, theirs = matching_pairs(first.groups), matching_pairs(second.groups)
    size = len(first.groups)
    total = size * (size - 1) // 2
    differ = ours ^ theirs
    both = len(ours & theirs)
    return SetAgreement(
        set_id=set_id,
        people=(first.person, second.person),
        both=both,
        first_only=len(ours - theirs),
        second_only=len(theirs - ours),
        neither=total - both - len(differ),
        disagreements=tuple(sorted({i for pair in differ for i in pair})),
        records=size,
        moved=transfer_distance(first.groups, second.groups) if differ else 0,
    )


def below_agreement(agreements: Iterable[SetAgreement], min_agreement: float) -> list[SetAgreement]:
    """The sets whose two copies agree less than ``min_agreement`` (Cohen's kappa), in order.

    :param agreements: the overlapped sets with both copies done (:func:`compare`).
    :param min_agreement: the least kappa taken.
    """
    return [found for found in agreements if found.kappa < min_agreement]


def check_agreement(agreements: Iterable[SetAgreement], min_agreement: float) -> None:
    """The gate: refuse the submit when a set's two copies agree less than ``min_agreement``
    (Cohen's kappa over the set's pairs).

    :param agreements: the overlapped sets with both copies done (:func:`compare`).
    :param min_agreement: the least kappa taken, from -1 to 1.
    :raises AgreementError: naming each set below it, its kappa and its two labelers.
    """
    if (
        isinstance(min_agreement, bool)
        or not isinstance(min_agreement, int | float)
        or not -1 <= min_agreement <= 1
    ):
        raise AgreementError(
            f"min_agreement {min_agreement!r} is not a kappa: expected a number from -1 to 1 (e.g. 0.6)"
        )
    below = below_agreement(agreements, min_agreement)
    if below:
        named = "; ".join(
            f"{found.set_id} (kappa {found.kappa:.2f}, {' and '.join(found.people)})" for found in below
        )
        raise AgreementError(
            f"labeling set(s) below min_agreement {min_agreement:g}: {named}; have the records they "
            "disagree on settled, or the set labeled again, before submitting"
        )


def settle(
    labeling_set: LabelingSet,
    copies: Mapping[str, Sequence[Copy]],
    overlapped: Collection[str] = (),
    decisions: Mapping[str, Sequence[Hashable]] | None = None,
) -> bytes:
    """The labels file of the settled groupings, in Glue's format: each record once, under its
    own set's id, with one label per entity.

    A set's settled grouping is its adjudicator's decision when there is one (a grouping of
    the whole set: one of the copies, or one that settles the records they disagree on); else
    its one copy; else, for an overlapped set, its two copies when they agree on every pair.

    :param labeling_set: the generated labeling set (:meth:`LabelingSet.parse`).
    :param copies: set id to its done copies.
    :param overlapped: the sets that get a second copy (:func:`second_copies`).
    :param decisions: set id to the adjudicator's grouping, a label or group number per record.
    :raises AgreementError: naming the sets with no copy, an overlapped set with one copy only,
        a set whose copies disagree and have no decision, or a grouping of the wrong length.
    """
    decisions = decisions or {}
    missing = [s for s in labeling_set.sets if s not in decisions and not copies.get(s)]
    if missing:
        raise AgreementError(
            f"labeling set(s) {', '.join(missing)} not labeled yet: group the records of every set "
            "and mark it done before submitting"
        )
    groupings: dict[str, Sequence[Hashable]] = {}
    for set_id, rows in labeling_set.sets.items():
        done = list(copies.get(set_id, ()))
        wanted = COPIES if set_id in overlapped else 1
        if set_id in decisions:
            grouping = decisions[set_id]
        elif len(done) < wanted:
            raise AgreementError(
                f"labeling set {set_id} has 1 of its {wanted} copies done (by {done[0].person}): "
                "expected both copies before it is settled"
            )
        elif len(done) > wanted:
            raise AgreementError(f"labeling set {set_id} has {len(done)} copies done: expected {wanted}")
        elif wanted == 1:
            grouping = done[0].groups
        else:
            found = compare(set_id, done[0], done[1])
            if found.disagreements:
                raise AgreementError(
                    f"the copies of labeling set {set_id} ({' and '.join(found.people)}) disagree on "
                    f"records {', '.join(str(i + 1) for i in found.disagreements)}: expected an "
                    "adjudicator's decision for the set"
                )
            grouping = done[0].groups
        if len(grouping) != len(rows):
            raise AgreementError(
                f"the grouping of labeling set {set_id} has {len(grouping)} records: expected "
                f"{len(rows)}, one group per record"
            )
        groupings[set_id] = grouping
    drafts = {set_id: {"groups": numbered(grouping), "done": True} for set_id, grouping in groupings.items()}
    return labeling_set.labels_file(drafts)


def numbered(groups: Sequence[Hashable]) -> list[int]:
    """A grouping as group numbers from 0, in the order groups first appear (as the page keeps them).

    :param groups: a label or group number per record.
    """
    numbers: dict[Hashable, int] = {}
    return [numbers.setdefault(group, len(numbers)) for group in groups]
