"""The quality history as a chart: F1, precision and recall against the label count, with their intervals."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from airflow_provider_glue_labeling.quality.rounds import label_count, round_intervals

# What the chart draws by default: (key in a round, legend, colour).
SERIES = (("F1", "F1", "#5b3fd1"), ("Precision", "Precision", "#00798c"), ("Recall", "Recall", "#d1495b"))

# The labels' agreement (Cohen's kappa of the sets labeled twice), drawn when rounds carry it.
AGREEMENT_SERIES = ("AgreementKappa", "Agreement (kappa)", "#b7791f")


def with_agreement(round_: dict[str, Any]) -> dict[str, Any]:
    """A round with its labels' kappa as a top-level number (``AgreementKappa``), when it has one."""
    kappa = (round_.get("agreement") or {}).get("kappa")
    return {**round_, AGREEMENT_SERIES[0]: kappa} if isinstance(kappa, int | float) else round_


def chart_svg(
    rounds: list[dict[str, Any]],
    width: int = 560,
    height: int = 300,
    series: tuple[tuple[str, str, str], ...] = SERIES,
    marks: dict[int, str] | None = None,
) -> str:
    """F1, precision and recall against the label count, round by round, as an SVG image; each
    with its 95 % interval as a band where the rounds have one; and the labels' agreement (kappa)
    where the rounds carry it.

    :param series: what to draw: (key in a round, legend, colour) each.
    :param marks: label counts to mark with a dashed line and a note (e.g. where a rule stopped).
    """
    rounds = [with_agreement(r) for r in rounds]
    if series == SERIES and any(AGREEMENT_SERIES[0] in r for r in rounds):
        series = (*series, AGREEMENT_SERIES)
    margin = {"left": 48, "right": 110, "top": 16, "bottom": 40}
    plot_w, plot_h = width - margin["left"] - margin["right"], height - margin["top"] - margin["bottom"]
    counts = [(label_count(r) or 0) for r in rounds] or [0]
    low, high = min(counts), max(counts)
    span = (high - low) or 1

    def x(count: float) -> float:
        return margin["left"] + (count - low) / span * plot_w if high != low else margin["left"] + plot_w / 2

    def y(value: float) -> float:
        return margin["top"] + (1 - min(max(value, 0.0), 1.0)) * plot_h  # a kappa may be below 0

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
    for number, (name, legend, color) in enumerate(series):
        drawn = [r for r in rounds if isinstance(r.get(name), int | float)]
        points = [(x(label_count(r) or 0), y(r[name])) for r in drawn]
        bands = [((round_intervals(r) or {}).get(name), label_count(r) or 0) for r in drawn]
        if points and all(band for band, _ in bands):
            upper = [f"{x(count):.1f},{y(band[1]):.1f}" for band, count in bands if band]
            lower = [f"{x(count):.1f},{y(band[0]):.1f}" for band, count in reversed(bands) if band]
            parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="0.15"/>')
        if points:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>' for px, py in points)
        legend_y = margin["top"] + 14 + 18 * number
        parts.append(
            f'<rect x="{width - margin["right"] + 14}" y="{legend_y - 9}" width="12" height="3" fill="{color}"/>'
            f'<text x="{width - margin["right"] + 32}" y="{legend_y - 4}" fill="#1d2433">{escape(legend)}</text>'
        )
    for number, (count, note) in enumerate((marks or {}).items()):
        right = x(count) > margin["left"] + plot_w / 2  # the note goes left of a mark in the right half
        parts.append(
            f'<line x1="{x(count):.1f}" x2="{x(count):.1f}" y1="{margin["top"]}" y2="{margin["top"] + plot_h}" '
            f'stroke="#5b6478" stroke-dasharray="4 3"/><text x="{x(count) + (-4 if right else 4):.1f}" '
            f'y="{margin["top"] + plot_h - 8 - 14 * number}" text-anchor="{"end" if right else "start"}" '
            f'fill="#1d2433">{escape(note)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
