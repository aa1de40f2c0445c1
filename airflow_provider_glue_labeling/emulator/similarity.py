"""How alike two records are, for the emulator's model: their words and character trigrams, the
Jaccard index of two such sets, and each record's most alike others."""

from __future__ import annotations

import collections
import heapq
import itertools
import re
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(value: str | None) -> frozenset[str]:
    return frozenset(_TOKEN.findall((value or "").lower()))


def grams(value: str | None) -> frozenset[str]:
    """A value's character trigrams (lower case, padded): "Denis" and "Dennis" share most."""
    text = f"  {' '.join(_TOKEN.findall((value or '').lower()))} "
    return frozenset(text[i : i + 3] for i in range(len(text) - 2)) if text.strip() else frozenset()


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def nearest(records: Sequence[Sequence[str]], count: int) -> list[list[int]]:
    """Each record's ``count`` most alike others: the highest Jaccard index of their words first,
    the lower index first among equals (records sharing no word come last, by index).

    Only records that share a word are compared, found through an index from each word to the
    records that hold it: on people-like records a few dozen comparisons a record, not one with
    every other record. The same as sorting every other record by its index of words.
    """
    words = [tokens(" ".join(record)) for record in records]
    holding: dict[str, list[int]] = {}
    for i, bag in enumerate(words):
        for word in bag:
            holding.setdefault(word, []).append(i)
    sizes = [len(bag) for bag in words]
    out = []
    for i, bag in enumerate(words):
        shared = collections.Counter(itertools.chain.from_iterable(holding[word] for word in bag))
        del shared[i]
        # |a & b| / |a | b|, the same division as :func:`jaccard`, so equal values tie exactly.
        ranked = [(-n / (sizes[i] + sizes[j] - n), j) for j, n in shared.items()]
        alike = [j for _, j in heapq.nsmallest(count, ranked)]
        others = (j for j in range(len(words)) if j != i and j not in shared)
        out.append(alike + list(itertools.islice(others, count - len(alike))))
    return out
