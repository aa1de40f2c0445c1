"""Labels a team agrees on: second copies of some labeling sets, the agreement of the two copies,
each labeler's agreement with the others, a gate on agreement, and the settled labels file.

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

The records the copies disagree on are those in at least one pair they disagree on. A
labeler's agreement with the others pools the pair counts of every set they hold a copy of
(against the other copy) into one kappa and one F1.

Which labeler is careless is another question: a careful labeler paired with a careless one
disagrees as much as the careless one does. Each set also counts the records one copy must move
to become the other, the *transfer distance* between the two groupings (Day 1981, "The
complexity of computing metric distances between partitions"; Denœud 2008, "Transfer distance
between partitions"): the set's records minus the most records the two groupings' groups can
share when each group of one is paired with at most one group of the other. When two people
misgroup shares ``e_i`` and ``e_j`` of the records, independently and rarely, the records moved
per record labeled by both is about ``d_ij = e_i + e_j``. Over the pairs of labelers that shared
sets, the least-squares solution of those equations (each pair weighted by its records) is each
labeler's estimated share of records misgrouped (Dawid and Skene 1979 estimate labelers' error
rates from their disagreements in the same spirit). It exists for a group of labelers whose
pairings contain an odd cycle (three people who each shared sets with the other two, say);
with two people, or pairings that split into two camps, the disagreements cannot say which side
erred, and it is None.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from airflow_provider_glue_labeling.labels.format import LabelingError, LabelingSet

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


def matching_pairs(groups: Sequence[Hashable]) -> set[tuple[int, int]]:
    """The record pairs ``(i, j)``, ``i < j`` (positions in the set), a grouping calls one entity.

    :param groups: a label or group number per record.
    """
    return {(i, j) for i, j in itertools.combinations(range(len(groups)), 2) if groups[i] == groups[j]}


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


def transfer_distance(first: Sequence[Hashable], second: Sequence[Hashable]) -> int:
    """The fewest records to move from one group to another that turn one grouping into the other
    (see the module): the records minus the largest total overlap of a one-to-one pairing of the
    first grouping's groups with the second's, an assignment over their contingency table.

    :param first: a label or group number per record.
    :param second: another grouping of the same records.
    """
    rows = {g: i for i, g in enumerate(dict.fromkeys(first))}
    cols = {g: j for j, g in enumerate(dict.fromkeys(second))}
    shared = [[0] * len(cols) for _ in rows]
    for a, b in zip(first, second, strict=True):
        shared[rows[a]][cols[b]] += 1
    return len(first) - _most_shared(shared)


def _most_shared(weights: list[list[int]]) -> int:
    """The largest sum of ``weights[i][j]`` over a one-to-one pairing of rows with columns: the
    Hungarian method (Kuhn 1955) with potentials, on the table padded to a square, as a
    least-cost assignment of the negated weights. O(n³) for n groups."""
    n = max(len(weights), len(weights[0]) if weights else 0)
    cost = [
        [-(weights[i][j] if i < len(weights) and j < len(weights[i]) else 0) for j in range(n)]
        for i in range(n)
    ]
    u, v = [0] * (n + 1), [0] * (n + 1)
    owner, way = [0] * (n + 1), [0] * (n + 1)  # owner[j]: the row (from 1) column j is paired with
    for row in range(1, n + 1):
        owner[0], col = row, 0
        least, used = [float("inf")] * (n + 1), [False] * (n + 1)
        while owner[col]:
            used[col], at, delta, nxt = True, owner[col], float("inf"), 0
            for j in range(1, n + 1):
                if not used[j]:
                    reduced = cost[at - 1][j - 1] - u[at] - v[j]
                    if reduced < least[j]:
                        least[j], way[j] = reduced, col
                    if least[j] < delta:
                        delta, nxt = least[j], j
            for j in range(n + 1):
                if used[j]:
                    u[owner[j]] += int(delta)
                    v[j] -= int(delta)
                else:
                    least[j] -= delta
            col = nxt
        while col:
            owner[col] = owner[way[col]]
            col = way[col]
    return -sum(cost[owner[j] - 1][j - 1] for j in range(1, n + 1) if owner[j])


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


@dataclass(frozen=True)
class LabelerAgreement:
    """One labeler's agreement with the others, over every overlapped set they hold a copy of.

    :param person: the labeler.
    :param kappa: Cohen's kappa over the pooled pairs of those sets (their copy against the other).
    :param f1: pairwise F1 over the same pooled pairs.
    :param sets: how many sets it rests on.
    :param pairs: how many record pairs it rests on.
    :param error: the estimated share of records they misgroup, from 0 to 1 (see the module);
        None when the sets shared do not tell (two people, or pairings in two camps).
    """

    person: str
    kappa: float
    f1: float
    sets: int
    pairs: int
    error: float | None = None


def labeler_agreement(agreements: Iterable[SetAgreement]) -> dict[str, LabelerAgreement]:
    """Each labeler's agreement with the others: the pair counts of every set they hold a copy
    of, pooled, as one kappa and one F1, and their estimated share of records misgrouped
    (:func:`labeler_errors`). The counts of each set are oriented to the person (the pairs only
    they call the same entity, and those only the other copy does), so that the pooled figures
    do not depend on which copy of each set was first.

    :param agreements: the overlapped sets with both copies done (:func:`compare`).
    :return: person to their agreement, the most misgrouping first (then the lowest kappa;
        those with no estimate after those with one).
    """
    agreements = list(agreements)
    errors = labeler_errors(agreements)
    pooled: dict[str, list[int]] = {}
    for found in agreements:
        for person in found.people:
            # Oriented to the person: "their own" pairs first, so that pooling several sets, where
            # they hold the first copy of some and the second of others, does not mix the two.
            own, others = (
                (found.first_only, found.second_only)
                if person == found.people[0]
                else (found.second_only, found.first_only)
            )
            counts = pooled.setdefault(person, [0, 0, 0, 0, 0])
            counts[0] += found.both
            counts[1] += own
            counts[2] += others
            counts[3] += found.neither
            counts[4] += 1
    out = {}
    for person, (both, first_only, second_only, neither, sets) in pooled.items():
        out[person] = LabelerAgreement(
            person=person,
            kappa=pair_kappa(both, first_only, second_only, neither),
            f1=pair_f1(both, first_only, second_only),
            sets=sets,
            pairs=both + first_only + second_only + neither,
            error=errors.get(person),
        )

    def rank(item: tuple[str, LabelerAgreement]) -> tuple[bool, float, float, str]:
        error = item[1].error
        return (error is None, -(error or 0.0), item[1].kappa, item[0])

    return dict(sorted(out.items(), key=rank))


def labeler_errors(agreements: Iterable[SetAgreement]) -> dict[str, float]:
    """Each labeler's estimated share of records misgrouped (see the module): the weighted
    least-squares solution of ``moved / records = e_i + e_j`` over the pairs of labelers that
    shared sets, clipped to [0, 1]. Labelers whose pairings cannot tell (no odd cycle among
    them) are left out.

    :param agreements: the overlapped sets with both copies done (:func:`compare`).
    """
    moved: dict[tuple[str, str], list[int]] = {}
    for found in agreements:
        counts = moved.setdefault((min(found.people), max(found.people)), [0, 0])
        counts[0] += found.moved
        counts[1] += found.records
    out: dict[str, float] = {}
    for people in _told_apart(list(moved)):
        index = {p: i for i, p in enumerate(people)}
        # The normal equations (A^T W A) e = A^T W d, A a row per pair with 1 at both people.
        normal = [[0.0] * len(people) for _ in people]
        rhs = [0.0] * len(people)
        for (a, b), (count, records) in moved.items():
            if a in index:
                for i in (index[a], index[b]):
                    rhs[i] += count
                    for j in (index[a], index[b]):
                        normal[i][j] += records
        for person, error in zip(people, _solve(normal, rhs), strict=True):
            out[person] = min(max(error, 0.0), 1.0)
    return out


def _told_apart(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """The groups of labelers (connected by shared sets) whose pairings contain an odd cycle:
    only there do the pairs' disagreements fix each person's share (a graph's unsigned incidence
    matrix has full column rank exactly when no component is bipartite)."""
    linked: dict[str, set[str]] = {}
    for a, b in pairs:
        linked.setdefault(a, set()).add(b)
        linked.setdefault(b, set()).add(a)
    side: dict[str, int] = {}
    groups = []
    for start in sorted(linked):
        if start in side:
            continue
        side[start], members, odd, queue = 0, [start], False, [start]
        while queue:
            person = queue.pop()
            for other in sorted(linked[person]):
                if other not in side:
                    side[other] = 1 - side[person]
                    members.append(other)
                    queue.append(other)
                elif side[other] == side[person]:
                    odd = True
        if odd:
            groups.append(sorted(members))
    return groups


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """``x`` with ``matrix x = rhs``, by Gaussian elimination with partial pivoting (the matrix is
    nonsingular: see :func:`_told_apart`)."""
    size = len(rhs)
    rows = [[*row, value] for row, value in zip(matrix, rhs, strict=True)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(size):
            if r != col:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [x - factor * y for x, y in zip(rows[r], rows[col], strict=True)]
    return [rows[i][size] / rows[i][i] for i in range(size)]


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
