"""A labeling set as a team left it: the first copy of every set, the second copy of the
overlapped sets and the adjudicators' decisions, turned into the agreement figures, the gate and
the labels file (with :mod:`~airflow_provider_glue_labeling.labels.agreement`'s rules). The
labeling page's submit and the labeling task's check of a labels file both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from airflow_provider_glue_labeling.labels.agreement import (
    COPIES,
    Copy,
    SetAgreement,
    check_agreement,
    compare,
    pair_f1,
    pair_kappa,
    second_copies,
    settle,
)
from airflow_provider_glue_labeling.labels.format import LabelingSet
from airflow_provider_glue_labeling.labels.labelers import labeler_agreement


def people_of(draft: Mapping[str, Any]) -> list[str]:
    """Who worked on a copy (claimed or saved it), first first: a kept draft's ``people``, or its
    last saver for a draft kept before copies had people.

    :param draft: a kept draft (``{"groups", "done", "by", ...}``).
    """
    found = draft.get("people")
    return (
        [str(p) for p in found] if isinstance(found, list) else [str(draft["by"])] if draft.get("by") else []
    )


@dataclass(frozen=True)
class Team:
    """A labeling set as a team left it: the first copy of every set, the second copy of the
    overlapped sets, and the adjudicators' decisions, each kept as a draft (``{"groups", "done",
    "by", ...}``, as the labeling page keeps them). The one place that turns them into figures,
    a gate and a labels file: the labeling page's submit and the labeling task's check of a
    labels file both use it.

    :param labeling_set: the generated labeling set.
    :param overlapped: the sets that get a second copy (:func:`second_copies`).
    :param first: set id to its first copy's draft.
    :param second: set id to its second copy's draft (overlapped sets only).
    :param decisions: set id to its adjudicator's decision, a draft of the whole set.
    """

    labeling_set: LabelingSet
    overlapped: frozenset[str]
    first: Mapping[str, Mapping[str, Any]]
    second: Mapping[str, Mapping[str, Any]]
    decisions: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(
        cls,
        labeling_set: LabelingSet,
        overlap: float,
        first: Mapping[str, Mapping[str, Any]],
        second: Mapping[str, Mapping[str, Any]] | None = None,
        decisions: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Team:
        """The team's work on ``labeling_set`` at ``overlap`` (:func:`second_copies` picks the sets).

        :raises AgreementError: when ``overlap`` is not a number in [0, 1].
        """
        overlapped = frozenset(second_copies(list(labeling_set.sets), overlap))
        return cls(labeling_set, overlapped, first, second or {}, decisions or {})

    def copies(self) -> dict[str, list[Copy]]:
        """Set id to its done copies, the first copy first."""
        return self._done

    @cached_property
    def _done(self) -> dict[str, list[Copy]]:
        """:meth:`copies`, worked out once: a team is frozen, and the page asks per set."""
        done: dict[str, list[Copy]] = {}
        for kept in (self.first, self.second):
            for set_id, draft in kept.items():
                if kept is self.second and set_id not in self.overlapped:
                    continue  # kept from an earlier overlap: this set is labeled once now
                if set_id in self.labeling_set.sets and draft.get("done"):
                    done.setdefault(set_id, []).append(Copy(str(draft.get("by")), list(draft["groups"])))
        return done

    def both_done(self, set_id: str) -> bool:
        """Whether both copies of an overlapped set are done (then neither is hidden)."""
        return set_id in self.overlapped and len(self.copies().get(set_id, ())) == COPIES

    def agreements(self) -> list[SetAgreement]:
        """The overlapped sets with both copies done, compared (:func:`compare`), in the set's order."""
        return self._compared

    @cached_property
    def _compared(self) -> list[SetAgreement]:
        """:meth:`agreements`, worked out once: the page's view, the gate and the summary all ask."""
        copies = self.copies()
        return [
            compare(set_id, *copies[set_id][:COPIES])
            for set_id in self.labeling_set.sets
            if set_id in self.overlapped and len(copies.get(set_id, ())) >= COPIES
        ]

    def gate(self, min_agreement: float | None) -> None:
        """Refuse the labels when a set's copies agree less than ``min_agreement`` and no
        adjudicator settled it (:func:`check_agreement`); None: no gate.

        :param min_agreement: the least kappa taken, from -1 to 1, or None.
        :raises AgreementError: naming each set below it, its kappa and its two labelers.
        """
        if min_agreement is not None:
            check_agreement([a for a in self.agreements() if a.set_id not in self.decisions], min_agreement)

    def labels_file(self) -> bytes:
        """The settled labels file in Glue's format (:func:`settle`)."""
        decided = {s: d["groups"] for s, d in self.decisions.items() if s in self.labeling_set.sets}
        return settle(self.labeling_set, self.copies(), self.overlapped, decided)

    def compared_sets(self) -> list[dict[str, Any]]:
        """Each set with both copies done as the page shows it: who labeled it, the copies' F1 and
        kappa, the records in dispute, and whether an adjudicator settled it."""
        return [
            {
                "set_id": a.set_id,
                "people": list(a.people),
                "f1": round(a.f1, 4),
                "kappa": round(a.kappa, 4),
                "disagreements": list(a.disagreements),
                "settled": a.set_id in self.decisions,
            }
            for a in self.agreements()
        ]

    def summary(self) -> dict[str, Any]:
        """The team's agreement as the quality history, the chart and the asset events keep it:
        the sets compared, the pooled kappa and F1 over their pairs (None when none), the sets
        settled by an adjudicator, and each labeler's pooled kappa, F1, sets and pairs and their
        estimated share of records misgrouped (None when the pairings cannot tell), the most
        misgrouping first."""
        found = self.agreements()
        counts = [sum(getattr(a, n) for a in found) for n in ("both", "first_only", "second_only", "neither")]
        return {
            "overlapped_sets": len(self.overlapped),
            "compared_sets": len(found),
            "pairs": sum(counts),
            "kappa": round(pair_kappa(*counts), 4) if found else None,
            "f1": round(pair_f1(*counts[:3]), 4) if found else None,
            "settled_sets": sorted(s for s in self.decisions if s in self.labeling_set.sets),
            "labelers": {
                person: {
                    "kappa": round(a.kappa, 4),
                    "f1": round(a.f1, 4),
                    "sets": a.sets,
                    "pairs": a.pairs,
                    "error": None if a.error is None else round(a.error, 4),
                }
                for person, a in labeler_agreement(found).items()
            },
        }
