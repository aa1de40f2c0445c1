"""How the emulator picks labeling sets and evaluates labels: token overlap, not Glue's model."""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

from airflow_provider_glue_labeling.labels.format import LABEL_COLUMNS

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(value: str | None) -> frozenset[str]:
    return frozenset(_TOKEN.findall((value or "").lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def labeling_set(
    rows: list[dict[str, str]], columns: list[str], key: str | None, seed: str, sets: int = 10, size: int = 10
) -> list[dict[str, str]]:
    """About ``sets`` x ``size`` records: each set a seed record and the records most like it.

    Set ids are unique to each labeling set generated (``<12 hex>-<number>``): labels mean
    something only within their set, and a later round's sets must not merge with earlier ones.
    """
    digest = hashlib.sha256(seed.encode()).hexdigest()
    rng = random.Random(digest)
    compared = [c for c in columns if c != key]
    bags = [tokens(" ".join(row.get(c) or "" for c in compared)) for row in rows]
    out: list[dict[str, str]] = []
    used: set[int] = set()
    for number in range(min(sets, len(rows))):
        free = [i for i in range(len(rows)) if i not in used]
        if not free:
            break
        anchor = rng.choice(free)
        nearest = sorted(free, key=lambda i: (-jaccard(bags[anchor], bags[i]), i))[: size - 2]
        if anchor not in nearest:
            nearest = [anchor, *nearest[: size - 3]]
        others = [i for i in free if i not in nearest]
        members = nearest + rng.sample(others, min(2, len(others)))
        used.update(members)
        set_id = f"{digest[:12]}-{number:03d}"
        out.extend({"labeling_set_id": set_id, "label": "", **rows[i]} for i in members)
    return out


def evaluate(labels: list[dict[str, str]], key: str | None, folds: int = 5) -> dict[str, Any]:
    """FindMatches-style metrics from the labels, by cross-validation over labeling sets.

    A pair of records in one set is a match when their labels are equal. The model scores a
    pair by a weighted mean of per-column token overlap; weights and threshold are learned on
    the other folds and shrunk towards a naive prior when few labels are held, so more correct
    labels give better metrics. Deterministic for the same labels.
    """
    columns = [c for c in dict.fromkeys(c for row in labels for c in row) if c not in (*LABEL_COLUMNS, key)]
    by_set: dict[str, list[dict[str, str]]] = {}
    for row in labels:
        by_set.setdefault(row["labeling_set_id"], []).append(row)
    pairs: list[tuple[int, list[float], bool]] = []
    for index, set_id in enumerate(sorted(by_set)):
        members = by_set[set_id]
        bags = [{c: tokens(row.get(c)) for c in columns} for row in members]
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                sims = [jaccard(bags[i][c], bags[j][c]) for c in columns]
                pairs.append((index % folds, sims, members[i]["label"] == members[j]["label"]))
    weights, _ = _fit([(s, m) for _, s, m in pairs], len(columns))
    tp = fp = tn = fn = 0
    held_out: list[tuple[float, bool]] = []
    for fold in range(folds):
        fold_weights, fold_threshold = _fit([(s, m) for f, s, m in pairs if f != fold], len(columns))
        for f, s, match in pairs:
            if f != fold:
                continue
            score = _score(s, fold_weights)
            held_out.append((score, match))
            predicted = score >= fold_threshold
            tp += predicted and match
            fp += predicted and not match
            tn += not predicted and not match
            fn += not predicted and match
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "AreaUnderPRCurve": round(_average_precision(held_out), 6),
        "Precision": round(precision, 6),
        "Recall": round(recall, 6),
        "F1": round(f1, 6),
        "ConfusionMatrix": {
            "NumTruePositives": tp,
            "NumFalsePositives": fp,
            "NumTrueNegatives": tn,
            "NumFalseNegatives": fn,
        },
        # Glue lists ColumnImportances by descending importance.
        "ColumnImportances": sorted(
            ({"ColumnName": c, "Importance": round(w, 6)} for c, w in zip(columns, weights, strict=True)),
            key=lambda item: -item["Importance"],
        ),
    }


def _score(sims: list[float], weights: list[float]) -> float:
    return sum(s * w for s, w in zip(sims, weights, strict=True))


def _fit(pairs: list[tuple[list[float], bool]], width: int, prior: int = 40) -> tuple[list[float], float]:
    """Column weights (match vs non-match separation) and the F1-best threshold, shrunk by ``prior``."""
    if width == 0:
        return [], 0.5
    trust = len(pairs) / (len(pairs) + prior)
    matches = [s for s, m in pairs if m]
    others = [s for s, m in pairs if not m]
    raw = [max(0.0, _mean([s[c] for s in matches]) - _mean([s[c] for s in others])) for c in range(width)]
    total = sum(raw)
    learned = [r / total for r in raw] if total else [1 / width] * width
    weights = [trust * w + (1 - trust) / width for w in learned]
    ranked = sorted(((_score(s, weights), m) for s, m in pairs), key=lambda p: -p[0])
    best, best_f1, tp, fp = 0.5, -1.0, 0, 0
    for position, (score, match) in enumerate(ranked):
        tp, fp = tp + match, fp + (not match)
        if position + 1 < len(ranked) and ranked[position + 1][0] == score:
            continue
        f1 = 2 * tp / (2 * tp + fp + (len(matches) - tp)) if tp else 0.0
        if f1 > best_f1:
            best, best_f1 = score, f1
    return weights, trust * best + (1 - trust) * 0.9


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
