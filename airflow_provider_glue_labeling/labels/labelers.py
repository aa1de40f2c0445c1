"""Each labeler's figures, from the overlapped sets they labeled: their agreement with the
others (pooled kappa and F1) and their estimated share of records misgrouped.

A labeler's agreement with the others pools the pair counts of every set they hold a copy of
(against the other copy) into one kappa and one F1
(:mod:`~airflow_provider_glue_labeling.labels.agreement`).

Which labeler is careless is another question: a careful labeler paired with a careless one
disagrees as much as the careless one does. Each compared set counts the records one copy must
move to become the other (``SetAgreement.moved``, the transfer distance of
:mod:`~airflow_provider_glue_labeling.labels.groupings`). When two people misgroup shares ``e_i``
and ``e_j`` of the records, independently and rarely, the records moved per record labeled by
both is about ``d_ij = e_i + e_j``. Over the pairs of labelers that shared sets, the
least-squares solution of those equations (each pair weighted by its records) is each labeler's
estimated share of records misgrouped (Dawid and Skene 1979 estimate labelers' error rates from
their disagreements in the same spirit). It exists for a group of labelers whose pairings
contain an odd cycle (three people who each shared sets with the other two, say); with two
people, or pairings that split into two camps, the disagreements cannot say which side erred,
and it is None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from airflow_provider_glue_labeling.labels.agreement import SetAgreement, pair_f1, pair_kappa


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
