"""The labeling page's routes, in process: Airflow's api-server app (with its auth manager and the
provider's plugin) under FastAPI's TestClient, while a real DAG run waits in its labeling task.

People work the page's HTTP API from a thread while ``dag.test()`` runs the labeling task, which
waits in the worker (``running``); the browser and a real deployment are in ``tests/deployment``.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from urllib.parse import quote

import pytest

from airflow_provider_glue_labeling.labels.format import labels_file_problems
from airflow_provider_glue_labeling.ui.service import WRITE_HEADER
from airflow_provider_glue_labeling.versions import HAS_UI_PLUGINS, HITL_AWAITS_INPUT
from tests.helpers import BUCKET, client, groups_from_truth, run_dag

pytestmark = pytest.mark.skipif(not HAS_UI_PLUGINS, reason="UI plugins (the labeling page) need Airflow 3.1+")

LABELS = f"s3://{BUCKET}/people-labels/round-1.csv"
# The labeling task is a human-in-the-loop task where dag.test() can run one: Airflow 3.3 (on 3.1 and
# 3.2 it watches for the file in the worker; tests/deployment covers their human-in-the-loop wait).
HITL = HITL_AWAITS_INPUT


class People(threading.Thread):
    """People at the page while the DAG runs: what they were answered, for the test to check."""

    def __init__(self, api, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.client, self.as_user = api
        self.s3 = client("s3", endpoint)
        self.seen: dict[str, object] = {}
        self.error: BaseException | None = None

    def written(self) -> list[str]:
        """What the page wrote to S3: drafts and labels files."""
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="people-labels/")
        return [obj["Key"] for obj in listed.get("Contents", [])]

    def call(self, method: str, path: str, user: str | None, body=None, headers=None):
        """A request as the page makes it (writes carry its header), with ``headers`` on top."""
        sent = {**(self.as_user(user) if user else {}), **({} if method == "GET" else {WRITE_HEADER: "1"})}
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        return self.client.request(method, f"/glue-labeling{path}", json=body, headers=sent)

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:  # shown by the test
            self.error = error

    def work(self) -> None:
        deadline = time.monotonic() + 120
        listed = []
        while not listed or (HITL and listed[0]["state"] == "running"):  # until it asked for labels
            assert time.monotonic() < deadline, "the labeling task never showed up as waiting"
            listed = self.call("GET", "/api/tasks", "alice").json()
            time.sleep(0.2)
        (task,) = listed
        path = "/".join(quote(str(task[k]), safe="") for k in ("dag_id", "run_id", "task_id", "map_index"))
        api, page = f"/api/tasks/{path}", f"/tasks/{path}"
        whole = self.call("GET", api, "alice").json()
        self.seen.update(listed=task, task=whole)
        first = whole["sets"][0]
        valid_draft = {"set_id": first["set_id"], "groups": list(range(len(first["records"]))), "done": True}
        requests_to_make = [("GET", page, None), ("GET", api, None), ("PUT", f"{api}/drafts", valid_draft)]
        decision = {"set_id": first["set_id"], "groups": valid_draft["groups"]}
        requests_to_make += [("PUT", f"{api}/decisions", decision), ("POST", f"{api}/submit", None)]
        self.seen["anonymous"] = [self.call(m, p, None, b).status_code for m, p, b in requests_to_make]
        self.seen["viewer"] = [self.call(m, p, "victor", b).status_code for m, p, b in requests_to_make]
        refused_page = self.call("GET", page, "victor")
        self.seen["viewer_page"] = (refused_page.headers["content-type"], refused_page.text)
        self.seen["anonymous_lists"] = [self.call("GET", p, None).status_code for p in ("/", "/api/tasks")]
        self.seen["viewer_list"] = self.call("GET", "/api/tasks", "victor").json()
        # carl may edit the DAG's tasks, but the task is assigned to alice and bea: he gets nothing.
        if HITL:
            self.seen["unassigned"] = [self.call(m, p, "carl", b).status_code for m, p, b in requests_to_make]
            self.seen["unassigned_list"] = self.call("GET", "/api/tasks", "carl").json()
        self.seen["written_before_bea"] = self.written()
        # The task asks in Airflow's Required Actions: the REST API lists its request.
        self.seen["request"] = self.client.get(
            "/api/v2/dags/label_with_people/dagRuns/~/hitlDetails", headers=self.as_user("alice")
        ).json()

        last = whole["sets"][-1]
        wrong = self.call(
            "PUT", f"{api}/drafts", "bea", {"set_id": last["set_id"], "groups": [0, 1], "done": True}
        )
        self.seen["wrong_draft"] = (wrong.status_code, wrong.json()["detail"])
        typed = self.call(
            "PUT", f"{api}/drafts", "bea", {"set_id": last["set_id"], "groups": "all", "done": 1}
        )
        self.seen["mistyped_draft"] = typed.status_code
        groups = groups_from_truth(last["records"], whole["columns"])
        saved = self.call(
            "PUT", f"{api}/drafts", "bea", {"set_id": last["set_id"], "groups": groups, "done": True}
        )
        self.seen["saved"] = (saved.status_code, saved.json().get("by"), saved.json().get("version"))
        # Alice's page still shows the set as it was before Bea's save (version 0): her save is stale.
        stale_body = {"set_id": last["set_id"], "groups": list(range(10)), "done": True, "version": 0}
        stale = self.call("PUT", f"{api}/drafts", "alice", stale_body)
        self.seen["stale"] = (stale.status_code, stale.json()["detail"])
        # Forged writes: no page header (a form), another site's Origin, a cross-site fetch.
        draft_body = {"set_id": last["set_id"], "groups": list(range(10)), "done": False, "version": 1}
        self.seen["forged"] = [
            self.call("PUT", f"{api}/drafts", "bea", draft_body, {WRITE_HEADER: None}).status_code,
            self.call(
                "PUT", f"{api}/drafts", "bea", draft_body, {"Origin": "http://evil.example"}
            ).status_code,
            self.call(
                "PUT", f"{api}/drafts", "bea", draft_body, {"Sec-Fetch-Site": "cross-site"}
            ).status_code,
            self.client.post(
                f"/glue-labeling{api}/submit",
                data={"x": "1"},
                headers={**self.as_user("bea"), "Origin": "http://evil.example"},
            ).status_code,
            self.call("POST", f"{api}/submit", "bea", None, {WRITE_HEADER: None}).status_code,
            self.call(
                "PUT", f"{api}/decisions", "bea", decision, {"Origin": "http://evil.example"}
            ).status_code,
        ]
        big = {"set_id": last["set_id"], "groups": [0] * 40_000, "done": True, "version": 1}
        self.seen["too_big"] = self.call("PUT", f"{api}/drafts", "bea", big).status_code
        # Two people split the sets without talking: bea takes the second, alice sees it and is
        # refused it, and takes the third.
        second, third = whole["sets"][1]["set_id"], whole["sets"][2]["set_id"]
        taken = self.call("POST", f"{api}/claims", "bea", {"set_id": second})
        self.seen["bea_claims"] = (taken.status_code, taken.json().get("claimed_by"))
        alice_view = self.call("GET", api, "alice").json()
        self.seen["alice_sees"] = (alice_view["you"], alice_view["claims"])
        refused = self.call("POST", f"{api}/claims", "alice", {"set_id": second})
        self.seen["alice_refused"] = (refused.status_code, refused.json()["detail"])
        self.seen["alice_claims"] = self.call("POST", f"{api}/claims", "alice", {"set_id": third}).status_code
        early = self.call("POST", f"{api}/submit", "bea")
        self.seen["early_submit"] = (early.status_code, early.json()["detail"])
        versions = {k: d["version"] for k, d in self.call("GET", api, "bea").json()["drafts"].items()}
        for labeling_set in whole["sets"][:-1]:
            groups = groups_from_truth(labeling_set["records"], whole["columns"])
            version = versions.get(labeling_set["set_id"], 0)
            body = {"set_id": labeling_set["set_id"], "groups": groups, "done": True, "version": version}
            assert self.call("PUT", f"{api}/drafts", "bea", body).status_code == 200
        self.seen["reloaded"] = self.call("GET", api, "alice").json()["drafts"]
        # Four submits at once: one writes the labels file, the others are refused.
        answers: list = []
        at_once = [
            threading.Thread(target=lambda u=u: answers.append(self.call("POST", f"{api}/submit", u)))
            for u in ("alice", "bea", "alice", "bea")
        ]
        for thread in at_once:
            thread.start()
        for thread in at_once:
            thread.join()
        self.seen["submits"] = sorted((a.status_code, str(a.json().get("detail", a.json()))) for a in answers)
        # From now on the task is read-only for everyone, from the server's state.
        after = self.call("PUT", f"{api}/drafts", "bea", {**draft_body, "version": 1})
        self.seen["after_submit"] = (after.status_code, after.json()["detail"])
        self.seen["submitted_view"] = self.call("GET", api, "alice").json()["submitted"]
        self.seen["answered"] = self.client.get(
            "/api/v2/dags/label_with_people/dagRuns/~/hitlDetails", headers=self.as_user("alice")
        ).json()


def test_people_label_through_the_page_while_the_task_waits_and_the_dag_imports(
    api, transform, endpoint, tmp_path, caplog
):
    caplog.set_level("INFO", logger="airflow_provider_glue_labeling.ui.service")
    at_the_page = People(api, endpoint)
    at_the_page.start()
    state, states, result = run_dag("label_with_people", transform, tmp_path, labels_a=LABELS)
    at_the_page.join(timeout=60)
    if at_the_page.error:
        raise at_the_page.error
    seen = at_the_page.seen
    assert state == "success", states
    assert result["labels"] == LABELS

    # No credentials: 401 on every route; a viewer (no right to edit the DAG's tasks): 403, an empty
    # list, and nothing written for either.
    assert seen["anonymous"] == [401, 401, 401, 401, 401]
    assert seen["anonymous_lists"] == [401, 401]
    assert seen["viewer"] == [403, 403, 403, 403, 403]
    assert seen["viewer_list"] == []
    if HITL:  # carl may edit the DAG's tasks, but is not one of the task's assigned users
        assert seen["unassigned"] == [403, 403, 403, 403, 403] and seen["unassigned_list"] == []
    # A person refused the page reads a sentence; the JSON API keeps its JSON.
    content_type, text = seen["viewer_page"]
    assert content_type.startswith("text/html") and "You may not label this task" in text
    assert seen["written_before_bea"] == []

    listed, task = seen["listed"], seen["task"]
    waiting = "awaiting_input" if HITL else "running"  # holding nothing, or a worker
    assert (listed["transform_id"], listed["state"], listed["sets"], listed["records"]) == (
        transform,
        waiting,
        10,
        100,
    )
    if HITL:
        # The notifiers were told when the task asked.
        notified = tmp_path / "result.json.notified"
        assert notified.read_text() == "label of label_with_people asks for labels"
        assert listed["assigned_users"] == ["alice", "Bea"]
        # The request in Required Actions: what to label, a link to the page, who may answer; then
        # the page's submit answered it, as the user who submitted.
        (request,) = seen["request"]["hitl_details"]
        assert (
            request["subject"]
            == f"Label 100 records in 10 sets for the Glue FindMatches transform {transform}"
        )
        assert "/glue-labeling/tasks/label_with_people/" in request["body"] and LABELS in request["body"]
        assert [u["id"] for u in request["assigned_users"]] == ["alice", "bea"]
        assert request["options"] == ["Labels uploaded"] and not request["response_received"]
        (answered,) = seen["answered"]["hitl_details"]
        assert answered["response_received"] and answered["chosen_options"] == ["Labels uploaded"]
    assert listed["labels_s3_path"] == LABELS
    set_ids = [s["set_id"] for s in task["sets"]]
    assert seen["wrong_draft"][0] == 422
    assert f"groups of labeling set '{set_ids[-1]}' must be 10 group numbers" in seen["wrong_draft"][1]
    assert seen["mistyped_draft"] == 422
    assert seen["saved"] == (200, "bea", 1)
    # A stale save is refused, and says whose newer draft is kept (the page shows that draft).
    status, detail = seen["stale"]
    assert status == 409 and detail["draft"]["by"] == "bea" and detail["draft"]["version"] == 1
    assert f"labeling set {set_ids[-1]} was saved by bea" in detail["message"]
    assert seen["forged"] == [403, 403, 403, 403, 403, 403]
    assert seen["bea_claims"] == (200, "bea")
    you, claims = seen["alice_sees"]
    assert you == "alice" and claims[set_ids[1]]["by"] == "bea" and set_ids[-1] not in claims  # done
    assert seen["alice_refused"][0] == 409
    assert f"labeling set {set_ids[1]} is claimed by bea since" in seen["alice_refused"][1]
    assert seen["alice_claims"] == 200
    assert seen["too_big"] == 413
    assert seen["early_submit"][0] == 422
    assert f"labeling set(s) {', '.join(set_ids[:-1])} not labeled yet" in seen["early_submit"][1]
    assert set(seen["reloaded"]) == set(set_ids) and {d["by"] for d in seen["reloaded"].values()} == {"bea"}
    statuses = [status for status, _ in seen["submits"]]
    assert statuses == [200, 409, 409, 409], seen["submits"]
    assert "'rows': 100" in seen["submits"][0][1] and LABELS in seen["submits"][0][1]
    assert all(
        "they are not rewritten" in d or "read-only" in d or "not waiting" in d
        for _, d in seen["submits"][1:]
    )
    assert seen["after_submit"][0] == 409 and "read-only" in seen["after_submit"][1]
    assert seen["submitted_view"] is True

    # The file the page wrote: Glue's format, the groups people made; the DAG imported it.
    data = client("s3", endpoint).get_object(Bucket=BUCKET, Key="people-labels/round-1.csv")["Body"].read()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert labels_file_problems(data, task["columns"]) == (None, [])
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["labeling_set_id", "label", *task["columns"]]
    assert [row[2:] for row in rows[1:]] == [r for s in task["sets"] for r in s["records"]]
    for labeling_set in task["sets"]:
        labels = [row[1] for row in rows[1:] if row[0] == labeling_set["set_id"]]
        groups = groups_from_truth(labeling_set["records"], task["columns"])
        assert len(set(labels)) == len(set(groups))
        assert all((labels[i] == labels[j]) == (groups[i] == groups[j]) for i in range(10) for j in range(10))
    imports = client("glue", endpoint).get_ml_task_runs(
        TransformId=transform, Filter={"TaskRunType": "IMPORT_LABELS"}
    )
    assert [r["Properties"]["ImportLabelsTaskRunProperties"]["InputS3Path"] for r in imports["TaskRuns"]] == [
        LABELS
    ]
    assert f"User bea saved the draft of labeling set {set_ids[-1]} (done, version 1)" in caplog.text
    assert caplog.text.count("submitted the labels of 10 set(s)") == 1  # one write
    winner = (
        "alice"
        if f"User alice submitted the labels of 10 set(s), 100 record(s) to {LABELS}" in caplog.text
        else "bea"
    )
    assert f"User {winner} submitted the labels of 10 set(s), 100 record(s) to {LABELS}" in caplog.text
    if HITL:
        assert seen["answered"]["hitl_details"][0]["responded_by_user"]["id"] == winner
    # Who did what is in Airflow's Audit Log, whatever the log level.
    from airflow.models import Log
    from airflow.utils.session import create_session

    with create_session() as session:
        audited = (
            session.query(Log.event, Log.owner, Log.extra).filter(Log.event.like("glue_labeling_%")).all()
        )
    # (Airflow 3.3 also keeps the entries of refused writes; 3.1 and 3.2 keep those that succeeded.)
    assert {(event, owner) for event, owner, _ in audited} >= {
        ("glue_labeling_save_draft", "bea"),
        ("glue_labeling_claim", "bea"),
        ("glue_labeling_claim", "alice"),
        ("glue_labeling_submit", winner),
    }
    assert any(
        set_ids[-1] in (extra or "") for event, _, extra in audited if event == "glue_labeling_save_draft"
    )
    assert "victor" not in caplog.text


def test_the_schema_names_what_each_route_answers():
    """The app's OpenAPI schema names a response model (of ``ui/models.py``) for every JSON route,
    and HTML for the pages; a route of one task takes the task's ids from its path."""
    from airflow_provider_glue_labeling.ui import models
    from airflow_provider_glue_labeling.ui.app import create_app

    schema = create_app().openapi()
    answers, parameters = {}, {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            ((content_type, content),) = operation["responses"]["200"]["content"].items()
            model = content["schema"].get("items", content["schema"]).get("$ref", "").rpartition("/")[2]
            assert not model or (model in schema["components"]["schemas"] and hasattr(models, model))
            listed = content["schema"].get("type") == "array"
            answers[method.upper(), path] = (content_type, f"list[{model}]" if listed else model)
            parameters[method.upper(), path] = [p["name"] for p in operation.get("parameters", [])]
    task = "/{dag_id}/{run_id}/{task_id}/{map_index}"
    assert answers == {
        ("GET", "/"): ("text/html", ""),
        ("GET", f"/tasks{task}"): ("text/html", ""),
        ("GET", "/api/tasks"): ("application/json", "list[ListedTask]"),
        ("GET", f"/api/tasks{task}"): ("application/json", "TaskView"),
        ("PUT", f"/api/tasks{task}/drafts"): ("application/json", "SavedDraft"),
        ("POST", f"/api/tasks{task}/claims"): ("application/json", "SavedDraft"),
        ("PUT", f"/api/tasks{task}/decisions"): ("application/json", "SavedDraft"),
        ("POST", f"/api/tasks{task}/submit"): ("application/json", "Submitted"),
    }
    for (_, path), names in parameters.items():
        assert names == (["dag_id", "run_id", "task_id", "map_index"] if task in path else []), path
