"""What an evaluation decides: the quality gate, and whether more labels are worth asking for.

Pure functions over Glue's metrics and the recorded rounds; the evaluation operator carries
their outcome out (fails the task, or pushes the decision to XCom).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_glue_labeling.quality.rounds import label_count

# Each metric of FindMatchesMetrics with a threshold, and the operator's parameter that sets it.
METRICS = (
    ("F1", "min_f1"),
    ("Precision", "min_precision"),
    ("Recall", "min_recall"),
    ("AreaUnderPRCurve", "min_area_under_pr_curve"),
)
# The decision of an evaluation with a plateau rule (XCom "teaching_decision").
GOOD_ENOUGH, PLATEAU, KEEP_LABELING = "good_enough", "plateau", "keep_labeling"


def quality_gate(metrics: dict[str, Any], thresholds: dict[str, float | None]) -> tuple[str, list[str]]:
    """A text table of each metric against its threshold, and the failures (``"F1 0.61 < 0.80"``)."""
    lines = [f"{'metric':<18} {'value':>8} {'threshold':>10}  result"]
    failed = []
    for name, threshold in thresholds.items():
        value = metrics.get(name)
        if threshold is None:
            verdict = "-"
        elif value is None or value < threshold:
            verdict = "FAIL"
            failed.append(f"{name} {value} < {threshold}")
        else:
            verdict = "pass"
        shown = f"{value:.4f}" if isinstance(value, int | float) else str(value)
        limit = "-" if threshold is None else f"{threshold:.4f}"
        lines.append(f"{name:<18} {shown:>8} {limit:>10}  {verdict}")
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
) -> dict[str, str]:
    """Whether more labels are worth asking for, and why: ``{"decision", "reason"}``.

    "good enough" when the last round meets every threshold given (at least one); "more labels no
    longer help" (plateau) when F1 rose by less than ``min_gain`` (a drop counts) from the round
    ``over_rounds`` before the last to the last; otherwise keep labeling, also while there are
    ``over_rounds`` rounds or fewer to compare. Only rounds with more labels than the round
    before count: an evaluation with no new labels (a labeling week that timed out, a manual
    re-run) replaces the earlier round of its label count instead of looking like a plateau.

    :param rounds: oldest first, as :func:`~.rounds.read_rounds` gives them; the last is this evaluation.
    :param min_gain: the least rise of F1 over ``over_rounds`` rounds that is worth labeling for.
    :param over_rounds: how many rounds back to compare with.
    :param thresholds: metric name (``F1``, ``Precision``...) to its least acceptable value or None.
    """
    last = rounds[-1]
    rounds = _with_new_labels(rounds)
    targets = {name: value for name, value in thresholds.items() if value is not None}
    if targets and all(last.get(name) is not None and last[name] >= v for name, v in targets.items()):
        met = ", ".join(f"{name} {last[name]:.4f} >= {v:.4f}" for name, v in targets.items())
        return {"decision": GOOD_ENOUGH, "reason": f"good enough: {met}"}
    if len(rounds) <= over_rounds:
        return {
            "decision": KEEP_LABELING,
            "reason": f"{len(rounds)} round(s) with new labels so far; the plateau rule compares F1 over "
            f"{over_rounds} round(s), so it needs {over_rounds + 1}",
        }
    before, now = rounds[-1 - over_rounds].get("F1"), last.get("F1")
    if before is None or now is None:
        return {"decision": KEEP_LABELING, "reason": "F1 is missing from a round the rule compares"}
    gain = round(now - before, 9)  # 0.81 - 0.80 is 0.010000000000000009 in floating point
    change = f"F1 went from {before:.4f} to {now:.4f} ({gain:+.4f}) over the last {over_rounds} round(s)"
    if gain < min_gain:
        return {"decision": PLATEAU, "reason": f"more labels no longer help: {change}, less than {min_gain}"}
    return {"decision": KEEP_LABELING, "reason": f"keep labeling: {change}, at least {min_gain}"}


def _with_new_labels(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rounds that added labels: of rounds with the same label count, the latest."""
    kept: list[dict[str, Any]] = []
    for r in rounds:
        if kept and label_count(kept[-1]) == label_count(r):
            kept[-1] = r
        else:
            kept.append(r)
    return kept
