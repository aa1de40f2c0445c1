"""How sure an evaluation is: intervals for precision, recall and F1 from Glue's confusion matrix.

Glue estimates a transform's quality on labels held out from training, so with a few hundred
labels an estimate moves by ±0.1 or more between evaluations with nothing changed. Each round
therefore carries 95 % intervals computed from the evaluation's counts of record pairs
(``ConfusionMatrix``: true and false positives and negatives):

* precision and recall are proportions of pairs (TP of TP+FP, TP of TP+FN): the Wilson score
  interval, which stays inside [0, 1] and keeps a width at 0 and at all-correct counts, where the
  textbook normal interval collapses to a point;
* F1 = 2TP / (2TP + FP + FN) is not a proportion: its interval comes from the posterior of the
  counts (Goutte and Gaussier, "A probabilistic interpretation of precision, recall and F-score",
  ECIR 2005): TP, FP and FN drawn from Gamma(count + 1/2) (Jeffreys' prior), F1 computed for each
  draw, and its 2.5th and 97.5th percentiles taken. A bootstrap over the pairs or the delta method
  would give a zero-width interval when FP = FN = 0 or TP = 0, as if a perfect score on 20 pairs
  were certain; this draw does not. The draws are seeded by the counts: the same counts always
  give the same interval.
"""

from __future__ import annotations

import math
import random
from typing import Any

Z_95 = 1.959964  # the normal quantile of a two-sided 95 % interval
DRAWS = 4000
Interval = tuple[float, float]


def wilson(successes: int, trials: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of ``successes`` out of ``trials`` (``(0, 1)`` with no trials)."""
    if trials <= 0:
        return 0.0, 1.0
    share = successes / trials
    scale = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / scale
    half = z / scale * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def f1_interval(tp: int, fp: int, fn: int, level: float = 0.95, draws: int = DRAWS) -> Interval:
    """A ``level`` interval of F1 from the counts' posterior (Goutte and Gaussier, 2005)."""
    rng = random.Random(f"f1:{tp}:{fp}:{fn}:{draws}")
    scores = sorted(_f1_draw(rng, tp, fp, fn) for _ in range(draws))
    tail = (1 - level) / 2
    return scores[int(tail * (draws - 1))], scores[math.ceil((1 - tail) * (draws - 1))]


def _f1_draw(rng: random.Random, tp: int, fp: int, fn: int) -> float:
    hits = rng.gammavariate(tp + 0.5, 1)
    return 2 * hits / (2 * hits + rng.gammavariate(fp + 0.5, 1) + rng.gammavariate(fn + 0.5, 1))


def counts(metrics: dict[str, Any]) -> tuple[int, int, int, int] | None:
    """TP, FP, TN, FN from a ``ConfusionMatrix`` (in metrics or a round), or None without one."""
    matrix = metrics.get("ConfusionMatrix") or {}
    names = ("NumTruePositives", "NumFalsePositives", "NumTrueNegatives", "NumFalseNegatives")
    values = [
        v for v in (matrix.get(name) for name in names) if isinstance(v, int) and not isinstance(v, bool)
    ]
    if len(values) < len(names) or min(values) < 0:
        return None
    tp, fp, tn, fn = values
    return tp, fp, tn, fn


def intervals(metrics: dict[str, Any]) -> dict[str, list[float]] | None:
    """95 % intervals of ``Precision``, ``Recall`` and ``F1`` from the metrics' confusion matrix
    (rounded to 4 places, as ``[low, high]``), or None when there are no counts."""
    found = counts(metrics)
    if found is None:
        return None
    tp, fp, _, fn = found
    bounds = {"Precision": wilson(tp, tp + fp), "Recall": wilson(tp, tp + fn), "F1": f1_interval(tp, fp, fn)}
    return {name: [round(low, 4), round(high, 4)] for name, (low, high) in bounds.items()}
