"""Stopping benchmark: where does the evaluation's decision stop asking for labels, against the truth?

Run with ``make bench-stopping`` (``python bench/stopping_bench.py --first-seed N --seeds K``).
The teaching loop runs on the emulator, in process (real boto3 clients, no network): generate a
labeling set (about 100 records), label it from the known truth, import the labels, evaluate,
record the round. Each seed is a population of ``people(1500, seed=s)``, about 2,000 records and
490 true pairs, so that a change of 0.01 in F1 is about five pairs, not one. After each round the
emulator also reports the transform's *true* F1 against the full truth (which Glue cannot know).

The loop runs 20 rounds. The decision is asked after each of the first 15 (the horizon); the
last rounds only show where the true F1 goes:

* **plateau**: the mean true F1 of rounds 18 to 20;
* **stop**: the first round whose decision is "good enough" or "plateau". A run with no such
  decision by round 15 is a *no decision* run: its budget (``max_rounds=15``, set at the horizon
  so that the evidence, not a budget, does the stopping) stops it at round 15, and it is reported
  with the labels it spent there;
* **loss**: the plateau minus the true F1 at the stop; **premature**: a loss above ``min_gain``
  (a no-decision run can be premature too);
* **oracle**: the first round whose true F1 is within ``min_gain`` of the plateau, and its labels.

Rules, each at the example DAG's defaults unless named (``min_f1=0.9``, ``min_gain=0.01``,
``over_rounds=3``, ``label_floor=10``, ``require_lower_bound=False``):

* ``defaults``: the thresholds and the plateau rule together, as the example DAG decides;
* ``defaults, lower bound``: with ``require_lower_bound=True``;
* ``plateau rule alone``: no thresholds.

The rule's scale factors were chosen on seeds 0-19 of ``people(400)``; docs/teaching-rounds.md
reports seeds 1000-1099, never used to choose anything. The last line printed is one JSON object
for ``defaults``: ``{"seeds", "premature", "no_decision", "labels_median", "labels_mean",
"oracle_labels_median", "f1_loss_mean", "f1_loss_p90"}``. Everything is written to
``bench/results/stopping.json``, and the chart of one seed (estimated F1 with its 95 % band,
the true F1, the stop and the oracle) to ``bench/results/stopping.svg``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from emulated import ROOT, emulated_transform, seed_parser, seeds_of

RESULTS = ROOT / "bench" / "results"
PEOPLE = 1500
# The example DAG's defaults.
MIN_GAIN, MIN_F1, OVER_ROUNDS, LABEL_FLOOR, LOWER_BOUND = 0.01, 0.9, 3, 50, True
HORIZON, ROUNDS, PLATEAU_ROUNDS = 15, 20, 3
DEFAULTS = {
    "thresholds": {"F1": MIN_F1},
    "require_lower_bound": LOWER_BOUND,
    "label_floor": LABEL_FLOOR,
    "over_rounds": OVER_ROUNDS,
}
RULES: dict[str, dict[str, Any]] = {
    "defaults": DEFAULTS,
    "defaults, F1 estimate": {**DEFAULTS, "require_lower_bound": False},
    "plateau rule alone": {**DEFAULTS, "thresholds": {}},
    **{f"label_floor {n}": {**DEFAULTS, "label_floor": n} for n in (10, 30, 70)},
    "over_rounds 6": {**DEFAULTS, "over_rounds": 6},
    # Baselines that read no evidence: stop after a fixed number of rounds.
    **{f"stop at round {n}": {"fixed": n} for n in (6, 9, 12, 15)},
}


def teach(seed: int, rounds: int = ROUNDS) -> list[dict[str, Any]]:
    """The teaching loop on the emulator: each round's record, with ``TrueF1`` beside Glue's metrics."""
    from airflow_provider_glue_labeling.emulator.seed import people
    from airflow_provider_glue_labeling.quality.rounds import make_round

    out = []
    with emulated_transform(people(PEOPLE, seed=seed), name=f"people-{seed}") as transform:
        for number in range(rounds):
            transform.label_from_truth(number)
            evaluation = transform.run("start_ml_evaluation_task_run")
            round_ = make_round(
                dict(transform.glue.get_ml_transform(TransformId=transform.transform_id)),
                evaluation,
                None,
                None,
            )
            round_["time"] = f"{number:04d}"
            round_["TrueF1"] = transform.true_f1()
            out.append(round_)
    return out


def judge(rounds: list[dict[str, Any]], rule: dict[str, Any]) -> dict[str, Any]:
    """Where ``rule`` stops on these rounds, against the plateau and the oracle of the true F1."""
    from airflow_provider_glue_labeling.history import BUDGET_SPENT, KEEP_LABELING, decide

    true_f1 = [r["TrueF1"] for r in rounds]
    plateau = statistics.mean(true_f1[-PLATEAU_ROUNDS:])
    if "fixed" in rule:
        decisions = ["stop"] * rule["fixed"]
    else:
        decisions = []
        for number in range(1, HORIZON + 1):
            decided = decide(
                rounds[:number],
                MIN_GAIN,
                rule["over_rounds"],
                rule["thresholds"],
                label_floor=rule["label_floor"],
                require_lower_bound=rule["require_lower_bound"],
                max_rounds=HORIZON,
            )["decision"]
            decisions.append(decided)
            if decided != KEEP_LABELING:
                break
    stop = len(decisions) - 1
    oracle = next(n for n, f1 in enumerate(true_f1) if f1 >= plateau - MIN_GAIN)
    loss = plateau - true_f1[stop]
    return {
        "decision": decisions[-1],
        "no_decision": decisions[-1] in (BUDGET_SPENT, KEEP_LABELING),
        "round": stop + 1,
        "labels": rounds[stop]["LabelCount"],
        "true_f1": round(true_f1[stop], 4),
        "plateau": round(plateau, 4),
        "loss": round(loss, 4),
        "premature": loss > MIN_GAIN,
        "oracle_round": oracle + 1,
        "oracle_labels": rounds[oracle]["LabelCount"],
    }


def summary(judged: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one rule over the seeds (the benchmark's JSON line for ``defaults``)."""
    losses = sorted(j["loss"] for j in judged)
    labels = [j["labels"] for j in judged]
    return {
        "seeds": len(judged),
        "premature": sum(j["premature"] for j in judged),
        "no_decision": sum(j["no_decision"] for j in judged),
        "labels_median": statistics.median(labels),
        "labels_mean": round(statistics.mean(labels), 1),
        "oracle_labels_median": statistics.median(j["oracle_labels"] for j in judged),
        "f1_loss_mean": round(statistics.mean(losses), 4),
        "f1_loss_p90": round(statistics.quantiles(losses, n=10, method="inclusive")[-1], 4),
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| rule | premature (loss > min_gain) | no decision by round 15 | labels at stop (median, mean) "
        "| oracle's labels (median) | F1 loss (mean, 90th percentile) |",
        "|---|---|---|---|---|---|",
    ]
    for name, found in results.items():
        lines.append(
            f"| {name} | {found['premature']} of {found['seeds']} | {found['no_decision']} of {found['seeds']} | "
            f"{found['labels_median']:g}, {found['labels_mean']:g} | {found['oracle_labels_median']:g} | "
            f"{found['f1_loss_mean']:.4f}, {found['f1_loss_p90']:.4f} |"
        )
    return "\n".join(lines)


def chart(rounds: list[dict[str, Any]], judged: dict[str, Any]) -> str:
    """One seed's estimated F1 (with its band) and true F1, marking the stop and the oracle."""
    from airflow_provider_glue_labeling.history import chart_svg

    series = (("F1", "estimated F1", "#5b3fd1"), ("TrueF1", "true F1", "#d1495b"))
    marks = {judged["oracle_labels"]: "oracle"}
    note = f"stop ({judged['decision']})"
    marks[judged["labels"]] = f"{marks[judged['labels']]}, {note}" if judged["labels"] in marks else note
    return chart_svg(rounds, series=series, marks=marks)


def tradeoff(results: dict[str, dict[str, Any]]) -> str:
    """An SVG of each rule and setting: median labels at stop against mean F1 lost, with the
    oracle's median labels and ``min_gain`` as guides; the defaults are drawn larger."""
    width, height, left, bottom, top, right = 640, 400, 60, 50, 20, 150
    most_labels = HORIZON * 100 + 100
    most_loss = max(0.03, *(found["f1_loss_mean"] for found in results.values())) * 1.1

    def x(labels: float) -> float:
        return left + labels / most_labels * (width - left - right)

    def y(loss: float) -> float:
        return top + (1 - max(loss, 0.0) / most_loss) * (height - top - bottom)

    oracle = statistics.median(found["oracle_labels_median"] for found in results.values())
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<line x1="{left}" y1="{y(0)}" x2="{width - right}" y2="{y(0)}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{y(0)}" stroke="#333"/>',
        f'<line x1="{left}" y1="{y(MIN_GAIN):.1f}" x2="{width - right}" y2="{y(MIN_GAIN):.1f}" stroke="#999" '
        f'stroke-dasharray="4 3"/><text x="{width - right + 4}" y="{y(MIN_GAIN) + 4:.1f}">min_gain</text>',
        f'<line x1="{x(oracle):.1f}" y1="{top}" x2="{x(oracle):.1f}" y2="{y(0)}" stroke="#999" '
        f'stroke-dasharray="4 3"/><text x="{x(oracle) + 4:.1f}" y="{top + 10}">oracle (median)</text>',
    ]
    for labels in range(0, most_labels + 1, 500):
        parts.append(f'<text x="{x(labels):.1f}" y="{y(0) + 16}" text-anchor="middle">{labels}</text>')
    for step in range(0, int(most_loss * 1000) + 1, 10):
        parts.append(
            f'<text x="{left - 6}" y="{y(step / 1000) + 4:.1f}" text-anchor="end">{step / 1000:.2f}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">labels at stop (median)</text>'
    )
    parts.append(
        f'<text x="14" y="{(top + y(0)) / 2}" transform="rotate(-90 14 {(top + y(0)) / 2})" '
        'text-anchor="middle">F1 lost at stop (mean)</text>'
    )
    for name, found in results.items():
        px, py = x(found["labels_median"]), y(found["f1_loss_mean"])
        colour = "#5b3fd1" if name == "defaults" else "#999" if name.startswith("stop at") else "#d1495b"
        radius = 6 if name == "defaults" else 4
        parts.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{radius}" fill="{colour}"><title>{name}</title></circle>'
        )
        parts.append(f'<text x="{px + 7:.1f}" y="{py - 5:.1f}" fill="{colour}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = seed_parser(__doc__, 100)
    parser.add_argument("--reuse", action="store_true", help="judge the rounds of the last run again")
    args, seeds = seeds_of(parser, argv)
    started = time.monotonic()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.reuse:
        taught = {
            int(seed): found
            for seed, found in json.loads((RESULTS / "stopping.json").read_text())["rounds"].items()
        }
        seeds = [seed for seed in seeds if seed in taught]
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            taught = dict(zip(seeds, pool.map(teach, seeds), strict=True))
    judged = {name: {seed: judge(taught[seed], rule) for seed in seeds} for name, rule in RULES.items()}
    results = {name: summary(list(found.values())) for name, found in judged.items()}
    shown = seeds[0]
    (RESULTS / "stopping.svg").write_text(chart(taught[shown], judged["defaults"][shown]))
    (RESULTS / "stopping-tradeoff.svg").write_text(tradeoff(results))
    (RESULTS / "stopping.json").write_text(
        json.dumps({"results": results, "runs": judged, "rounds": taught}, indent=1)
    )
    print(table(results))
    print(
        f"\nseeds {seeds[0]}-{seeds[-1]}, people({PEOPLE}); decisions over {HORIZON} rounds of ~100 labels, "
        f"plateau = mean true F1 of rounds {ROUNDS - PLATEAU_ROUNDS + 1}-{ROUNDS}; the chart shows seed {shown}; "
        f"{time.monotonic() - started:.0f} s; written to {RESULTS}/stopping.json, stopping.svg "
        "and stopping-tradeoff.svg"
    )
    print(json.dumps(results["defaults"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
