"""How the emulator picks labeling sets and evaluates labels: token overlap, not Glue's model."""

from __future__ import annotations

import functools
import hashlib
import math
import random
from collections.abc import Iterable
from typing import Any, NamedTuple

from airflow_provider_glue_labeling.emulator.similarity import grams, jaccard, nearest, tokens
from airflow_provider_glue_labeling.labels.format import LABEL_COLUMNS


def labeling_set(
    rows: list[dict[str, str]], columns: list[str], key: str | None, seed: str, sets: int = 10, size: int = 10
) -> list[dict[str, str]]:
    """About ``sets`` x ``size`` records: each set a few seed records, each with the records most
    like it (likely matches, as FindMatches asks about), and one record at random.

    Set ids are unique to each labeling set generated (``<12 hex>-<number>``): labels mean
    something only within their set, and a later round's sets must not merge with earlier ones.
    """
    digest = hashlib.sha256(seed.encode()).hexdigest()
    rng = random.Random(digest)
    compared = [c for c in columns if c != key]
    bags = [tokens(" ".join(row.get(c) or "" for c in compared)) for row in rows]
    out: list[dict[str, str]] = []
    free = set(range(len(rows)))
    for number in range(min(sets, len(rows))):
        members: list[int] = []
        while free and len(members) < size - 1:
            anchor = rng.choice(sorted(free))
            alike = sorted(free - {anchor}, key=lambda i: (-jaccard(bags[anchor], bags[i]), i))
            group = [anchor, *alike[: min(NEIGHBOURS_ASKED, size - 2 - len(members))]]
            members.extend(group)
            free.difference_update(group)
        if free:
            extra = rng.choice(sorted(free))
            members.append(extra)
            free.discard(extra)
        if not members:
            break
        set_id = f"{digest[:12]}-{number:03d}"
        out.extend({"labeling_set_id": set_id, "label": "", **rows[i]} for i in members)
    return out


# Share of labeling sets an evaluation holds out of training to test on. Glue estimates quality
# from labels held out from training; AWS's FindMatches workshop describes a 70/30 split.
HOLDOUT = 0.3
PRIOR = 10
NAIVE_THRESHOLD = 0.9
NEIGHBOURS = 9
NEIGHBOURS_ASKED = 2  # a labeling set's seed records come each with this many alike


def _pairs(labels: list[dict[str, str]], columns: list[str]) -> dict[str, list[tuple[list[float], bool]]]:
    """Each labeling set's record pairs: per-column token overlap, and whether they match."""
    by_set: dict[str, list[dict[str, str]]] = {}
    for row in labels:
        by_set.setdefault(row["labeling_set_id"], []).append(row)
    pairs: dict[str, list[tuple[list[float], bool]]] = {}
    for set_id, members in by_set.items():
        bags = [{c: grams(row.get(c)) for c in columns} for row in members]
        pairs[set_id] = [
            ([jaccard(bags[i][c], bags[j][c]) for c in columns], members[i]["label"] == members[j]["label"])
            for i in range(len(members))
            for j in range(i + 1, len(members))
        ]
    return pairs


def _columns(labels: list[dict[str, str]], key: str | None) -> list[str]:
    return [c for c in dict.fromkeys(c for row in labels for c in row) if c not in (*LABEL_COLUMNS, key)]


def held_out(set_ids: list[str], share: float = HOLDOUT) -> set[str]:
    """The labeling sets an evaluation tests on: ``share`` of them (at least one, never all of
    several), chosen by a hash of their ids, so the same labels give the same split."""
    if len(set_ids) < 2:
        return set()
    ranked = sorted(set_ids, key=lambda s: hashlib.sha256(s.encode()).hexdigest())
    return set(ranked[: min(len(ranked) - 1, max(1, round(share * len(ranked))))])


def evaluate(labels: list[dict[str, str]], key: str | None) -> dict[str, Any]:
    """FindMatches-style metrics from the labels, estimated on labels held out of training.

    A pair of records in one set is a match when their labels are equal. The model scores a
    pair by a weighted mean of per-column token overlap; weights and threshold are learned on
    70 % of the labeling sets (shrunk towards a naive prior when few labels are held, so more
    correct labels give a better model) and the metrics are counted on the other 30 %, so, as
    with Glue, a few hundred labels give estimates that move from round to round. Deterministic
    for the same labels.
    """
    columns = _columns(labels, key)
    pairs = _pairs(labels, columns)
    tested = held_out(sorted(pairs))
    train = [p for s, ps in pairs.items() if s not in tested for p in ps]
    test = [p for s, ps in pairs.items() if s in tested for p in ps] or train
    weights, threshold = _fit(train, len(columns))
    scored = [(_score(sims, weights), match) for sims, match in test]
    counts = _confusion((score >= threshold, match) for score, match in scored)
    all_weights, _ = _fit([p for ps in pairs.values() for p in ps], len(columns))
    return {
        "AreaUnderPRCurve": round(_average_precision(scored), 6),
        **_rates(counts),
        "ConfusionMatrix": counts,
        # Glue lists ColumnImportances by descending importance.
        "ColumnImportances": sorted(
            ({"ColumnName": c, "Importance": round(w, 6)} for c, w in zip(columns, all_weights, strict=True)),
            key=lambda item: -item["Importance"],
        ),
    }


def true_quality(
    labels: list[dict[str, str]], rows: list[dict[str, str]], key: str, truth: dict[str, str]
) -> dict[str, Any]:
    """The transform's quality against the full known truth, for benchmarks and demos that know it.

    Its model, trained on all the labels, decides each candidate pair of source records (each
    record with its ``NEIGHBOURS`` most alike, as labeling sets are drawn); every true pair it
    does not call a match, candidate or not, is a false negative. Glue cannot do this: it only
    has the labels.

    :param truth: record id to the entity it belongs to.
    """
    columns, weights, threshold = train(labels, key)
    entity = [truth.get(row[key], row[key]) for row in rows]
    candidates = _candidates(_records(rows, columns))
    counts = _confusion(
        (_score(sims, weights) >= threshold, entity[i] == entity[j]) for (i, j), sims in candidates
    )
    members: dict[str, int] = {}
    for name in entity:
        members[name] = members.get(name, 0) + 1
    missed = (
        sum(n * (n - 1) // 2 for n in members.values())
        - counts["NumTruePositives"]
        - counts["NumFalseNegatives"]
    )
    counts["NumFalseNegatives"] += missed
    return {**_rates(counts), "ConfusionMatrix": counts}


class Model(NamedTuple):
    """The model trained on all the labels: the columns it compares, their weights, its threshold."""

    columns: list[str]
    weights: list[float]
    threshold: float


def train(labels: list[dict[str, str]], key: str | None) -> Model:
    """The model a transform's labels give (:func:`_fit` on every labeled pair): one per job."""
    columns = _columns(labels, key)
    weights, threshold = _fit([p for ps in _pairs(labels, columns).values() for p in ps], len(columns))
    return Model(columns, weights, threshold)


def _records(rows: list[dict[str, str]], columns: list[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(row.get(c) or "" for c in columns) for row in rows)


def match_ids(model: Model, rows: list[dict[str, str]], existing: list[str] | None = None) -> list[str]:
    """Each record's match id, as Glue's FindMatches job adds them: records of one entity share an
    id; a record like no other has an id of its own.

    The model trained on all the labels decides each candidate pair (as :func:`true_quality`);
    the pairs it calls matches are joined transitively (connected components), and each group
    takes the number of its first record.

    FindIncrementalMatches gives ``existing``: the first ``len(existing)`` rows were matched
    before and keep their ids, their groups as they are (no two existing groups merge). Each new
    record joins the group of the records it matches, the strongest pairs first, or starts a
    group of its own, numbered above every numeric existing id.

    :param model: the transform's model (:func:`train`).
    :param rows: the records (for FindIncrementalMatches, the existing ones first).
    :param existing: the match ids of the records matched before (FindIncrementalMatches only).
    :return: the match id of each record, in the order of ``rows``.
    """
    columns, weights, threshold = model
    known = len(existing or [])
    fixed: list[str | None] = [*(existing or []), *[None] * (len(rows) - known)]
    group = list(range(len(rows)))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = root(i), root(j)
        if fixed[a] is None or fixed[b] is None or fixed[a] == fixed[b]:  # existing groups stay apart
            group[max(a, b)] = min(a, b)
            fixed[min(a, b)] = fixed[a] or fixed[b]

    first: dict[str, int] = {}
    for i, match_id in enumerate(existing or []):
        join(first.setdefault(match_id, i), i)
    scored = ((_score(sims, weights), i, j) for (i, j), sims in _candidates(_records(rows, columns)))
    # The strongest pairs first; a pair of two existing records changes nothing (i < j).
    for _, i, j in sorted((-score, i, j) for score, i, j in scored if score >= threshold and j >= known):
        join(i, j)
    offset = 1 + max((int(v) for v in existing or [] if v.isdigit()), default=-1)
    return [fixed[root(i)] or str(offset + root(i)) for i in range(len(rows))]


# How far a pair's score must be from the threshold for the model to be sure of it: a pair
# CONFIDENCE_WIDTH above the threshold is a match with confidence 0.73, 3 widths above with 0.95.
CONFIDENCE_WIDTH = 0.06


def _match_confidence(score: float, threshold: float) -> float:
    """How sure the model is that a pair with ``score`` matches: a logistic curve, 0.5 at the threshold."""
    return 1 / (1 + math.exp(max(-50.0, min(50.0, (threshold - score) / CONFIDENCE_WIDTH))))


def match_confidence_scores(model: Model, rows: list[dict[str, str]], ids: list[str]) -> list[float]:
    """Each record's ``match_confidence_score``, as FindMatches adds it when asked
    (``computeMatchConfidenceScores=True``): the score of its match group, between 0 and 1.

    AWS: "A match confidence score will be between 0 and 1, where a higher score means higher
    similarity", one per group of matched records ("Estimating the quality of matches using match
    confidence scores", AWS Glue developer guide). Here, from the emulator's model: the confidence
    of each pair is a logistic curve of its score's distance from the threshold
    (:data:`CONFIDENCE_WIDTH`). A group of several records scores the mean confidence of its
    pairs (a group joined through a weak link scores low); a record alone scores how sure the
    model is that it matches none of its candidates (one minus the highest confidence of its pairs).

    :param model: the model that matched them (:func:`train`).
    :param rows: the records, as given to :func:`match_ids`.
    :param ids: each record's match id (:func:`match_ids`).
    :return: each record's score, rounded to 6 digits; equal within a group.
    """
    columns, weights, threshold = model
    records = _records(rows, columns)
    bags = _bags(records)

    def confidence(i: int, j: int) -> float:
        sims = [jaccard(a, b) for a, b in zip(bags[i], bags[j], strict=True)]
        return _match_confidence(_score(sims, weights), threshold)

    closest = [0.0] * len(rows)
    for (i, j), sims in _candidates(records):
        pair = _match_confidence(_score(sims, weights), threshold)
        closest[i], closest[j] = max(closest[i], pair), max(closest[j], pair)
    members: dict[str, list[int]] = {}
    for i, match_id in enumerate(ids):
        members.setdefault(match_id, []).append(i)
    by_group: dict[str, float] = {}
    for match_id, group in members.items():
        if len(group) == 1:
            by_group[match_id] = 1 - closest[group[0]]
        else:
            pairs = [confidence(i, j) for n, i in enumerate(group) for j in group[n + 1 :]]
            by_group[match_id] = sum(pairs) / len(pairs)
    return [round(by_group[match_id], 6) for match_id in ids]


@functools.lru_cache(maxsize=2)
def _candidates(records: tuple[tuple[str, ...], ...]) -> list[tuple[tuple[int, int], list[float]]]:
    """Each record with its ``NEIGHBOURS`` most alike by word overlap, as pairs with their similarities."""
    pairs = {(min(i, j), max(i, j)) for i, alike in enumerate(nearest(records, NEIGHBOURS)) for j in alike}
    bags = _bags(records)
    return [
        ((i, j), [jaccard(a, b) for a, b in zip(bags[i], bags[j], strict=True)]) for i, j in sorted(pairs)
    ]


@functools.lru_cache(maxsize=2)
def _bags(records: tuple[tuple[str, ...], ...]) -> list[list[frozenset[str]]]:
    """Each record's columns as character trigrams: made once for a job's candidates and scores."""
    return [[grams(value) for value in record] for record in records]


def _confusion(decisions: Iterable[tuple[bool, bool]]) -> dict[str, int]:
    tp = fp = tn = fn = 0
    for predicted, match in decisions:
        tp += predicted and match
        fp += predicted and not match
        tn += not predicted and not match
        fn += not predicted and match
    return {"NumTruePositives": tp, "NumFalsePositives": fp, "NumTrueNegatives": tn, "NumFalseNegatives": fn}


def _rates(counts: dict[str, int]) -> dict[str, float]:
    tp, fp, fn = counts["NumTruePositives"], counts["NumFalsePositives"], counts["NumFalseNegatives"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"Precision": round(precision, 6), "Recall": round(recall, 6), "F1": round(f1, 6)}


def _score(sims: list[float], weights: list[float]) -> float:
    return sum(s * w for s, w in zip(sims, weights, strict=True))


def _fit(pairs: list[tuple[list[float], bool]], width: int, prior: int = PRIOR) -> tuple[list[float], float]:
    """Column weights and a threshold learned from labeled pairs, shrunk towards a naive model.

    A column weighs by how well it separates matches from non-matches (difference of means over
    their spread); the threshold maximises a smoothed F1 on the pairs. Both are blended with the
    naive model (equal weights, threshold ``NAIVE_THRESHOLD``) by ``trust``, which grows with
    the matching pairs labeled (``prior`` of them give half): matches are the scarce evidence,
    and the model improves smoothly, with less each round, as labels come in.
    """
    if width == 0:
        return [], 0.5
    matches = [s for s, m in pairs if m]
    others = [s for s, m in pairs if not m]
    trust = len(matches) / (len(matches) + prior) if others else 0.0
    raw = []
    for c in range(width):
        ours, theirs = [s[c] for s in matches], [s[c] for s in others]
        spread = _variance(ours) + _variance(theirs) + 0.01
        raw.append(max(0.0, _mean(ours) - _mean(theirs)) / spread)
    total = sum(raw)
    learned = [r / total for r in raw] if total else [1 / width] * width
    weights = [trust * w + (1 - trust) / width for w in learned]
    scored = [(_score(s, weights), m) for s, m in pairs]
    best = _best_threshold(scored) if matches else NAIVE_THRESHOLD
    return weights, trust * best + (1 - trust) * NAIVE_THRESHOLD


def _best_threshold(scored: list[tuple[float, bool]], low: float = 0.3, high: float = 1.0) -> float:
    """The threshold with the best smoothed F1, by golden-section search (no grid to jump on)."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low + (1 - ratio) * (high - low), low + ratio * (high - low)
    fa, fb = _soft_f1(scored, a), _soft_f1(scored, b)
    for _ in range(24):
        if fa >= fb:
            high, b, fb = b, a, fa
            a = low + (1 - ratio) * (high - low)
            fa = _soft_f1(scored, a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = _soft_f1(scored, b)
    return (low + high) / 2


def _soft_f1(scored: list[tuple[float, bool]], threshold: float, width: float = 0.06) -> float:
    """F1 with each decision softened near the threshold, so the best threshold moves smoothly."""
    tp = fp = fn = 0.0
    for score, match in scored:
        called = 1 / (1 + math.exp(max(-50.0, min(50.0, (threshold - score) / width))))
        tp, fp, fn = tp + called * match, fp + called * (not match), fn + (1 - called) * match
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _variance(values: list[float]) -> float:
    mean = _mean(values)
    return _mean([(v - mean) ** 2 for v in values])


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _average_precision(scored: list[tuple[float, bool]]) -> float:
    positives = sum(1 for _, m in scored if m)
    if not positives:
        return 0.0
    hits, total = 0, 0.0
    for rank, (_, match) in enumerate(sorted(scored, key=lambda p: -p[0]), start=1):
        if match:
            hits += 1
            total += hits / rank
    return total / positives
