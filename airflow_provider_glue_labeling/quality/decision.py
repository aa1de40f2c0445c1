"""What an evaluation decides: the quality gate, and whether more labels are worth asking for.

Pure functions over Glue's metrics and the recorded rounds; the evaluation operator carries
their outcome out (fails the task, or pushes the decision to XCom).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from airflow_provider_glue_labeling.quality.intervals import Z_95, counts
from airflow_provider_glue_labeling.quality.rounds import label_count, round_intervals, with_interval

# The decision of an evaluation with a plateau rule (XCom "teaching_decision").
GOOD_ENOUGH, PLATEAU, KEEP_LABELING = "good_enough", "plateau", "keep_labeling"
# The rule would keep labeling, but the label budget (max_labels, max_rounds) is spent: a stop too.
BUDGET_SPENT = "budget_spent"
# The decisions after which the teaching loop asks nobody for more labels.
STOPS = (GOOD_ENOUGH, PLATEAU, BUDGET_SPENT)
# Before any plateau, at least this many matching and non-matching pairs tested (dedupe asks for 10
# of each, Zingg for 30-40 matches). Below about 50 tested matches the learning curve looks flat
# long before the true F1 stops rising: chosen on the stopping benchmark's tuning seeds 0-39
# (docs/teaching-rounds.md).
LABEL_FLOOR = 50
MIN_TREND_ROUNDS = 3  # a line through two noisy points has no error to speak of
UNKNOWN_SPREAD = 0.1  # F1's spread with a few hundred labels, for rounds kept without counts
MIN_SPREAD = 0.005


class Gate(NamedTuple):
    """An evaluation's quality gate and plateau rule, as its operator's parameters give them."""

    thresholds: dict[str, float | None]
    history_s3_path: str | None = None
    min_gain: float | None = None
    over_rounds: int = 3
    label_floor: int = LABEL_FLOOR
    require_lower_bound: bool = True
    max_labels: int | None = None
    max_rounds: int | None = None


def quality_gate(
    metrics: dict[str, Any], thresholds: dict[str, float | None], require_lower_bound: bool = True
) -> tuple[str, list[str]]:
    """A text table of each metric, its 95 % interval and its threshold, and the failures
    (``"F1 lower bound 0.71 < 0.80"``; ``"F1 0.61 < 0.80"`` without ``require_lower_bound``).

    :param metrics: Glue's ``FindMatchesMetrics``, or a round of the history.
    :param require_lower_bound: compare the interval's lower bound (where the metric has one:
        precision, recall, F1) with the threshold, not the estimate (the default).
    """
    bounds = round_intervals(metrics) or {}
    lines = [f"{'metric':<18} {'value':>8} {'95 % interval':>16} {'threshold':>10}  result"]
    failed = []
    for name, threshold in thresholds.items():
        value = metrics.get(name)
        interval = bounds.get(name)
        compared, what = held_against(metrics, bounds, name, require_lower_bound)
        if threshold is None:
            verdict = "-"
        elif compared is None or compared < threshold:
            verdict = "FAIL"
            failed.append(f"{what} {compared} < {threshold}")
        else:
            verdict = "pass"
        shown = f"{value:.4f}" if isinstance(value, int | float) else str(value)
        limit = "-" if threshold is None else f"{threshold:.4f}"
        spread = f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "-"
        lines.append(f"{name:<18} {shown:>8} {spread:>16} {limit:>10}  {verdict}")
    matrix = metrics.get("ConfusionMatrix") or {}
    if matrix:
        lines.append(
            "confusion matrix   " + " ".join(f"{k.removeprefix('Num')}={v}" for k, v in matrix.items())
        )
    return "\n".join(lines), failed


def decide(
    rounds: list[dict[str, Any]],
    min_gain: float,
    over_rounds: int,
    thresholds: dict[str, float | None],
    label_floor: int = LABEL_FLOOR,
    require_lower_bound: bool = True,
    max_labels: int | None = None,
    max_rounds: int | None = None,
) -> dict[str, Any]:
    """Whether more labels are worth asking for, on the evidence of the rounds: ``{"decision",
    "reason", "evidence"}``; the reason names the numbers it rests on.

    "budget spent" where the evidence says "keep labeling" but the last round's label count has
    reached ``max_labels``, or the rounds that added labels number ``max_rounds``: a stop, whose
    reason says what the evidence said.

    "good enough" when the last round meets every threshold given (at least one) with the low end
    of its 95 % interval (``require_lower_bound``, the default; the estimate runs high with a few
    hundred labels), or with its estimate.

    Otherwise two trends of F1 against the label count, each round weighted by its uncertainty
    (the inverse variance read from its F1 interval), estimate what another round of labels (as
    many as the last round added) would gain:

    * the learning curve over every round that added labels: F1 = a - b / labels, the inverse
      power law learning curves follow (Figueroa et al., 2012), so gains shrink as labels grow;
    * the recent trend: a straight line through the last ``over_rounds`` + 1 rounds (at least 3),
      which sees a curve that has not flattened yet.

    "plateau" when the learning curve says, even one standard error above its estimate, that the
    gain is below ``min_gain`` (a learning curve that falls counts as flat: more correct labels do
    not make a model worse, so a falling fit is noise), and the recent trend's estimate agrees.
    The recent trend is held to its estimate, not its bound: it rests on a few rounds that share
    most of their held-out labels, so its bound stays wide long after the curve has flattened and
    would keep people labeling for nothing. When the curve's estimate is below ``min_gain`` but
    its bound is not, the intervals are too wide to tell: keep labeling, and say so. Before any
    plateau, the evaluation must have tested at least ``label_floor`` matching and ``label_floor``
    non-matching pairs (its confusion matrix): with fewer tested matches the curve flattens long
    before the true F1 stops rising. The bounds, the window and the floor were chosen on the
    stopping benchmark's tuning seeds (``bench/stopping_bench.py``; docs/teaching-rounds.md,
    "Does the rule stop where it should?"). An evaluation with no
    new labels replaces the earlier round of its label count instead of looking like a plateau.
    Rounds recorded without a confusion matrix (before intervals were kept) weigh as if their F1
    were known to ±``UNKNOWN_SPREAD``.

    :param rounds: oldest first, as :func:`~.rounds.read_rounds` gives them; the last is this evaluation.
    :param min_gain: the least gain of F1 from another round of labels that is worth labeling for.
    :param over_rounds: the recent trend is fitted over this many rounds before the last, and the last.
    :param thresholds: metric name (``F1``, ``Precision``...) to its least acceptable value or None.
    :param label_floor: the least matching, and non-matching, pairs an evaluation must have tested
        before a plateau can be called.
    :param require_lower_bound: meet the thresholds with the interval's lower bound, not the estimate.
    :param max_labels: the label budget: stop once the transform has this many labels, or None.
    :param max_rounds: stop once this many rounds have added labels, or None.
    """
    decided = _on_evidence(rounds, min_gain, over_rounds, thresholds, label_floor, require_lower_bound)
    if decided["decision"] != KEEP_LABELING:
        return decided
    labels = label_count(rounds[-1]) or 0
    taught = len([r for r in _with_new_labels(rounds) if (label_count(r) or 0) > 0])
    spent = []
    if max_labels is not None and labels >= max_labels:
        spent.append(f"{labels} labels reach max_labels {max_labels}")
    if max_rounds is not None and taught >= max_rounds:
        spent.append(f"{taught} rounds added labels, max_rounds {max_rounds}")
    if not spent:
        return decided
    return {
        "decision": BUDGET_SPENT,
        "reason": f"the label budget is spent: {', '.join(spent)} (the evidence alone would say: "
        f"{decided['reason']})",
        "evidence": {**decided["evidence"], "labels": labels, "taught_rounds": taught},
    }


def _on_evidence(
    rounds: list[dict[str, Any]],
    min_gain: float,
    over_rounds: int,
    thresholds: dict[str, float | None],
    label_floor: int,
    require_lower_bound: bool,
) -> dict[str, Any]:
    """The decision of :func:`decide` before the label budget."""
    last = rounds[-1]
    met = _thresholds_met(last, thresholds, require_lower_bound)
    if met:
        return {"decision": GOOD_ENOUGH, "reason": f"good enough: {met}", "evidence": {}}
    found = counts(last)
    if found is not None and min(found[0] + found[3], found[1] + found[2]) < label_floor:
        tp, fp, tn, fn = found
        return _keep(
            f"the evaluation tested {tp + fn} matching and {tn + fp} non-matching pair(s); a plateau needs "
            f"at least {label_floor} of each (label_floor)",
            {"matching_pairs": tp + fn, "non_matching_pairs": tn + fp},
        )
    usable = [
        r
        for r in _with_new_labels(rounds)
        if (label_count(r) or 0) > 0 and isinstance(r.get("F1"), int | float)
    ]
    if len(usable) < MIN_TREND_ROUNDS:
        return _keep(
            f"{len(usable)} round(s) with new labels and an F1 so far; the trends of F1 need {MIN_TREND_ROUNDS}",
            {"rounds": len(usable)},
        )
    curve = learning_curve(usable)
    recent = recent_trend(usable[-max(over_rounds + 1, MIN_TREND_ROUNDS) :])
    evidence = {
        "rounds": len(usable),
        "labels": label_count(usable[-1]),
        "next_labels": curve.step,
        "curve_gain": curve.gain,
        "curve_upper": curve.upper,
        "recent_rounds": recent.rounds,
        "recent_gain": recent.gain,
        "recent_upper": recent.upper,
        "min_gain": min_gain,
    }
    last_f1 = with_interval(last.get("F1"), (round_intervals(last) or {}).get("F1"))
    said = (
        f"another {curve.step} labels gain F1 {curve.gain:+.4f} (up to {curve.upper:+.4f}) on the learning "
        f"curve of {len(usable)} rounds, {recent.gain:+.4f} (up to {recent.upper:+.4f}) on the trend of the "
        f"last {recent.rounds}; last F1 {last_f1} at {label_count(usable[-1])} labels"
    )
    if max(curve.upper, recent.gain) < min_gain:
        return {
            "decision": PLATEAU,
            "reason": f"more labels no longer help: {said}; the curve's bound and the trend below "
            f"min_gain {min_gain}",
            "evidence": evidence,
        }
    if max(curve.gain, recent.gain) < min_gain:
        return _keep(
            f"the intervals are too wide to tell: {said}; the curve's bound not below min_gain {min_gain}",
            evidence,
        )
    return _keep(f"{said}; at least min_gain {min_gain}", evidence)


class Trend(NamedTuple):
    """F1's gain from another ``step`` labels as a trend predicts it, and one standard error above."""

    gain: float
    upper: float
    step: int
    rounds: int


def learning_curve(rounds: list[dict[str, Any]]) -> Trend:
    """The gain of another round on the learning curve F1 = a - b / labels, fitted to ``rounds``."""
    return _trend(rounds, lambda labels: 1 / labels, never_falls=True)


def recent_trend(rounds: list[dict[str, Any]]) -> Trend:
    """The gain of another round on a straight line of F1 against the label count through ``rounds``."""
    return _trend(rounds, float)


def _trend(rounds: list[dict[str, Any]], shape: Callable[[int], float], never_falls: bool = False) -> Trend:
    """Weighted least squares of F1 on ``shape(labels)``; each round weighs by the inverse
    variance of its F1. The next round adds as many labels as the last did.

    :param never_falls: the bound starts at no gain when the fit falls (a learning curve does not
        fall as correct labels are added: a falling fit is noise, and the bound of a steep noisy
        drop would otherwise pass for evidence of a plateau).
    """
    counted = [label_count(r) or 0 for r in rounds]
    xs = [shape(n) for n in counted]
    ys = [float(r["F1"]) for r in rounds]
    weights = [1 / spread(r) ** 2 for r in rounds]
    total = sum(weights)
    mean_x = sum(w * x for w, x in zip(weights, xs, strict=True)) / total
    mean_y = sum(w * y for w, y in zip(weights, ys, strict=True)) / total
    sxx = sum(w * (x - mean_x) ** 2 for w, x in zip(weights, xs, strict=True))
    slope = sum(w * (x - mean_x) * (y - mean_y) for w, x, y in zip(weights, xs, ys, strict=True)) / sxx
    step = max(1, counted[-1] - counted[-2])
    change = shape(counted[-1] + step) - shape(counted[-1])
    gain = slope * change
    upper = (max(gain, 0.0) if never_falls else gain) + math.sqrt(1 / sxx) * abs(change)
    # rounded: no float dust in a comparison with min_gain
    return Trend(round(gain, 4), round(upper, 4), step, len(rounds))


def spread(round_: dict[str, Any]) -> float:
    """The standard deviation of a round's F1 estimate, from its 95 % interval."""
    bounds = round_intervals(round_)
    if bounds is None:
        return UNKNOWN_SPREAD
    low, high = bounds["F1"]
    return max(MIN_SPREAD, (high - low) / (2 * Z_95))


def _thresholds_met(last: dict[str, Any], thresholds: dict[str, float | None], lower: bool) -> str:
    """How the last round meets every threshold given (at least one), or "" when it does not."""
    targets: dict[str, float | None] = {n: v for n, v in thresholds.items() if v is not None}
    if not targets or quality_gate(last, targets, lower)[1]:
        return ""
    bounds = round_intervals(last) or {}
    shown = []
    for name, target in targets.items():
        value, what = held_against(last, bounds, name, lower)
        shown.append(f"{what} {value:.4f} >= {target:.4f}")
    return ", ".join(shown)


def held_against(
    metrics: dict[str, Any], bounds: dict[str, list[float]], name: str, require_lower_bound: bool
) -> tuple[Any, str]:
    """What a threshold of metric ``name`` is held against, and its name in messages: the estimate,
    or with ``require_lower_bound`` the low end of its 95 % interval where it has one.

    :param metrics: Glue's ``FindMatchesMetrics``, or a round of the history.
    :param bounds: the intervals of ``metrics`` (:func:`~.rounds.round_intervals`).
    :param name: the metric (``F1``, ``Precision``...).
    :param require_lower_bound: the lower bound, where there is one.
    """
    interval = bounds.get(name)
    if require_lower_bound and interval:
        return interval[0], f"{name} lower bound"
    return metrics.get(name), name


def _keep(why: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"decision": KEEP_LABELING, "reason": f"keep labeling: {why}", "evidence": evidence}


def _with_new_labels(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rounds that added labels: of rounds with the same label count, the latest."""
    kept: list[dict[str, Any]] = []
    for r in rounds:
        if kept and label_count(kept[-1]) == label_count(r):
            kept[-1] = r
        else:
            kept.append(r)
    return kept
