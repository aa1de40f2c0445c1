"""A transform's quality round by round, kept in S3, and the rule that says when to stop labeling.

AWS's advice for FindMatches is to label, import, evaluate and repeat until the quality estimate
plateaus. Each evaluation with a ``history_s3_path`` records a round there: one JSON object per
round, named by its evaluation's TaskRunId (S3 has no append; two writers at once write two
objects and no round is lost, and a retry that records the same evaluation again rewrites its
own object). It outlives Airflow's metadata clean-up. :func:`read_history` reads the rounds
back, oldest first; :func:`decide` applies the plateau rule.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from airflow_provider_glue_labeling.validation import check_s3_uri

METRIC_NAMES = ("Precision", "Recall", "F1", "AreaUnderPRCurve")
log = logging.getLogger(__name__)
# The decision of an evaluation with a plateau rule (XCom "teaching_decision").
GOOD_ENOUGH, PLATEAU, KEEP_LABELING = "good_enough", "plateau", "keep_labeling"


def _prefix(history_s3_path: str) -> tuple[str, str]:
    bucket, key = check_s3_uri("history_s3_path", history_s3_path)
    return bucket, key if not key or key.endswith("/") else key + "/"


def make_round(
    transform: dict[str, Any], task_run_id: str, dag_id: str | None, run_id: str | None
) -> dict[str, Any]:
    """A round from ``GetMLTransform`` after an evaluation: when, label count, metrics, which run."""
    metrics = (transform.get("EvaluationMetrics") or {}).get("FindMatchesMetrics") or {}
    return {
        "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        "task_run_id": task_run_id,
        "transform_id": transform.get("TransformId"),
        "label_count": transform.get("LabelCount"),
        **{name: metrics.get(name) for name in METRIC_NAMES},
        "ConfusionMatrix": metrics.get("ConfusionMatrix"),
        "dag_id": dag_id,
        "run_id": run_id,
    }


def record_round(s3: Any, history_s3_path: str, round_: dict[str, Any]) -> str:
    """Write one round as its own object under ``history_s3_path``; return its key.

    :param s3: an ``S3Hook``.
    """
    bucket, prefix = _prefix(history_s3_path)
    name = round_.get("task_run_id") or uuid.uuid4().hex
    key = f"{prefix}round-{name}.json"
    s3.load_bytes(json.dumps(round_).encode(), key, bucket, replace=True)
    return key


def read_history(
    history_s3_path: str, aws_conn_id: str | None = "aws_default", transform_id: str | None = None
) -> list[dict[str, Any]]:
    """The rounds recorded under ``history_s3_path``, oldest first.

    :param history_s3_path: the S3 prefix the evaluations recorded their rounds under.
    :param aws_conn_id: the Airflow AWS connection to read it with.
    :param transform_id: only this transform's rounds (when transforms share a prefix).
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return read_rounds(S3Hook(aws_conn_id=aws_conn_id), history_s3_path, transform_id)


def read_rounds(s3: Any, history_s3_path: str, transform_id: str | None = None) -> list[dict[str, Any]]:
    """:func:`read_history` with an ``S3Hook`` of one's own; an object that is not a round is skipped."""
    bucket, prefix = _prefix(history_s3_path)
    rounds = []
    for key in s3.list_keys(bucket, prefix=prefix) or []:
        if not key.endswith(".json"):
            continue
        try:
            found = json.loads(s3.conn.get_object(Bucket=bucket, Key=key)["Body"].read())
            if isinstance(found, dict) and isinstance(found.get("time"), str):
                rounds.append(found)
                continue
        except ValueError:
            pass
        log.warning("Skipping s3://%s/%s: not a round of the quality history", bucket, key)
    rounds = [r for r in rounds if transform_id is None or r.get("transform_id") == transform_id]
    return sorted(rounds, key=lambda r: str(r["time"]))


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

    :param rounds: oldest first, as :func:`read_history` gives them; the last is this evaluation.
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
        if kept and kept[-1].get("label_count") == r.get("label_count"):
            kept[-1] = r
        else:
            kept.append(r)
    return kept


def table(rounds: list[dict[str, Any]]) -> str:
    """The rounds as a text table, for the log."""
    lines = [f"{'round':>5} {'time':<20} {'labels':>7} {'F1':>7} {'precision':>9} {'recall':>7} {'AUPRC':>7}"]
    for number, r in enumerate(rounds, start=1):
        values = [_number(r.get(name)) for name in ("F1", "Precision", "Recall", "AreaUnderPRCurve")]
        lines.append(
            f"{number:>5} {str(r.get('time'))[:19]:<20} {r.get('label_count')!s:>7} "
            f"{values[0]:>7} {values[1]:>9} {values[2]:>7} {values[3]:>7}"
        )
    return "\n".join(lines)


def _count(round_: dict[str, Any]) -> int:
    count = round_.get("label_count")
    return count if isinstance(count, int) else 0


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def chart_svg(rounds: list[dict[str, Any]], width: int = 560, height: int = 300) -> str:
    """F1, precision and recall against the label count, round by round, as an SVG image."""
    margin = {"left": 48, "right": 110, "top": 16, "bottom": 40}
    plot_w, plot_h = width - margin["left"] - margin["right"], height - margin["top"] - margin["bottom"]
    counts = [_count(r) for r in rounds] or [0]
    low, high = min(counts), max(counts)
    span = (high - low) or 1

    def x(count: float) -> float:
        return margin["left"] + (count - low) / span * plot_w if high != low else margin["left"] + plot_w / 2

    def y(value: float) -> float:
        return margin["top"] + (1 - value) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="#fff"/>',
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{margin["left"]}" x2="{margin["left"] + plot_w}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}" stroke="#e3e6ee"/><text x="{margin["left"] - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end" fill="#5b6478">{tick:g}</text>'
        )
    for count in dict.fromkeys(counts):
        parts.append(
            f'<text x="{x(count):.1f}" y="{margin["top"] + plot_h + 16}" text-anchor="middle" '
            f'fill="#5b6478">{escape(str(count))}</text>'
        )
    parts.append(
        f'<text x="{margin["left"] + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        'fill="#1d2433">labels (LabelCount)</text>'
    )
    series = (("F1", "#5b3fd1"), ("Precision", "#00798c"), ("Recall", "#d1495b"))
    for number, (name, color) in enumerate(series):
        points = [(x(_count(r)), y(r[name])) for r in rounds if isinstance(r.get(name), int | float)]
        if points:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>' for px, py in points)
        legend_y = margin["top"] + 14 + 18 * number
        parts.append(
            f'<rect x="{width - margin["right"] + 14}" y="{legend_y - 9}" width="12" height="3" fill="{color}"/>'
            f'<text x="{width - margin["right"] + 32}" y="{legend_y - 4}" fill="#1d2433">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
