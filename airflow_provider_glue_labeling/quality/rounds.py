"""A transform's quality round by round, kept in S3: one JSON object per evaluation.

AWS's advice for FindMatches is to label, import, evaluate and repeat until the quality estimate
plateaus. Each evaluation with a ``history_s3_path`` records a round there, named by its
evaluation's TaskRunId: S3 has no append, so two writers at once write two objects and no round
is lost, and a retry that records the same evaluation again rewrites its own object. The history
outlives Airflow's metadata clean-up.

A round: ``time``, ``task_run_id``, ``transform_id``, ``LabelCount`` and Glue's metrics
(``Precision``, ``Recall``, ``F1``, ``AreaUnderPRCurve``, ``ConfusionMatrix``), the 95 % intervals
of precision, recall and F1 from the confusion matrix (``Intervals``, :mod:`.intervals`), with
the DAG and run that evaluated, and with the plateau rule its ``decision`` and ``reason``. Rounds
recorded before the label count was named ``LabelCount`` carry it as ``label_count``;
:func:`label_count` reads both. When the labels were labeled with an overlap, the round carries
their ``agreement`` (kappa and F1 of the sets labeled twice, each labeler's), which the labeling
task kept in the same prefix (``agreement-<hash of the labels file>.json``, :func:`record_agreement`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from airflow_provider_glue_labeling.labels.files import S3Files, as_prefix
from airflow_provider_glue_labeling.quality.intervals import intervals
from airflow_provider_glue_labeling.quality.metrics import find_matches_metrics, numbers
from airflow_provider_glue_labeling.validation import check_s3_uri

log = logging.getLogger(__name__)


def label_count(round_: dict[str, Any]) -> int | None:
    """A round's ``LabelCount`` (``label_count`` in rounds recorded before it took Glue's name)."""
    count = round_.get("LabelCount", round_.get("label_count"))
    return count if isinstance(count, int) else None


def _prefix(history_s3_path: str) -> tuple[str, str]:
    bucket, key = check_s3_uri("history_s3_path", history_s3_path)
    return bucket, as_prefix(key)


def make_round(
    transform: dict[str, Any], task_run_id: str, dag_id: str | None, run_id: str | None
) -> dict[str, Any]:
    """A round from ``GetMLTransform`` after an evaluation: when, label count, metrics, which run."""
    metrics = find_matches_metrics(transform)
    return {
        "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        "task_run_id": task_run_id,
        "transform_id": transform.get("TransformId"),
        "LabelCount": transform.get("LabelCount"),
        **numbers(metrics),
        "ConfusionMatrix": metrics.get("ConfusionMatrix"),
        "Intervals": intervals(metrics),
        "dag_id": dag_id,
        "run_id": run_id,
    }


def record_round(s3: S3Files, history_s3_path: str, round_: dict[str, Any]) -> str:
    """Write one round as its own object under ``history_s3_path``, named by its run; return its key."""
    bucket, prefix = _prefix(history_s3_path)
    key = f"{prefix}round-{round_['task_run_id']}.json"
    s3.write(bucket, key, json.dumps(round_).encode())
    return key


# The labels' agreement (the labeling task's), kept beside the rounds until an evaluation takes it.
AGREEMENT = "agreement-"
# What a round keeps of it.
AGREEMENT_FACTS = ("kappa", "f1", "compared_sets", "pairs", "settled_sets", "labelers", "labels_s3_path")


def record_agreement(
    s3: S3Files, history_s3_path: str, transform_id: str, labels_s3_path: str, summary: dict[str, Any]
) -> str:
    """Keep the agreement of a labels file's copies (:meth:`~.labels.agreement.Team.summary`) in
    the history, one object per labels file; the next evaluation's round takes the newest.

    :param labels_s3_path: the labels file it is the agreement of.
    """
    bucket, prefix = _prefix(history_s3_path)
    name = hashlib.sha256(labels_s3_path.encode()).hexdigest()[:16]
    key = f"{prefix}{AGREEMENT}{name}.json"
    kept = {
        "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        "transform_id": transform_id,
        "labels_s3_path": labels_s3_path,
        **summary,
    }
    s3.write(bucket, key, json.dumps(kept).encode())
    return key


def newest_agreement(
    s3: S3Files, history_s3_path: str, transform_id: str, after: str | None
) -> dict[str, Any] | None:
    """The newest agreement kept for ``transform_id`` after the time ``after`` (the last round's;
    None: any), or None: what this round's labels agreed on.

    :param after: an ISO 8601 time, as rounds keep it.
    """
    bucket, prefix = _prefix(history_s3_path)
    found = []
    for key in s3.keys(bucket, prefix + AGREEMENT):
        try:
            kept = json.loads(s3.read(bucket, key))
        except ValueError:
            continue
        if (
            isinstance(kept, dict)
            and kept.get("transform_id") == transform_id
            and isinstance(kept.get("time"), str)
        ):
            found.append(kept)
    found = [k for k in found if after is None or k["time"] > after]
    return max(found, key=lambda k: k["time"]) if found else None


def read_rounds(s3: S3Files, history_s3_path: str, transform_id: str | None = None) -> list[dict[str, Any]]:
    """The rounds recorded under ``history_s3_path``, oldest first; an object that is not a round is skipped.

    :param transform_id: only this transform's rounds (when transforms share a prefix).
    """
    bucket, prefix = _prefix(history_s3_path)
    rounds = []
    for key in s3.keys(bucket, prefix):
        if not key.endswith(".json") or key.rsplit("/", 1)[-1].startswith(AGREEMENT):
            continue
        try:
            found = json.loads(s3.read(bucket, key))
            if isinstance(found, dict) and isinstance(found.get("time"), str):
                rounds.append(found)
                continue
        except ValueError:
            pass
        log.warning("Skipping s3://%s/%s: not a round of the quality history", bucket, key)
    rounds = [r for r in rounds if transform_id is None or r.get("transform_id") == transform_id]
    return sorted(rounds, key=lambda r: str(r["time"]))


def table(rounds: list[dict[str, Any]]) -> str:
    """The rounds as a text table for the log, each estimate with its 95 % interval when known."""
    lines = [
        f"{'round':>5} {'time':<20} {'labels':>7} {'F1':>23} {'precision':>23} {'recall':>23} {'AUPRC':>7}"
        "  decision"
    ]
    for number, r in enumerate(rounds, start=1):
        bounds = round_intervals(r) or {}
        shown = [with_interval(r.get(name), bounds.get(name)) for name in ("F1", "Precision", "Recall")]
        lines.append(
            f"{number:>5} {str(r.get('time'))[:19]:<20} {label_count(r)!s:>7} "
            f"{shown[0]:>23} {shown[1]:>23} {shown[2]:>23} {_number(r.get('AreaUnderPRCurve')):>7}"
            f"  {r.get('decision') or '-'}"
        )
    return "\n".join(lines)


def round_intervals(round_: dict[str, Any]) -> dict[str, list[float]] | None:
    """A round's intervals: as recorded, or from its confusion matrix (rounds recorded before
    intervals were kept); None when it has neither."""
    kept = round_.get("Intervals")
    return kept if isinstance(kept, dict) and "F1" in kept else intervals(round_)


def with_interval(value: Any, bounds: list[float] | None) -> str:
    """An estimate with its 95 % interval, both to 4 places as the intervals are recorded
    (``0.8333 [0.6823, 0.9155]``); the estimate alone without an interval, ``-`` without an estimate.

    :param value: a metric of a round (``F1``, ``Precision``...).
    :param bounds: its interval, ``[low, high]``, from :func:`round_intervals`, or None.
    """
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.4f} [{bounds[0]:.4f}, {bounds[1]:.4f}]" if bounds else f"{value:.4f}"


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"
