"""Labels a team agrees on, through the labeling page's routes while a real DAG run waits in its
labeling task (``overlap=0.5``, ``min_agreement=0.3``): blind second copies, their agreement,
adjudication, the gate at submit and at the labels file's check, and the agreement in the next
evaluation's round and the labels' asset event.

People work the page's HTTP API from a thread while ``dag.test()`` runs the DAG (as in
``test_labeling_page_routes.py``); two browsers at once are in ``tests/deployment/test_teams.py``.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from urllib.parse import quote

import pytest

from airflow_provider_glue_labeling.labels.agreement import Copy, compare
from airflow_provider_glue_labeling.labels.groupings import matching_pairs
from airflow_provider_glue_labeling.ui.service import WRITE_HEADER
from airflow_provider_glue_labeling.versions import HAS_UI_PLUGINS, HITL_AWAITS_INPUT
from tests.helpers import BUCKET, asset_events, client, groups_from_truth, run_dag

pytestmark = pytest.mark.skipif(not HAS_UI_PLUGINS, reason="UI plugins (the labeling page) need Airflow 3.1+")

LABELS = f"s3://{BUCKET}/twice/round-1.csv"
HISTORY = f"s3://{BUCKET}/twice/history/"


def careless(groups: list[int]) -> list[int]:
    """A copy one record off: the first record outside a true pair joins that pair's entity."""
    pair = min(matching_pairs(groups))
    outside = next(i for i, g in enumerate(groups) if g != groups[pair[0]])
    return [groups[pair[0]] if i == outside else g for i, g in enumerate(groups)]


class Team(threading.Thread):
    """Alice, Bea and Carl at the page while the DAG runs; what they were answered."""

    def __init__(self, api, dag_id: str, upload: bool = False, endpoint: str = "") -> None:
        super().__init__(daemon=True)
        self.client, self.as_user = api
        self.dag_id, self.upload, self.endpoint = dag_id, upload, endpoint
        self.seen: dict[str, object] = {}
        self.error: BaseException | None = None

    def call(self, method: str, path: str, user: str, body=None):
        sent = {**self.as_user(user), **({} if method == "GET" else {WRITE_HEADER: "1"})}
        return self.client.request(method, f"/glue-labeling{path}", json=body, headers=sent)

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:  # shown by the test
            self.error = error

    def wait_for_task(self) -> str:
        deadline, listed = time.monotonic() + 120, []
        asks = HITL_AWAITS_INPUT and not self.upload  # a human-in-the-loop request, or a file watch
        while not listed or (asks and listed[0]["state"] == "running"):
            assert time.monotonic() < deadline, "the labeling task never showed up as waiting"
            listed = [t for t in self.call("GET", "/api/tasks", "alice").json() if t["dag_id"] == self.dag_id]
            time.sleep(0.2)
        path = "/".join(
            quote(str(listed[0][k]), safe="") for k in ("dag_id", "run_id", "task_id", "map_index")
        )
        return f"/api/tasks/{path}"

    def label(self, api: str, user: str, set_id: str, groups: list[int], copy_number: int | None = None):
        """Claim a set (its copy ``copy_number``, or the one the server gives), then save it done."""
        claimed = self.call("POST", f"{api}/claims", user, {"set_id": set_id, "copy_number": copy_number})
        assert claimed.status_code == 200, claimed.json()
        taken = claimed.json()
        body = {"set_id": set_id, "groups": groups, "done": True, "version": taken["version"]}
        saved = self.call("PUT", f"{api}/drafts", user, {**body, "copy_number": taken["copy_number"]})
        assert saved.status_code == 200, saved.json()
        return taken["copy_number"]

    def work(self) -> None:
        api = self.wait_for_task()
        view = self.call("GET", api, "alice").json()
        self.seen["view"] = view
        truth = {s["set_id"]: groups_from_truth(s["records"], view["columns"]) for s in view["sets"]}
        overlapped = view["overlapped"]
        o1 = next(s for s in overlapped if matching_pairs(truth[s]))  # a set with a true pair
        o2, *rest = [s for s in overlapped if s != o1]
        self.seen.update(o1=o1, o2=o2, truth=truth)

        # O1: alice takes a copy; the same person never gets both copies.
        first = self.call("POST", f"{api}/claims", "alice", {"set_id": o1}).json()
        again = self.call("POST", f"{api}/claims", "alice", {"set_id": o1}).json()
        both = self.call("POST", f"{api}/claims", "alice", {"set_id": o1, "copy_number": 2})
        both_save = self.call(
            "PUT",
            f"{api}/drafts",
            "alice",
            {"set_id": o1, "groups": truth[o1], "done": True, "copy_number": 2},
        )
        self.seen["alice"] = (
            first["copy_number"],
            again["copy_number"],
            both.status_code,
            both.json()["detail"],
        )
        self.seen["alice_both_save"] = (both_save.status_code, both_save.json()["detail"])
        second = self.call("POST", f"{api}/claims", "bea", {"set_id": o1}).json()
        third = self.call("POST", f"{api}/claims", "carl", {"set_id": o1})
        self.seen["bea_copy"], self.seen["carl_refused"] = (
            second["copy_number"],
            (third.status_code, third.json()),
        )
        body = {
            "set_id": o1,
            "groups": truth[o1],
            "done": True,
            "version": again["version"],
            "copy_number": 1,
        }
        assert self.call("PUT", f"{api}/drafts", "alice", body).status_code == 200
        # Blind: bea and carl do not see alice's groups; carl cannot write her copy (nor learn it).
        self.seen["bea_sees"] = self.call("GET", api, "bea").json()
        forced = self.call("PUT", f"{api}/drafts", "carl", {**body, "version": 2, "groups": [0] * 10})
        self.seen["carl_forced"] = (forced.status_code, forced.json())
        early = self.call("PUT", f"{api}/decisions", "carl", {"set_id": o1, "groups": truth[o1]})
        self.seen["early_decision"] = (early.status_code, early.json()["detail"])
        body = {"set_id": o1, "groups": careless(truth[o1]), "done": True, "version": second["version"]}
        assert self.call("PUT", f"{api}/drafts", "bea", {**body, "copy_number": 2}).status_code == 200
        self.seen["carl_sees"] = self.call("GET", api, "carl").json()

        # O2: bea puts every record in one entity (kappa 0, under min_agreement); the rest agree.
        self.label(api, "alice", o2, truth[o2])
        self.seen["o2_copy"] = self.label(api, "bea", o2, [0] * len(truth[o2]))
        # Two people take a copy of the same set at once: each gets one, neither loses.
        at_once: list = []
        claims = [
            threading.Thread(
                target=lambda u=u: at_once.append(
                    (u, self.call("POST", f"{api}/claims", u, {"set_id": rest[0]}))
                )
            )
            for u in ("alice", "carl")
        ]
        for thread in claims:
            thread.start()
        for thread in claims:
            thread.join()
        self.seen["at_once"] = sorted((u, r.status_code, r.json().get("copy_number")) for u, r in at_once)
        for set_id in rest:
            self.label(api, "alice", set_id, truth[set_id])
            self.label(api, "carl", set_id, truth[set_id])
        for set_id in truth:
            if set_id not in overlapped:
                self.label(api, "bea", set_id, truth[set_id])
        if self.upload:  # the labels file comes another way (Glue's format, the truth): the task checks
            out = io.StringIO()  # the copies kept beside it
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["labeling_set_id", "label", *view["columns"]])
            for labeling_set in view["sets"]:
                for record, group in zip(labeling_set["records"], truth[labeling_set["set_id"]], strict=True):
                    writer.writerow([labeling_set["set_id"], f"g{group}", *record])
            key = LABELS.split("/", 3)[3]
            client("s3", self.endpoint).put_object(Bucket=BUCKET, Key=key, Body=out.getvalue().encode())
            return
        gated = self.call("POST", f"{api}/submit", "carl")
        self.seen["gated"] = (gated.status_code, gated.json()["detail"])
        self.seen["after_gate"] = self.call("GET", api, "carl").json()["submitted"]
        settled = self.call("PUT", f"{api}/decisions", "carl", {"set_id": o2, "groups": truth[o2]})
        self.seen["settled"] = (settled.status_code, settled.json())
        unsettled = self.call("POST", f"{api}/submit", "carl")
        self.seen["unsettled"] = (unsettled.status_code, unsettled.json()["detail"])
        # Either of the two may settle too: alice settles O1 with her own grouping.
        assert (
            self.call("PUT", f"{api}/decisions", "alice", {"set_id": o1, "groups": truth[o1]}).status_code
            == 200
        )
        self.seen["before_submit"] = self.call("GET", api, "bea").json()
        done = self.call("POST", f"{api}/submit", "bea")
        self.seen["submitted"] = (done.status_code, done.json())


def run_with_team(api, dag_id: str, transform, tmp_path, upload: bool = False, endpoint: str = ""):
    team = Team(api, dag_id, upload, endpoint)
    team.start()
    state, states, result = run_dag(dag_id, transform, tmp_path, labels_a=LABELS, history=HISTORY)
    team.join(timeout=60)
    if team.error:
        raise team.error
    return team.seen, state, states, result


def test_a_team_labels_some_sets_twice_blind_settles_disagreements_and_the_round_keeps_the_agreement(
    api, transform, endpoint, tmp_path, caplog
):
    caplog.set_level("INFO", logger="airflow_provider_glue_labeling")
    seen, state, states, _ = run_with_team(api, "label_twice", transform, tmp_path)
    assert state == "success", states
    view, o1, o2, truth = seen["view"], seen["o1"], seen["o2"], seen["truth"]
    assert view["overlap"] == 0.5 and view["min_agreement"] == 0.3 and len(view["overlapped"]) == 5

    # The same person never gets both copies; a third person gets neither once both are taken.
    copy, again, status, detail = seen["alice"]
    assert (copy, again, status) == (1, 1, 422)
    assert (
        f"alice already holds a copy of labeling set {o1}: the second copy must go to someone else" in detail
    )
    assert seen["alice_both_save"][0] == 422 and "alice already holds a copy" in seen["alice_both_save"][1]
    assert seen["bea_copy"] == 2
    status, refused = seen["carl_refused"]
    assert status == 409 and f"both copies of labeling set {o1} are taken" in refused["detail"]

    assert sorted(copy for _, status, copy in seen["at_once"] if status == 200) == [1, 2], seen["at_once"]
    # Blind: bea sees that alice's copy is done, not how she grouped it; carl is refused it, unseen.
    hidden = seen["bea_sees"]["drafts"][o1]
    assert hidden["hidden"] is True and hidden["groups"] is None and hidden["done"] is True
    assert seen["bea_sees"]["second_drafts"][o1]["groups"] is not None  # her own copy
    status, forced = seen["carl_forced"]
    assert status == 409 and f"copy 1 of labeling set {o1} is alice's" in forced["detail"]
    assert str(truth[o1]) not in json.dumps(forced)
    assert seen["early_decision"][0] == 422
    assert f"labeling set {o1} has 1 of its 2 copies done" in seen["early_decision"][1]

    # Both done: everyone sees both copies, their agreement and the records in dispute.
    shown = seen["carl_sees"]
    assert shown["drafts"][o1]["groups"] == truth[o1]
    assert shown["second_drafts"][o1]["groups"] == careless(truth[o1])
    (found,) = shown["agreement"]["sets"]
    expected = compare(o1, Copy("alice", truth[o1]), Copy("bea", careless(truth[o1])))
    assert found["people"] == ["alice", "bea"] and found["kappa"] == round(expected.kappa, 4)
    assert found["disagreements"] == list(expected.disagreements) and found["disagreements"]
    assert found["kappa"] >= 0.3, "the careless copy of O1 must pass the gate (it is one record off)"

    # The gate: O2 (kappa 0) refuses the submit, naming the set, its kappa and its labelers;
    # nothing is written. Settled, the submit still wants O1's disagreement settled.
    status, detail = seen["gated"]
    assert status == 422 and f"below min_agreement 0.3: {o2} (kappa 0.00, alice and bea)" in detail
    assert seen["after_gate"] is False
    assert seen["settled"][0] == 200 and seen["settled"][1]["by"] == "carl"
    status, detail = seen["unsettled"]
    assert status == 422 and f"the copies of labeling set {o1} (alice and bea) disagree on records" in detail
    assert seen["submitted"][0] == 200, seen["submitted"]

    # Each labeler's agreement: bea, with two careless copies, lowest.
    labelers = seen["before_submit"]["agreement"]["labelers"]
    assert next(iter(labelers)) == "bea" and set(labelers) == {"alice", "bea", "carl"}
    assert seen["before_submit"]["agreement"]["settled_sets"] == sorted([o1, o2])

    # The labels file holds each set once, settled: the truth everywhere.
    data = client("s3", endpoint).get_object(Bucket=BUCKET, Key="twice/round-1.csv")["Body"].read()
    rows = list(csv.reader(io.StringIO(data.decode())))[1:]
    assert len(rows) == sum(len(s["records"]) for s in view["sets"])
    for set_id, groups in truth.items():
        labels = [row[1] for row in rows if row[0] == set_id]
        assert matching_pairs(labels) == matching_pairs(groups), set_id

    # The agreement went into the labels' asset event and the evaluation's round.
    (event,) = asset_events(LABELS)
    assert event["agreement"]["compared_sets"] == 5 and event["agreement"]["kappa"] < 1
    labelers = event["agreement"]["labelers"]  # (an asset event's extra keeps no key order)
    assert min(labelers, key=lambda person: labelers[person]["kappa"]) == "bea"
    s3 = client("s3", endpoint)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="twice/history/")["Contents"]]
    (round_key,) = [k for k in keys if "/round-" in k]
    recorded = json.loads(s3.get_object(Bucket=BUCKET, Key=round_key)["Body"].read())
    assert recorded["agreement"]["kappa"] == event["agreement"]["kappa"]
    assert recorded["agreement"]["settled_sets"] == sorted([o1, o2])
    evaluated = asset_events(f"glue-ml-transform://{transform}/")[-1]
    assert evaluated["agreement"]["kappa"] == event["agreement"]["kappa"]
    assert f"User carl settled labeling set {o2} (version 1)" in caplog.text

    from airflow.models import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        audited = session.query(Log.event, Log.owner).filter(Log.event == "glue_labeling_settle").all()
    assert {(e, o) for e, o in audited} >= {
        ("glue_labeling_settle", "carl"),
        ("glue_labeling_settle", "alice"),
    }


def test_a_labels_file_put_in_place_another_way_meets_the_gate_and_nothing_is_imported(
    api, transform, endpoint, tmp_path, capsys
):
    """The team labeled in the page, but the labels file came another way (a spreadsheet): the
    labeling task checks the copies kept beside it and refuses the file, without a retry."""
    seen, state, states, _ = run_with_team(
        api, "label_twice_uploaded", transform, tmp_path, upload=True, endpoint=endpoint
    )
    assert state == "failed" and states["label"] == "failed" and states["import_labels"] == "upstream_failed"
    assert (
        f"not taken: labeling set(s) below min_agreement 0.3: {seen['o2']} (kappa 0.00, alice and bea)"
        in capsys.readouterr().out  # the task's log
    )
    imports = client("glue", endpoint).get_ml_task_runs(
        TransformId=transform, Filter={"TaskRunType": "IMPORT_LABELS"}
    )
    assert imports["TaskRuns"] == []
