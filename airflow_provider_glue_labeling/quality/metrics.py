"""Glue's estimate of a FindMatches transform's quality: ``EvaluationMetrics.FindMatchesMetrics``.

What an evaluation reads of it, a round of the history keeps of it and the labeling page shows of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Each metric of FindMatchesMetrics that has a threshold, and the evaluation operator's parameter
# that sets it; in the order the quality gate lists them.
METRICS = (
    ("F1", "min_f1"),
    ("Precision", "min_precision"),
    ("Recall", "min_recall"),
    ("AreaUnderPRCurve", "min_area_under_pr_curve"),
)
# The metrics of FindMatchesMetrics that are numbers (the rest: ``ConfusionMatrix``, ``ColumnImportances``).
METRIC_NAMES = tuple(name for name, _ in METRICS)


def find_matches_metrics(transform: Mapping[str, Any]) -> dict[str, Any]:
    """A transform's last evaluation: its ``EvaluationMetrics.FindMatchesMetrics``, as Glue gives
    them, or an empty dict when it has not been evaluated.

    :param transform: Glue's ``GetMLTransform`` answer.
    """
    found = (transform.get("EvaluationMetrics") or {}).get("FindMatchesMetrics")
    return found if isinstance(found, dict) else {}


def numbers(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Each of :data:`METRIC_NAMES` in ``metrics``, None where it is missing.

    :param metrics: ``FindMatchesMetrics``, or a round of the history.
    """
    return {name: metrics.get(name) for name in METRIC_NAMES}
