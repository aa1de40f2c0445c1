"""Agreement benchmark: does overlap name a careless labeler, and do the gate and adjudication keep
the transform's true F1 near what perfect labels give, at what extra labels?

Run with ``make bench-agreement`` (``python bench/agreement_bench.py --first-seed N --seeds K``).
The teaching loop runs on the emulator, in process (real boto3 clients, no network): each round
generates a labeling set (about 100 records in 10 sets), a simulated team labels it, the labels
file of every round so far is imported (``ReplaceAllLabels``, so that a set settled again later
replaces its labels), and after ``ROUNDS`` rounds the emulator reports the transform's *true* F1
against the full truth. A seed is a population of ``people(1500, seed=s)``; every condition of a
seed runs its own transform over the same data and gets the same labeling sets.

The team: three labelers who label from the truth but misgroup a share of records (each such
record is moved into another group of its set, or split off into a group of its own): ``ana``
and ``ben`` misgroup ``CAREFUL_ERROR`` (2 %), ``cy`` misgroups ``CARELESS_ERROR`` (20 %). A
person's copy of a set is the same in every condition (its randomness is seeded by seed, set
and person). The sets of a round go to the labelers in turn; the sets
:func:`~airflow_provider_glue_labeling.labels.agreement.second_copies` picks for the overlap go
to a second, different labeler (``check_taker``) at random. Everything the team measures is
computed by ``airflow_provider_glue_labeling.labels.agreement`` (``compare``,
``labels.labelers.labeler_agreement``, ``below_agreement``/``check_agreement``, ``settle``), the code the
labeling page uses.

**Named**: after the last round, the labeler ``labeler_agreement`` ranks first (the highest
estimated share of records misgrouped, from the records each pair of labelers' copies must move
to agree; the lowest pooled kappa where the pairings cannot tell) is the careless one; the named
rate is the share of seeds where it is, with everyone labeling throughout, at overlap 0.1, 0.2
and 0.3.

**Policy** ("gate and adjudication"), each round:

* an overlapped set below ``MIN_AGREEMENT`` (kappa of its two copies) is refused by the gate
  and labeled again, whole, by the third labeler (the one holding neither copy; either of the
  two when there is none); that copy is taken, and its labels count as extra;
* an overlapped set at or above it whose copies disagree is adjudicated by the third labeler:
  the records they disagree on are placed where their entity is (the adjudicator errs at their
  own rate); the rest keep the grouping both copies agree on;
* once the first-ranked labeler's estimated share of records misgrouped rests on at least
  ``NAME_MIN_SETS`` sets, is at least ``NAME_ABOVE`` and above every other labeler's by
  ``NAME_MARGIN`` or more, the team names that labeler: they get no more sets, and each set they
  labeled alone so far leaves the labels file (its labels are dropped: nobody checked them).
  A variant labels those sets again instead, by one of the others, whose copy is taken (extra
  labels).

Conditions: **perfect labels** (the truth); **no overlap** (every set once, careless labels go
in); **overlap 0.2, first copy** (the second copies only measure; the first copy is taken: no
gate, no adjudication); **overlap 0.2, gate and adjudication, nobody named** (the policy without
its last point); the policy at overlap 0.1, 0.2 and 0.3; and at 0.2 the variant that labels a
named labeler's sets again. **Extra labels**: the share of all labels given that are not a
set's first copy (second copies, sets labeled again); **dropped**: the share of all labels
given that the labels file leaves out (a named labeler's unchecked sets); records adjudicated
are reported beside them. **F1 gap**: the true F1 with perfect labels minus the
condition's, per seed (negative when the condition's transform does better). **Labels' F1**:
the imported labels file against the truth, every set's pairs pooled (1 for perfect labels): what
the team's work is worth, whatever the emulator's model makes of it.

``MIN_AGREEMENT`` was chosen on seeds 0-19, ``NAME_ABOVE``, ``NAME_MIN_SETS`` and ``NAME_MARGIN``
on seeds 0-199 (the labeling sets and the team only, no transform: the careless labeler named
often, a careful one seldom, at few extra labels);
docs/agreement.md reports seeds 1000-1049, never used to choose anything. The last line printed
is one JSON object for the policy at overlap 0.2: ``{"seeds", "overlap", "named_rate",
"f1_gap", "extra_labels_share"}``. Everything is written to ``bench/results/agreement.json``.
"""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from emulated import ROOT, emulated_transform, seed_parser, seeds_of

from airflow_provider_glue_labeling.labels.agreement import (
    AgreementError,
    Copy,
    SetAgreement,
    below_agreement,
    check_agreement,
    check_taker,
    compare,
    second_copies,
    settle,
)
from airflow_provider_glue_labeling.labels.format import LabelingSet
from airflow_provider_glue_labeling.labels.labelers import labeler_agreement

RESULTS = ROOT / "bench" / "results"
PEOPLE, ROUNDS, KEY = 1500, 8, "id"
CAREFUL_ERROR, CARELESS_ERROR = 0.02, 0.20
ERROR = {"ana": CAREFUL_ERROR, "ben": CAREFUL_ERROR, "cy": CARELESS_ERROR}
CARELESS = "cy"
OVERLAPS = (0.1, 0.2, 0.3)
# Chosen on seeds 0-19 (MIN_AGREEMENT) and 0-199 (the naming rule).
MIN_AGREEMENT = 0.3
NAME_ABOVE = 0.06
NAME_MIN_SETS = 6
NAME_MARGIN = 0.04


def misgroup(truth: list[str], error: float, rng: random.Random) -> list[str]:
    """A labeler's grouping of one set: the truth, with each record misgrouped with chance ``error``
    (moved into another group of the set, or split off into one of its own)."""
    groups = list(truth)
    for i in range(len(groups)):
        if rng.random() >= error:
            continue
        others = sorted(set(groups) - {groups[i]})
        alone = groups.count(groups[i]) == 1
        groups[i] = rng.choice(others) if others and (alone or rng.random() < 0.5) else f"split-{i}"
    return groups


def adjudicated(
    kept: list[Any], disputed: tuple[int, ...], truth: list[str], error: float, rng: random.Random
) -> list[Any]:
    """An adjudicator's grouping: the records the copies agree on stay as grouped; each record in
    dispute goes where its entity is (with a record not in dispute of the same entity, else with
    its entity's other disputed records), and is misgrouped with chance ``error``."""
    settled: list[Any] = [("kept", g) for g in kept]
    for i in disputed:
        mates = [j for j in range(len(truth)) if j not in disputed and truth[j] == truth[i]]
        settled[i] = settled[mates[0]] if mates else ("entity", truth[i])
    for i in disputed:
        if rng.random() < error:
            others = sorted(set(settled) - {settled[i]}, key=str)
            settled[i] = rng.choice(others) if others else ("split", i)
    return settled


@dataclass
class Team:
    """The simulated team labeling the rounds of one seed under one condition."""

    seed: int
    truth: dict[str, str]
    overlap: float = 0.0
    mode: str = "first"  # "first": the first copy is taken; "policy": gate, adjudication
    act_on_named: bool = False
    old_sets: str = "drop"  # what naming does to the named labeler's unchecked sets: "drop", "relabel"
    files: list[bytes] = field(default_factory=list)
    truths: dict[str, list[str]] = field(default_factory=dict)
    copies: dict[str, list[Copy]] = field(default_factory=dict)
    overlapped: set[str] = field(default_factory=set)
    decisions: dict[str, list[Any]] = field(default_factory=dict)
    agreements: dict[str, SetAgreement] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    named: str | None = None
    named_round: int | None = None
    labels: int = 0
    records: int = 0
    adjudicated: int = 0
    refused: int = 0
    last: bytes = b""

    def rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(str(p) for p in (self.seed, *parts)))

    def copy(self, set_id: str, person: str, purpose: str = "copy") -> Copy:
        self.labels += len(self.truths[set_id])
        return Copy(person, misgroup(self.truths[set_id], ERROR[person], self.rng(set_id, person, purpose)))

    def third(self, holders: list[str]) -> str:
        """Who adjudicates or labels a set again: a labeler holding no copy, else the holder
        ranked most careful so far (:func:`labeler_agreement`)."""
        active = [p for p in ERROR if p != self.named]
        free = [p for p in active if p not in holders]
        if free:
            return free[0] if len(free) == 1 else self.rng("third", *holders).choice(free)
        ranked = list(labeler_agreement(self.agreements.values()))  # the most careless first
        return max(holders, key=lambda p: ranked.index(p) if p in ranked else len(ranked))

    def round(self, number: int, data: bytes) -> bytes:
        """Label one round's labeling set; the labels file of every round so far."""
        self.files.append(data)
        labeling_set = LabelingSet.parse([data])
        key = labeling_set.columns.index(KEY)
        for set_id, rows in labeling_set.sets.items():
            self.truths[set_id] = [self.truth.get(row[key], row[key]) for row in rows]
            self.records += len(rows)
        ids = list(labeling_set.sets)
        doubled = set(second_copies(ids, self.overlap))
        self.overlapped |= doubled
        active = [p for p in ERROR if p != self.named]
        order = self.rng("assign", number)
        start = order.randrange(len(active))
        this_round = []
        for at, set_id in enumerate(ids):
            wanted = 2 if set_id in doubled else 1
            holders: list[str] = []
            for person in [active[(start + at) % len(active)], *order.sample(active, len(active))]:
                if len(holders) == wanted:
                    break
                try:
                    check_taker(set_id, person, holders, wanted)
                except AgreementError:
                    continue
                holders.append(person)
            self.copies[set_id] = [self.copy(set_id, person) for person in holders]
            if wanted == 2:
                found = compare(set_id, *self.copies[set_id])
                self.agreements[set_id] = found
                this_round.append(found)
                self.decide(found)
        if self.mode == "policy":
            try:
                check_agreement(this_round, MIN_AGREEMENT)
            except AgreementError:
                self.refused += 1  # the submit is refused until the sets below are labeled again
            if self.act_on_named and self.named is None:
                self.name(number)
        generated = LabelingSet.parse(self.files)
        kept = LabelingSet(
            generated.columns, {s: r for s, r in generated.sets.items() if s not in self.dropped}
        )
        self.last = settle(kept, self.copies, self.overlapped, self.decisions)
        return self.last

    def decide(self, found: SetAgreement) -> None:
        set_id, first = found.set_id, self.copies[found.set_id][0]
        if self.mode == "first":
            self.decisions[set_id] = list(first.groups)
            return
        if not found.disagreements:
            return
        third = self.third(list(found.people))
        if below_agreement([found], MIN_AGREEMENT):
            self.decisions[set_id] = list(self.copy(set_id, third, "again").groups)
        else:
            self.adjudicated += len(found.disagreements)
            self.decisions[set_id] = adjudicated(
                list(first.groups),
                found.disagreements,
                self.truths[set_id],
                ERROR[third],
                self.rng(set_id, third, "adjudicate"),
            )

    def name(self, number: int) -> None:
        standing = labeler_agreement(self.agreements.values())
        if not standing:
            return
        first, *others = standing.values()
        if (
            first.error is None
            or first.sets < NAME_MIN_SETS
            or first.error < NAME_ABOVE
            or any(first.error - (other.error or 0.0) < NAME_MARGIN for other in others)
        ):
            return
        self.named, self.named_round = first.person, number + 1
        careful = [p for p in ERROR if p != self.named]
        for set_id, copies in self.copies.items():
            if len(copies) == 1 and copies[0].person == self.named and set_id not in self.decisions:
                if self.old_sets == "drop":
                    self.dropped.add(set_id)
                    continue
                person = self.rng("again", set_id).choice(careful)
                self.decisions[set_id] = list(self.copy(set_id, person, "again").groups)

    def labels_file(self, number: int, data: bytes) -> tuple[bytes, bool]:
        """The loop's labeler: every round's settled labels, to import in place of the last."""
        return self.round(number, data), True

    def label_quality(self, labels_file: bytes) -> dict[str, float]:
        """The labels file against the truth: every set's pairs pooled, the file's grouping as one
        copy and the truth as the other (pairwise F1 and kappa; 1 for perfect labels)."""
        settled = LabelingSet.parse([labels_file])
        key = settled.columns.index(KEY)
        rows: dict[str, list[str]] = {}
        for set_id, label, *_ in list(csv.reader(io.StringIO(labels_file.decode())))[1:]:
            rows.setdefault(set_id, []).append(label)
        found = [
            compare(
                set_id,
                Copy("labels file", rows[set_id]),
                Copy("truth", [self.truth.get(r[key], r[key]) for r in records]),
            )
            for set_id, records in settled.sets.items()
        ]
        pooled = labeler_agreement(found)["labels file"]
        return {"labels_f1": pooled.f1, "labels_kappa": pooled.kappa}

    def figures(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "records": self.records,
            "extra_share": (self.labels - self.records) / self.labels if self.labels else 0.0,
            "dropped": sum(len(self.truths[s]) for s in self.dropped),
            "adjudicated": self.adjudicated,
            "refused_rounds": self.refused,
            "named": self.named,
            "named_round": self.named_round,
            **self.label_quality(self.last),
        }


CONDITIONS: dict[str, dict[str, Any]] = {
    "no overlap": {},
    "overlap 0.2, first copy": {"overlap": 0.2},
    "overlap 0.2, gate and adjudication, nobody named": {"overlap": 0.2, "mode": "policy"},
    **{
        f"overlap {o}, gate and adjudication": {"overlap": o, "mode": "policy", "act_on_named": True}
        for o in OVERLAPS
    },
    "overlap 0.2, gate and adjudication, named labeler's sets labeled again": {
        "overlap": 0.2,
        "mode": "policy",
        "act_on_named": True,
        "old_sets": "relabel",
    },
}
POLICY = "overlap 0.2, gate and adjudication"


def teach(seed: int) -> dict[str, Any]:
    """Every condition's teaching loop on the emulator for one seed: true F1 and the team's figures."""
    from airflow_provider_glue_labeling.emulator.seed import label_from_truth, people

    population = people(PEOPLE, seed=seed)
    truth = population[1]
    sets: list[bytes] = []

    def loop(labeler: Callable[[int, bytes], tuple[bytes, bool]]) -> float:
        with emulated_transform(population, name=f"people-{seed}") as transform:
            for number in range(ROUNDS):
                data = transform.labeling_set(number)
                if len(sets) <= number:
                    sets.append(data)
                assert data == sets[number], "every condition gets the same labeling sets"
                body, replace = labeler(number, data)
                transform.import_labels(number, body, replace)
            return transform.true_f1()

    out: dict[str, Any] = {
        "perfect labels": {"true_f1": loop(lambda n, d: (label_from_truth(d, truth, KEY), False))}
    }
    for name, settings in CONDITIONS.items():
        team = Team(seed, truth, **settings)
        out[name] = {"true_f1": loop(team.labels_file), **team.figures()}
    # Who the per-labeler figure names after the last round, everyone labeling throughout.
    named = {}
    for overlap in OVERLAPS:
        team = Team(seed, truth, overlap=overlap)
        for number, data in enumerate(sets):
            team.round(number, data)
        standing = labeler_agreement(team.agreements.values())
        named[str(overlap)] = {
            "first": next(iter(standing)) if standing else None,
            "error": {p: None if a.error is None else round(a.error, 4) for p, a in standing.items()},
            "kappa": {p: round(a.kappa, 4) for p, a in standing.items()},
            "sets": {p: a.sets for p, a in standing.items()},
        }
    return {"conditions": out, "named": named}


def summary(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    seeds = list(runs)
    named_rate = {
        o: sum(runs[s]["named"][str(o)]["first"] == CARELESS for s in seeds) / len(seeds) for o in OVERLAPS
    }
    conditions = {}
    for name in ["perfect labels", *CONDITIONS]:
        found = [runs[s]["conditions"][name] for s in seeds]
        gaps = sorted(
            runs[s]["conditions"]["perfect labels"]["true_f1"] - runs[s]["conditions"][name]["true_f1"]
            for s in seeds
        )
        labels = sum(f.get("labels", 0) for f in found)
        records = sum(f.get("records", 0) for f in found)
        conditions[name] = {
            "true_f1_mean": round(statistics.mean(f["true_f1"] for f in found), 4),
            "labels_f1_mean": round(statistics.mean(f.get("labels_f1", 1.0) for f in found), 4),
            "f1_gap_mean": round(statistics.mean(gaps), 4),
            "f1_gap_max": round(gaps[-1], 4),
            "extra_labels_share": round((labels - records) / labels, 4) if labels else 0.0,
            "dropped_share": round(sum(f.get("dropped", 0) for f in found) / labels, 4) if labels else 0.0,
            "adjudicated_per_seed": round(statistics.mean(f.get("adjudicated", 0) for f in found), 1),
            "named_careless": sum(f.get("named") == CARELESS for f in found),
            "named_other": sum(f.get("named") not in (None, CARELESS) for f in found),
            "named_round_median": statistics.median(
                [f["named_round"] for f in found if f.get("named_round")] or [0]
            ),
        }
    return {"seeds": len(seeds), "named_rate": named_rate, "conditions": conditions}


def table(found: dict[str, Any]) -> str:
    seeds = found["seeds"]
    lines = [
        "| overlap | careless labeler named (ranked first after the last round) |",
        "|---|---|",
        *(f"| {o} | {rate:.0%} of {seeds} |" for o, rate in found["named_rate"].items()),
        "",
        "| condition | true F1 (mean) | F1 gap to perfect labels (mean, max) | labels' pairwise F1 "
        "against the truth | extra labels | dropped | records adjudicated per seed | named in the loop "
        "(careless, other) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, c in found["conditions"].items():
        lines.append(
            f"| {name} | {c['true_f1_mean']:.4f} | {c['f1_gap_mean']:.4f}, {c['f1_gap_max']:.4f} | "
            f"{c['labels_f1_mean']:.4f} | "
            f"{c['extra_labels_share']:.1%} | {c['dropped_share']:.1%} | {c['adjudicated_per_seed']:g} | "
            f"{c['named_careless']}, {c['named_other']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = seed_parser(__doc__, 50)
    args, seeds = seeds_of(parser, argv)
    started = time.monotonic()
    with ProcessPoolExecutor(args.workers) as pool:
        runs = dict(zip(seeds, pool.map(teach, seeds), strict=True))
    found = summary(runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "agreement.json").write_text(json.dumps({"summary": found, "runs": runs}, indent=1))
    print(table(found))
    policy = found["conditions"][POLICY]
    print(
        f"\nseeds {seeds[0]}-{seeds[-1]}, people({PEOPLE}), {ROUNDS} rounds of ~100 records; labelers misgroup "
        f"{CAREFUL_ERROR:.0%}, {CAREFUL_ERROR:.0%} and {CARELESS_ERROR:.0%} of records; min_agreement "
        f"{MIN_AGREEMENT}, named at {NAME_ABOVE:.0%}+ misgrouped, {NAME_MARGIN:.0%} above the others, on "
        f"{NAME_MIN_SETS}+ sets; {time.monotonic() - started:.0f} s; "
        f"written to {RESULTS}/agreement.json"
    )
    print(
        json.dumps(
            {
                "seeds": found["seeds"],
                "overlap": 0.2,
                "named_rate": found["named_rate"][0.2],
                "f1_gap": policy["f1_gap_mean"],
                "extra_labels_share": policy["extra_labels_share"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
