"""Two groupings of the same records compared: the record pairs each calls one entity, and the
transfer distance between them.

A grouping gives each record a label; records with the same label are one entity. It says, for
every pair of records, "the same entity" or not (:func:`matching_pairs`). The *transfer
distance* between two groupings (W. Day, "The complexity of computing metric distances between
partitions", 1981; L. Denœud, "Transfer distance between partitions", 2008) is the fewest
records to move from one group to another that turn one into the other: the records minus the
most records the two groupings' groups can share when each group of one is paired with at most
one group of the other (:func:`transfer_distance`). A labeler who misgroups a record moves it:
the distance between two people's copies counts the records at least one of them misgrouped.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence


def matching_pairs(groups: Sequence[Hashable]) -> set[tuple[int, int]]:
    """The record pairs ``(i, j)``, ``i < j`` (positions in the set), a grouping calls one entity.

    :param groups: a label or group number per record.
    """
    return {(i, j) for i, j in itertools.combinations(range(len(groups)), 2) if groups[i] == groups[j]}


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
