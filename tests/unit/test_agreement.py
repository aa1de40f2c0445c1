"""Agreement of two copies of a labeling set (labels.agreement, labels.groupings), per labeler
(labels.labelers), the gate and settling.

Expected values are worked out by hand in the comments: a set of n records has n(n-1)/2 pairs;
a copy calls a pair a match when both records share its label.
"""

from __future__ import annotations

import csv
import io
import itertools
import random

import pytest

from airflow_provider_glue_labeling.labels.agreement import (
    AgreementError,
    Copy,
    below_agreement,
    check_agreement,
    check_taker,
    compare,
    numbered,
    pair_kappa,
    second_copies,
    settle,
)
from airflow_provider_glue_labeling.labels.format import LabelingError, LabelingSet, labels_file_problems
from airflow_provider_glue_labeling.labels.groupings import matching_pairs, transfer_distance
from airflow_provider_glue_labeling.labels.labelers import labeler_agreement, labeler_errors
from airflow_provider_glue_labeling.labels.team import Team


def test_matching_pairs_are_the_pairs_sharing_a_label() -> None:
    # A A B A: records 0, 1 and 3 are one entity -> (0,1), (0,3), (1,3)
    assert matching_pairs(["A", "A", "B", "A"]) == {(0, 1), (0, 3), (1, 3)}
    assert matching_pairs([0, 1, 2]) == set()


def test_compare_counts_pairs_precision_recall_f1_kappa_and_disagreements() -> None:
    # 4 records, 6 pairs. First: A A B C -> matches {(0,1)}. Second: A A A C -> {(0,1),(0,2),(1,2)}.
    # both = 1, first_only = 0, second_only = 2, neither = 6 - 3 = 3.
    # precision = 1/3, recall = 1/1, F1 = 2*1 / (2*1 + 0 + 2) = 0.5.
    # po = (1 + 3)/6 = 2/3; pe = ((1+0)(1+2) + (3+2)(3+0))/36 = 18/36 = 1/2; kappa = (2/3-1/2)/(1/2) = 1/3.
    # Disagreeing pairs (0,2), (1,2): records 0, 1, 2.
    found = compare("s1", Copy("ana", ["A", "A", "B", "C"]), Copy("cy", ["A", "A", "A", "C"]))
    assert (found.both, found.first_only, found.second_only, found.neither) == (1, 0, 2, 3)
    assert found.pairs == 6
    assert found.precision == pytest.approx(1 / 3)
    assert found.recall == pytest.approx(1.0)
    assert found.f1 == pytest.approx(0.5)
    assert found.kappa == pytest.approx(1 / 3)
    assert found.disagreements == (0, 1, 2)
    assert found.people == ("ana", "cy")


def test_compare_reads_groupings_not_label_names() -> None:
    # x x y and 5 5 7 are the same grouping: 1 match, 2 non-matches, nothing differs.
    found = compare("s1", Copy("ana", ["x", "x", "y"]), Copy("ben", [5, 5, 7]))
    assert (found.both, found.first_only, found.second_only, found.neither) == (1, 0, 0, 2)
    assert (found.f1, found.kappa, found.disagreements) == (1.0, 1.0, ())


def test_crossed_groupings_have_negative_kappa() -> None:
    # First: a a b b -> {(0,1),(2,3)}; second: a b a b -> {(0,2),(1,3)}: both 0, 2, 2, neither 2.
    # po = 2/6 = 1/3; pe = (2*2 + 4*4)/36 = 5/9; kappa = (1/3 - 5/9)/(4/9) = -1/2. F1 = 0.
    found = compare("s1", Copy("ana", list("aabb")), Copy("ben", list("abab")))
    assert found.kappa == pytest.approx(-0.5)
    assert found.f1 == 0.0
    assert found.disagreements == (0, 1, 2, 3)


def test_degenerate_sets() -> None:
    # Every record on its own in both copies: 3 pairs, all non-matching in both. pe = (0 + 3*3)/9 = 1:
    # defined as complete agreement, kappa 1; no pair called a match by either: F1, precision, recall 1.
    apart = compare("s1", Copy("ana", ["a", "b", "c"]), Copy("ben", [1, 2, 3]))
    assert (apart.kappa, apart.f1, apart.precision, apart.recall) == (1.0, 1.0, 1.0, 1.0)
    # All one entity in both: pe = (3*3 + 0)/9 = 1 -> kappa 1.
    assert compare("s1", Copy("ana", "aaa"), Copy("ben", "bbb")).kappa == 1.0
    # One copy all one entity, the other all apart: both 0, first_only 3: po = 0, pe = 0 -> kappa 0;
    # F1 0; the second calls no match (precision 1 by definition), recall 0/3.
    split = compare("s1", Copy("ana", "aaa"), Copy("ben", "abc"))
    assert (split.kappa, split.f1, split.precision, split.recall) == (0.0, 0.0, 1.0, 0.0)
    # One record: no pairs, every figure 1.
    alone = compare("s1", Copy("ana", ["a"]), Copy("ben", ["b"]))
    assert (alone.pairs, alone.kappa, alone.f1, alone.disagreements) == (0, 1.0, 1.0, ())
    assert pair_kappa(0, 0, 0, 0) == 1.0


def test_compare_refuses_one_person_and_copies_of_different_sizes() -> None:
    with pytest.raises(AgreementError, match=r"both copies of labeling set s1 are by ana"):
        compare("s1", Copy("ana", "ab"), Copy("ana", "aa"))
    with pytest.raises(AgreementError, match=r"labeling set s1 have 2 and 3 records"):
        compare("s1", Copy("ana", "ab"), Copy("ben", "abc"))


def test_labeler_agreement_pools_each_labelers_sets() -> None:
    s1 = compare("s1", Copy("ana", "xxy"), Copy("ben", "xxy"))  # 1, 0, 0, 2
    s2 = compare("s2", Copy("ana", "AABC"), Copy("cy", "AAAC"))  # 1, 0, 2, 3
    s3 = compare("s3", Copy("cy", "aabb"), Copy("ben", "abab"))  # 0, 2, 2, 2
    standing = labeler_agreement([s1, s2, s3])
    # ana: s1 + s2 = both 2, first_only 0, second_only 2, neither 5 (9 pairs).
    #   po = 7/9; pe = (2*4 + 7*5)/81 = 43/81; kappa = (63-43)/(81-43) = 20/38. F1 = 4/6.
    # ben: s1 + s3, oriented to ben (their own pairs, then the other copy's) = 1, 2, 2, 4 (9 pairs).
    #   po = 5/9; pe = (3*3 + 6*6)/81 = 45/81 = po -> kappa 0. F1 = 2/6.
    # cy: s2 + s3, oriented to cy = 1, 4, 2, 5 (12 pairs). po = 6/12; pe = (5*3 + 7*9)/144 = 78/144;
    #   kappa = (72-78)/(144-78) = -1/11. F1 = 2/8.
    # Records moved: ana-ben 0 of 3, ana-cy 1 of 4, cy-ben 2 of 4: e_cy = (1/4 + 1/2 - 0)/2 = 3/8,
    #   e_ben = (0 + 1/2 - 1/4)/2 = 1/8, e_ana = (0 + 1/4 - 1/2)/2 < 0, so 0.
    assert list(standing) == ["cy", "ben", "ana"]  # the most misgrouping first
    assert [standing[p].error for p in standing] == pytest.approx([3 / 8, 1 / 8, 0.0])
    assert standing["ana"].kappa == pytest.approx(20 / 38)
    assert standing["ana"].f1 == pytest.approx(2 / 3)
    assert standing["ben"].kappa == pytest.approx(0.0)
    assert standing["ben"].f1 == pytest.approx(1 / 3)
    assert standing["cy"].kappa == pytest.approx(-1 / 11)
    assert standing["cy"].f1 == pytest.approx(0.25)
    assert (standing["cy"].sets, standing["cy"].pairs) == (2, 12)
    assert labeler_agreement([]) == {}


def test_transfer_distance_counts_the_fewest_records_to_move() -> None:
    assert transfer_distance("aabb", "aabb") == 0
    assert transfer_distance("aabb", "xxyy") == 0  # the labels' names do not matter
    assert transfer_distance("aabb", "aabc") == 1  # the last record split off
    assert transfer_distance("aabb", "abcd") == 2  # one record of each pair split off
    assert transfer_distance("aaaa", "abcd") == 3
    assert transfer_distance("aabb", "abab") == 2
    assert transfer_distance("", "") == 0


def test_transfer_distance_is_the_best_one_to_one_pairing_of_groups() -> None:
    # Against every injective pairing of the first grouping's groups with the second's, tried
    # by brute force: the fewest records left out of a paired group.
    def by_brute_force(first: list[int], second: list[str]) -> int:
        ours, theirs = list(dict.fromkeys(first)), list(dict.fromkeys(second))
        slots = theirs + [None] * max(0, len(ours) - len(theirs))
        kept = max(
            sum(1 for a, b in zip(first, second, strict=True) if dict(zip(ours, pick, strict=True))[a] == b)
            for pick in itertools.permutations(slots, len(ours))
        )
        return len(first) - kept

    rng = random.Random(7)
    for _ in range(300):
        size = rng.randint(1, 8)
        first = [rng.randint(0, rng.randint(0, 5)) for _ in range(size)]
        second = [rng.choice("wxyz"[: rng.randint(1, 4)]) for _ in range(size)]
        assert transfer_distance(first, second) == by_brute_force(first, second), (first, second)


def test_labeler_errors_solve_each_pairs_records_moved() -> None:
    # ana-ben move 1 record of 4, ana-cy 2 of 4, ben-cy 2 of 4: e_ana + e_ben = 1/4,
    # e_ana + e_cy = 1/2, e_ben + e_cy = 1/2, so e_cy = 3/8 and e_ana = e_ben = 1/8. Pooled kappa
    # alone cannot say this: ana's and ben's copies disagree with cy's too.
    found = [
        compare("s1", Copy("ana", "aabb"), Copy("ben", "aabc")),
        compare("s2", Copy("ana", "aabb"), Copy("cy", "abcd")),
        compare("s3", Copy("ben", "aabb"), Copy("cy", "abab")),
    ]
    assert [(a.records, a.moved) for a in found] == [(4, 1), (4, 2), (4, 2)]
    errors = labeler_errors(found)
    assert errors == pytest.approx({"ana": 1 / 8, "ben": 1 / 8, "cy": 3 / 8})
    standing = labeler_agreement(found)
    assert next(iter(standing)) == "cy" and standing["cy"].error == pytest.approx(3 / 8)
    # A pair's sets are pooled: a second ana-ben set with nothing moved makes it 1 of 8, so
    # e_ana + e_ben = 1/8 and e_cy = (1/2 + 1/2 - 1/8) / 2 = 7/16.
    more = [*found, compare("s4", Copy("ana", "aaaa"), Copy("ben", "aaaa"))]
    assert labeler_errors(more)["cy"] == pytest.approx(7 / 16)


def test_labeler_errors_weigh_each_pair_by_its_records() -> None:
    # Four labelers, six pairs: more equations than people, solved by least squares weighted by
    # the records each pair shared. ana and ben move 2 of 4 records (d = 1/2); every other pair
    # agrees on 40 records (d = 0). By symmetry e_ana = e_ben = x and e_cy = e_dan = y; minimizing
    # 4 (2x - 1/2)^2 + 40 (4 (x + y)^2 + (2y)^2) gives x = -2y and y = -1/48: x = 1/24, y < 0 so 0.
    # Unweighted, (2x - 1/2)^2 + 4 (x + y)^2 + (2y)^2 would give x = 1/6.
    agreeing = [("ana", "cy"), ("ana", "dan"), ("ben", "cy"), ("ben", "dan"), ("cy", "dan")]
    found = [
        compare(f"{a}-{b}-{i}", Copy(a, "aabbccddee"), Copy(b, "aabbccddee"))
        for a, b in agreeing
        for i in range(4)
    ]
    found.append(compare("ab", Copy("ana", "aabb"), Copy("ben", "abcd")))
    errors = labeler_errors(found)
    assert errors == pytest.approx({"ana": 1 / 24, "ben": 1 / 24, "cy": 0.0, "dan": 0.0})


def test_labeler_errors_are_none_where_disagreements_cannot_say_who_erred() -> None:
    two = [compare("s1", Copy("ana", "aabb"), Copy("ben", "abcd"))]
    assert labeler_errors(two) == {}
    assert labeler_agreement(two)["ana"].error is None
    # cy shared sets with ana and with ben, but ana and ben none with each other: two camps.
    camps = [
        compare("s1", Copy("ana", "aabb"), Copy("cy", "abcd")),
        compare("s2", Copy("cy", "aabb"), Copy("ben", "abcd")),
    ]
    assert labeler_errors(camps) == {}
    # Estimates below 0 (agreeing better than the others' errors allow) are 0.
    found = [
        compare("s1", Copy("ana", "aabb"), Copy("ben", "aabb")),
        compare("s2", Copy("ana", "aabb"), Copy("cy", "aabb")),
        compare("s3", Copy("ben", "aabb"), Copy("cy", "abcd")),
    ]
    assert labeler_errors(found) == pytest.approx({"ana": 0.0, "ben": 0.25, "cy": 0.25})


def test_labeler_agreement_does_not_depend_on_which_copy_came_first() -> None:
    # ana groups three records of four as one entity; ben calls all four different. In t1 ana's
    # copy is first (both 0, first_only 3, second_only 0, neither 3), in t2 second (0, 0, 3, 3).
    t1 = compare("t1", Copy("ana", "aaab"), Copy("ben", "abcd"))
    t2 = compare("t2", Copy("ben", "abcd"), Copy("ana", "aaab"))
    standing = labeler_agreement([t1, t2])
    # Oriented to ana: both 0, hers only 6, his only 0, neither 6 (12 pairs): po = 6/12 and
    # pe = ((0+6)(0+0) + (6+0)(6+6))/144 = 72/144 = po, so kappa 0, and the same for ben. Pooled
    # as given (0, 3, 3, 6), pe = (3*3 + 9*9)/144 = 90/144 would make it (72-90)/(144-90) = -1/3.
    assert standing["ana"].kappa == pytest.approx(0.0)
    assert standing["ben"].kappa == pytest.approx(0.0)
    assert labeler_agreement([t1, compare("t2", Copy("ana", "aaab"), Copy("ben", "abcd"))])["ana"].kappa == (
        pytest.approx(0.0)
    )


def test_second_copies_are_a_share_chosen_by_the_ids() -> None:
    ids = [f"abc-{n:03d}" for n in range(10)]
    chosen = second_copies(ids, 0.2)
    assert len(chosen) == 2  # round(0.2 * 10)
    assert chosen == [i for i in ids if i in chosen]  # in the given order
    assert set(second_copies(list(reversed(ids)), 0.2)) == set(chosen)  # by the ids, not their order
    assert set(chosen) <= set(second_copies(ids, 0.5))  # a larger share keeps the smaller's sets
    assert second_copies(ids, 0) == []
    assert second_copies(ids, 1) == ids
    assert len(second_copies(ids, 0.3)) == 3
    assert second_copies([], 0.5) == []


@pytest.mark.parametrize("overlap", [-0.1, 1.5, float("nan"), "0.2", None, True])
def test_second_copies_refuse_an_overlap_outside_0_to_1(overlap: object) -> None:
    with pytest.raises(AgreementError, match=r"overlap .* expected a number from 0 to 1") as raised:
        second_copies(["s1"], overlap)  # type: ignore[arg-type]
    assert isinstance(raised.value, LabelingError)  # the page reports LabelingError as a refusal
    assert isinstance(raised.value, ValueError)


def test_check_taker() -> None:
    check_taker("s1", "ana", [], copies=1)
    check_taker("s1", "ben", ["ana"], copies=2)
    with pytest.raises(AgreementError, match=r"ana already holds a copy of labeling set s1"):
        check_taker("s1", "ana", ["ana"], copies=2)
    with pytest.raises(AgreementError, match=r"labeling set s1 has its 2 copies taken \(ana, ben\)"):
        check_taker("s1", "cy", ["ben", "ana"], copies=2)
    with pytest.raises(AgreementError, match=r"labeling set s1 has its 1 copy taken"):
        check_taker("s1", "ben", ["ana"], copies=1)


def test_gate_names_the_sets_below_and_their_kappa() -> None:
    good = compare("good", Copy("ana", "xxy"), Copy("ben", "xxy"))  # kappa 1
    poor = compare("poor", Copy("ana", "AABC"), Copy("cy", "AAAC"))  # kappa 1/3
    assert below_agreement([good, poor], 0.5) == [poor]
    check_agreement([good, poor], 0.3)  # 1/3 is not below 0.3
    check_agreement([], 0.9)
    with pytest.raises(AgreementError) as raised:
        check_agreement([good, poor], 0.5)
    message = str(raised.value)
    assert "below min_agreement 0.5: poor (kappa 0.33, ana and cy)" in message
    assert "good" not in message
    for bad in (1.5, -2, "0.5"):
        with pytest.raises(AgreementError, match=r"min_agreement .* expected a number from -1 to 1"):
            check_agreement([good], bad)  # type: ignore[arg-type]


LABELING_SET = b"""labeling_set_id,label,id,name
s1,,r1,Ada
s1,,r2,Ada L
s1,,r3,Alan
s2,,r4,Grace
s2,,r5,Grace H
"""


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def test_settle_writes_each_record_once_in_glues_format() -> None:
    labeling_set = LabelingSet.parse([LABELING_SET])
    copies = {
        "s1": [Copy("ana", ["p", "p", "q"]), Copy("ben", [0, 0, 1])],  # the same grouping
        "s2": [Copy("cy", ["g", "g"])],
    }
    data = settle(labeling_set, copies, overlapped={"s1"})
    assert rows_of(data) == [
        ["labeling_set_id", "label", "id", "name"],
        ["s1", "A", "r1", "Ada"],
        ["s1", "A", "r2", "Ada L"],
        ["s1", "B", "r3", "Alan"],
        ["s2", "A", "r4", "Grace"],
        ["s2", "A", "r5", "Grace H"],
    ]
    assert labels_file_problems(data, ["id", "name"]) == (None, [])


def test_settle_takes_the_adjudicators_decision() -> None:
    labeling_set = LabelingSet.parse([LABELING_SET])
    copies = {
        "s1": [Copy("ana", ["p", "p", "q"]), Copy("cy", ["p", "q", "q"])],
        "s2": [Copy("ben", ["g", "h"])],
    }
    with pytest.raises(AgreementError, match=r"s1 \(ana and cy\) disagree on records 1, 2, 3"):
        settle(labeling_set, copies, overlapped={"s1"})
    data = settle(labeling_set, copies, overlapped={"s1"}, decisions={"s1": ["p", "p", "q"], "s2": [3, 3]})
    assert [row[:3] for row in rows_of(data)[1:]] == [
        ["s1", "A", "r1"],
        ["s1", "A", "r2"],
        ["s1", "B", "r3"],
        ["s2", "A", "r4"],  # the decision replaces s2's one copy too
        ["s2", "A", "r5"],
    ]


def test_settle_refuses_missing_copies_and_wrong_groupings() -> None:
    labeling_set = LabelingSet.parse([LABELING_SET])
    one = {"s1": [Copy("ana", "ppq")], "s2": [Copy("ben", "gg")]}
    with pytest.raises(AgreementError, match=r"labeling set s1 has 1 of its 2 copies done \(by ana\)"):
        settle(labeling_set, one, overlapped={"s1"})
    with pytest.raises(AgreementError, match=r"labeling set\(s\) s2 not labeled yet"):
        settle(labeling_set, {"s1": [Copy("ana", "ppq")]})
    with pytest.raises(AgreementError, match=r"labeling set s2 has 2 copies done: expected 1"):
        settle(labeling_set, {"s1": [Copy("ana", "ppq")], "s2": [Copy("ana", "gg"), Copy("ben", "gg")]})
    with pytest.raises(AgreementError, match=r"grouping of labeling set s1 has 2 records: expected 3"):
        settle(labeling_set, one, decisions={"s1": ["p", "p"]})


def test_numbered() -> None:
    assert numbered(["x", "y", "x", 7]) == [0, 1, 0, 2]


def test_team_gates_unsettled_sets_settles_and_sums_up_from_the_kept_drafts() -> None:
    labeling_set = LabelingSet.parse([LABELING_SET])
    # overlap 1: both sets are labeled twice. s1: ana A A B, cy A A A (kappa 0: cy calls every pair
    # a match); s2: ben and cy agree.
    first = {
        "s1": {"groups": [0, 0, 2], "done": True, "by": "ana"},
        "s2": {"groups": [0, 0], "done": True, "by": "ben"},
    }
    second = {
        "s1": {"groups": [0, 0, 0], "done": True, "by": "cy"},
        "s2": {"groups": [5, 5], "done": True, "by": "cy"},
    }
    team = Team.of(labeling_set, 1.0, first, second)
    assert team.overlapped == {"s1", "s2"} and team.both_done("s1")
    with pytest.raises(AgreementError, match=r"below min_agreement 0.3: s1 \(kappa 0.00, ana and cy\)"):
        team.gate(0.3)
    team.gate(None)  # no gate
    summary = team.summary()
    # pooled: s1 both 1, ana-only 0, cy-only 2, neither 0; s2 both 1 -> both 2, differ 2, 4 pairs;
    # F1 = 2*2 / (2*2 + 2); po = 2/4, pe = (2*4 + 2*0)/16 = 1/2 -> kappa 0
    assert summary["compared_sets"] == 2 and summary["pairs"] == 4 and summary["f1"] == 0.6667
    assert summary["kappa"] == 0.0 and summary["settled_sets"] == []
    # ana: s1 alone, kappa 0; cy: s1 and s2 pooled, kappa 0; ben: s2, all agreed, kappa 1
    assert list(summary["labelers"]) == ["ana", "cy", "ben"] and summary["labelers"]["cy"]["sets"] == 2
    settled = Team.of(labeling_set, 1.0, first, second, {"s1": {"groups": [0, 0, 1], "by": "dee"}})
    settled.gate(0.3)  # a settled set is past the gate
    assert [row[:2] for row in rows_of(settled.labels_file())[1:]] == [
        ["s1", "A"],
        ["s1", "A"],
        ["s1", "B"],
        ["s2", "A"],
        ["s2", "A"],
    ]
    # At overlap 0 a second copy kept from an earlier setting is not a copy: one copy a set.
    once = Team.of(labeling_set, 0.0, first, second)
    assert once.overlapped == frozenset() and once.agreements() == [] and once.summary()["kappa"] is None
    assert [row[1] for row in rows_of(once.labels_file())[1:]] == ["A", "A", "B", "A", "A"]


def test_team_summary_estimates_each_labelers_misgrouping_once_three_share_sets() -> None:
    labeling_set = LabelingSet.parse(
        [LABELING_SET + b"s3,,r6,Edsger\ns3,,r7,Edsger D\ns3,,r8,Barbara\ns3,,r9,Barbara L\n"]
    )
    # s1 ana-ben agree; s2 ana-cy and s3 ben-cy: cy splits a pair (1 of 2, 1 of 4 records moved).
    # e_ana + e_ben = 0, e_ana + e_cy = 1/2, e_ben + e_cy = 1/4 (pooled: 0/3, 1/2, 1/4):
    # e_cy = (1/2 + 1/4 - 0)/2 = 3/8, e_ana = (0 + 1/2 - 1/4)/2 = 1/8, e_ben = -1/8 -> 0.
    first = {
        "s1": {"groups": [0, 0, 2], "done": True, "by": "ana"},
        "s2": {"groups": [0, 0], "done": True, "by": "ana"},
        "s3": {"groups": [0, 0, 2, 2], "done": True, "by": "ben"},
    }
    second = {
        "s1": {"groups": [0, 0, 2], "done": True, "by": "ben"},
        "s2": {"groups": [0, 1], "done": True, "by": "cy"},
        "s3": {"groups": [0, 0, 2, 3], "done": True, "by": "cy"},
    }
    labelers = Team.of(labeling_set, 1.0, first, second).summary()["labelers"]
    assert list(labelers) == ["cy", "ana", "ben"]
    assert [labelers[p]["error"] for p in labelers] == [0.375, 0.125, 0.0]
    # Two people only: who erred cannot be told, and the page shows none.
    two = Team.of(labeling_set, 1.0, {"s1": first["s1"]}, {"s1": second["s1"]}).summary()["labelers"]
    assert {p: two[p]["error"] for p in two} == {"ana": None, "ben": None}
