"""On one real deployment (api-server, scheduler, dag-processor and triggerer as processes): people
label in the browser, and a user's kill of deferred tasks.

The retraining example DAG is triggered through the REST API against the emulator and waits in
its labeling task, a human-in-the-loop task listed in Required Actions (``awaiting_input`` on
Airflow 3.3, deferred on 3.1 and 3.2). Two people label it through the page: in two browsers
(Debian's chromium, driven by Playwright) and through the page's HTTP API; a stale save is refused,
a forged cross-origin form post writes nothing, of two submits from two pages one wins and answers
the request, and the DAG imports the labels. A Clear of the labeling task then labels again. A
labeling task nobody answers ends at its timeout, not retried. Then a user marks deferred tasks
failed, after a triggerer restart: a run is cancelled only for the user's kill. The page's routes
one by one (auth, refusals) are tested in process in ``tests/dag_runs/test_labeling_page_routes.py``.
"""

from __future__ import annotations

import contextlib
import csv
import http.server
import io
import os
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import requests
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

import airflow_provider_glue_labeling.emulator as emulator
from airflow_provider_glue_labeling.versions import HAS_UI_PLUGINS, HITL_AWAITS_INPUT
from tests.helpers import HEADER, ROOT, client

needs_ui_plugins = pytest.mark.skipif(
    not HAS_UI_PLUGINS, reason="UI plugins (the labeling page) need Airflow 3.1+"
)

DAG_ID = "glue_findmatches_retraining"
BUCKET = "labels-bkt"
POLL_SECONDS = 1
# Glue runs here last longer than Airflow 3.3's supervisor may take to notice that a deferred
# task's process ended (about 5 s, more while another deployment shares the 2 cores): a trigger
# that fires sooner races with that late "success" event, and the scheduler fails the resumed
# try. Real Glue runs take minutes.
RUN_SECONDS = 12
# How long the page lets a human-in-the-loop request stand before it answers: the default (5 s
# lost the race once on two busy cores).
SETTLE_SECONDS = 15
# How a human-in-the-loop task waits for its answer: holding nothing on 3.3, deferred before.
WAITING = "awaiting_input" if HITL_AWAITS_INPUT else "deferred"


@pytest.fixture(scope="module")
def running_airflow(server, airflow_db, tmp_path_factory):
    """One deployment for the module, with the example DAGs and the test DAGs."""
    from dev.airflow_env import PRISTINE_DB
    from dev.deployment import deployment

    env = {
        "AIRFLOW__GLUE_LABELING__POLL_SECONDS": str(POLL_SECONDS),
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        # How often the scheduler ends the waits past their timeout (awaiting_input and deferred).
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
        # The page answers a request once it has stood this long (the tests in-process need no wait).
        "AIRFLOW__GLUE_LABELING__ANSWER_SETTLE_SECONDS": str(SETTLE_SECONDS),
    }
    # Airflow 2 has no DAG bundles: its one dags folder is the first (the test DAGs; the labeling
    # page's retraining DAG needs Airflow 3.1+ anyway).
    dags = {"tests": ROOT / "tests" / "dags", "examples": ROOT / "example_dags"}
    with deployment(tmp_path_factory.mktemp("deployment"), dags, airflow_db / PRISTINE_DB, env) as running:
        yield running


@pytest.fixture
def waiting(server, running_airflow):
    """The retraining DAG, run on the deployment, waiting in its labeling task for people."""
    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people
    from dev.deployment import wait_until

    requests.post(f"{server}/moto-api/reset", timeout=10).raise_for_status()
    source, truth = people(count=120)
    transform_id = create_findmatches_transform(
        client("glue", server), client("s3", server), bucket=BUCKET, source_csv=source, primary_key="id"
    )
    earlier_rounds(server, transform_id)
    emulator.configure(run_seconds=RUN_SECONDS)
    running = running_airflow
    # No threshold, and a plateau rule that needs more rounds than there are: people are asked.
    conf = {"transform_id": transform_id, "bucket": BUCKET, "min_f1": None, "over_rounds": 10}
    run_id = running.trigger(DAG_ID, conf)
    wait_until(
        lambda: running.states(DAG_ID, run_id, ["label"])["label"] == WAITING,
        240,
        "the labeling task to wait for people",
        running.logs,
    )
    task_path = f"{DAG_ID}/{quote(run_id, safe='')}/label/-1"
    yield SimpleNamespace(
        deployment=running,
        run_id=run_id,
        transform_id=transform_id,
        truth=truth,
        api=f"{running.url}/glue-labeling/api/tasks/{task_path}",
        page=f"{running.url}/glue-labeling/tasks/{task_path}",
        s3=client("s3", server),
        glue=client("glue", server),
        requests=f"{running.url}/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/hitlDetails",
    )


def earlier_rounds(endpoint, transform_id):
    """Two rounds of labels and evaluations before this one, in the transform's quality history."""
    from airflow_provider_glue_labeling.hooks import AwsConnection
    from airflow_provider_glue_labeling.quality.rounds import make_round, record_round
    from tests.helpers import add_labels, wait_for_run

    glue = client("glue", endpoint)
    for number in (1, 2):
        add_labels(endpoint, transform_id, f"earlier-{number}")
        evaluation = glue.start_ml_evaluation_task_run(TransformId=transform_id)["TaskRunId"]
        assert wait_for_run(glue, transform_id, evaluation)["Status"] == "SUCCEEDED"
        transform = glue.get_ml_transform(TransformId=transform_id)
        history = f"s3://{BUCKET}/quality-history/{transform_id}/"  # as the example DAG keeps it
        record_round(AwsConnection().s3(), history, make_round(transform, evaluation, DAG_ID, "earlier"))


def written(w) -> list[str]:
    """What the page wrote to S3: drafts and labels files."""
    listed = w.s3.list_objects_v2(Bucket=BUCKET, Prefix="labels/").get("Contents", [])
    return [obj["Key"] for obj in listed]


def groups_from_truth(w, records: list[list[str]], columns: list[str]) -> list[int]:
    """What a careful person answers: records of one true entity in one group."""
    first: dict[str, int] = {}
    key = columns.index("id")
    return [first.setdefault(w.truth[row[key]], i) for i, row in enumerate(records)]


def signed_in(browser, w, user: str):
    """A browser page of ``user``, signed in to Airflow (a context of its own: its own cookies)."""
    from dev.deployment import USERS

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{w.deployment.url}/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", USERS[user][1])
    page.click("button:has-text('Sign in')")
    page.get_by_role("link", name="Labeling", exact=True).wait_for()
    return page


@contextlib.contextmanager
def another_site(html: str):
    """A page on another origin (another port of 127.0.0.1), as an attacker's site would serve it."""
    from dev.deployment import free_port

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def shots(shot: Path) -> None:
    """Keep a screenshot for the README when ``GLUE_LABELING_SCREENSHOTS`` names a folder."""
    if os.environ.get("GLUE_LABELING_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["GLUE_LABELING_SCREENSHOTS"]) / shot.name)


@needs_ui_plugins
def test_people_label_in_the_browser_and_the_dag_runs_to_success(waiting, tmp_path):
    from playwright.sync_api import sync_playwright

    from dev.deployment import wait_until

    w = waiting
    admin = w.deployment.client("alice")
    # The labeling task asks in Airflow's Required Actions: what to label, where, and who may.
    (request,) = admin.get(w.requests, timeout=30).json()["hitl_details"]
    assert (
        request["subject"]
        == f"Label 100 records in 10 sets for the Glue FindMatches transform {w.transform_id}"
    )
    assert w.page.removeprefix(w.deployment.url) in request["body"]
    assert request["options"] == ["Labels uploaded"] and not request["response_received"]
    second_person = w.deployment.labeler("bea")
    task = second_person.get(w.api, timeout=30).json()
    records = {s["set_id"]: s["records"] for s in task["sets"]}
    truth = {set_id: groups_from_truth(w, rows, task["columns"]) for set_id, rows in records.items()}
    # bea has labeled the last set; the browser labels the first set that has duplicates to group.
    last = task["sets"][-1]["set_id"]
    body = {"set_id": last, "groups": truth[last], "done": True}
    second_person.put(f"{w.api}/drafts", json=body, timeout=30).raise_for_status()
    first = next(set_id for set_id, groups in truth.items() if len(set(groups)) < len(groups))
    truth_groups = truth[first]
    others = [set_id for set_id in records if set_id not in (first, last)]
    # bea takes another set to label: the page shows alice who is on it.
    second_person.post(f"{w.api}/claims", json={"set_id": others[0]}, timeout=30).raise_for_status()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        # Sign in to Airflow: the request is in Required Actions.
        page = signed_in(browser, w, "alice")
        page.goto(f"{w.deployment.url}/required_actions")
        page.get_by_text(request["subject"]).first.wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "required-actions.png"))
        shots(tmp_path / "required-actions.png")
        # Open "Labeling" in the navigation, and the waiting task from the list.
        page.get_by_role("link", name="Labeling", exact=True).click()
        listing = page.frame_locator("iframe")
        row = listing.locator("#tasks tbody tr")
        assert row.locator("td").nth(0).inner_text() == w.transform_id
        assert (
            row.locator("td").nth(4).inner_text() == "10" and row.locator("td").nth(5).inner_text() == "100"
        )
        row.locator("a:has-text('Label')").click()
        frame = page.frame_locator("iframe")
        frame.locator("body[data-loaded]").wait_for(timeout=60_000)
        assert frame.locator("#progress").inner_text().startswith("1 of 10 sets done")  # bea's last set
        claimed = frame.locator(f"section[data-set='{others[0]}'] .claim")
        assert claimed.inner_text().startswith("bea is on this set since")
        # The transform's quality beside it: label count, metrics, and the rounds so far as a chart.
        assert frame.locator("#quality").inner_text().split()[:2] == ["Labels", "200"]
        assert frame.locator("#chart svg polyline").count() == 3
        assert frame.locator("#chart svg circle").count() == 9  # F1, precision, recall of 3 rounds
        # each with its 95 % interval: a band in the chart, the bounds beside the metrics
        assert frame.locator("#chart svg polygon").count() == 3
        assert frame.locator("#quality .interval").count() == 3  # F1, precision, recall (AUPRC has none)

        # bea, in a browser of her own, marks a set done; alice's page still shows it as it was:
        # her change to it is refused, and her page shows bea's newer draft.
        bea = signed_in(browser, w, "bea")
        bea.goto(w.page)
        bea.locator("body[data-loaded]").wait_for(timeout=60_000)
        contested = others[1]
        bea.locator(f"section[data-set='{contested}'] tr.record").nth(0).focus()
        bea.keyboard.press("d")
        bea.locator("body[data-saving='0']").wait_for()
        frame.locator(f"section[data-set='{contested}'] tr.record").nth(0).focus()
        page.keyboard.press("d")
        stale = frame.locator("#message.error")
        stale.wait_for()
        assert f"Set {contested}: labeling set {contested} was saved by bea" in stale.inner_text()
        assert "your change was not saved" in stale.inner_text()
        assert frame.locator(f"section[data-set='{contested}']").get_attribute("class") == "card done"

        # Label the first set with the mouse and the keyboard: at first each record is its own group.
        card = frame.locator(f"section[data-set='{first}']")
        rows = card.locator("tr.record")
        assert sorted(rows.nth(i).get_attribute("data-group") for i in range(10)) == list("ABCDEFGHIJ")
        entities = [
            [i for i, g in enumerate(truth_groups) if g == group] for group in dict.fromkeys(truth_groups)
        ]
        multi = [members for members in entities if len(members) > 1]
        for number, members in enumerate(multi):
            for i in members:
                if number == 0:  # the keyboard: focus, Space selects, G groups
                    rows.nth(i).focus()
                    page.keyboard.press(" ")
                else:
                    rows.nth(i).click()
            if number == 0:
                page.keyboard.press("g")
            else:
                card.locator("button.group-selected").click()
        # Grouping merges whole groups: a record alone and one record of a group make one entity
        # of all of them (none is split off); Separate takes the lone record out again.
        # (The lone record comes before the group: grouping only the two selected records would
        # take the group's last record away from its first.)
        singles = [members[0] for members in entities if len(members) == 1]
        alone, group_of = next((a, g) for g in multi for a in singles if a < g[0])
        # The groupings above are saved in the background, and each save's answer draws the card
        # again: select once they are in, so that no click lands while the card is redrawn.
        frame.locator("body[data-saving='0']").wait_for()
        rows.nth(alone).click()
        rows.nth(group_of[-1]).click()
        card.locator("button.group-selected").click()

        def groups_of(members):
            return {rows.nth(i).get_attribute("data-group") for i in members}

        assert len(groups_of([alone, *group_of])) == 1
        # Ctrl+Z undoes the merge, Ctrl+Shift+Z does it again.
        page.keyboard.press("Control+z")
        assert len(groups_of(group_of)) == 1 and groups_of([alone]) != groups_of(group_of)
        page.keyboard.press("Control+Shift+z")
        assert len(groups_of([alone, *group_of])) == 1
        rows.nth(alone).click()
        card.locator("button.split-selected").click()
        apart = rows.nth(alone).get_attribute("data-group")
        assert apart != rows.nth(group_of[0]).get_attribute("data-group")
        assert len({rows.nth(i).get_attribute("data-group") for i in group_of}) == 1
        rows.nth(0).focus()
        page.keyboard.press("d")
        frame.locator("body[data-saving='0']").wait_for()
        # D on a done set asks before reopening it, and it stays done until asked twice.
        rows.nth(0).focus()
        page.keyboard.press("d")
        assert (
            frame.locator("#message").inner_text()
            == f"Set {first} is done. Press D again (or Reopen) to reopen it."
        )
        assert frame.locator(f"section[data-set='{first}']").get_attribute("class") == "card done"
        expected = [rows.nth(i).get_attribute("data-group") for i in range(10)]
        assert len(set(expected)) == len(entities)
        # Grouped records that differ show where: highlighted cells, and in them the characters
        # that differ ("Denis" / "Dennis"), not only the whole cell.
        assert card.locator("td.diff").count() > 0
        marks = card.locator("td.diff:has(mark)")
        assert marks.count() > 0
        cell = marks.nth(0)
        assert 0 < len("".join(cell.locator("mark").all_inner_texts())) < len(cell.inner_text())
        # E shows each entity's records together (and E again as generated).
        page.keyboard.press("e")
        shown = [rows.nth(i).get_attribute("data-group") for i in range(10)]
        # each entity's records in one run: a label, once left, does not come back
        assert all(shown[i] == shown[i + 1] or shown[i] not in shown[i + 1 :] for i in range(9)), shown
        assert sorted(shown) == sorted(expected)
        page.keyboard.press("e")
        assert [rows.nth(i).get_attribute("data-group") for i in range(10)] == expected

        # An incomplete submission is refused, naming the sets left to label.
        frame.locator("#submit").click()
        message = frame.locator("#message.error")
        message.wait_for()
        left = [set_id for set_id in others if set_id != contested]
        assert f"labeling set(s) {', '.join(left)} not labeled yet" in message.inner_text()
        assert not any(key.endswith("labels.csv") for key in written(w))

        # A second person labels the other sets through the page's HTTP API, from the drafts' versions.
        versions = {k: d["version"] for k, d in second_person.get(w.api, timeout=30).json()["drafts"].items()}
        for set_id in others:
            body = {
                "set_id": set_id,
                "groups": truth[set_id],
                "done": True,
                "version": versions.get(set_id, 0),
            }
            second_person.put(f"{w.api}/drafts", json=body, timeout=30).raise_for_status()

        # Every set is labeled: a form on another site, posting to submit with alice's cookie, is
        # refused, and writes nothing.
        form = f'<form method=post action="{w.api}/submit"><input name=x value=1></form>'
        with (
            another_site(form + "<script>document.forms[0].submit()</script>") as site,
            page.expect_response(lambda r: r.url == f"{w.api}/submit") as forged,
        ):
            page.goto(site)
        assert forged.value.status == 403, forged.value.text()
        assert "from another site is refused" in forged.value.text()
        assert not any(key.endswith("labels.csv") for key in written(w))

        # A new page loses nothing and shows the other person's work: opened this time from the task
        # instance's own "Labeling" tab, whose link keeps {MAP_INDEX} for a task that is not mapped.
        page.goto(f"{w.deployment.url}/dags/{DAG_ID}/runs/{quote(w.run_id, safe='')}/tasks/label")
        page.locator("a[href$='/plugin/glue-labeling-task']").click()
        frame = page.frame_locator("iframe")
        frame.locator("body[data-loaded]").wait_for(timeout=60_000)
        assert frame.locator("#progress").inner_text().startswith("10 of 10 sets done · 100 of 100 records")
        rows = frame.locator(f"section[data-set='{first}'] tr.record")
        assert [rows.nth(i).get_attribute("data-group") for i in range(10)] == expected
        shot = tmp_path / "labeling-page.png"
        page.set_viewport_size({"width": 1400, "height": 1600})  # the chart and the first two sets
        page.screenshot(path=str(shot))
        shots(shot)
        page.set_viewport_size({"width": 1400, "height": 1000})
        # alice and bea submit from their pages at once: one wins, the other is told it was done.
        bea.evaluate("document.getElementById('submit').click()")
        frame.locator("#submit").click()
        answers = {}
        for who, where in (("alice", frame), ("bea", bea)):
            shown = where.locator("#message.ok:has-text('Submitted'), #message.error")
            shown.wait_for(timeout=60_000)
            answers[who] = (shown.get_attribute("class"), shown.inner_text())
        submitted = time.monotonic()
        assert sorted(kind for kind, _ in answers.values()) == ["error", "ok"], answers
        winner = next(who for who, (kind, _) in answers.items() if kind == "ok")
        loser_says = next(text for kind, text in answers.values() if kind == "error")
        assert "submitted" in loser_says and ("read-only" in loser_says or "not rewritten" in loser_says)

        # Load time of the page of a 100-record labeling set, as the browser measured it.
        page.goto(w.page)
        page.locator("body[data-loaded]").wait_for(timeout=60_000)
        load_ms = page.evaluate("window.labelingLoadedMs")
        print(f"\nlabeling page load for a 100-record labeling set: {load_ms:.0f} ms")
        browser.close()

    def states():
        return w.deployment.states(DAG_ID, w.run_id, ["label", "import_labels"])

    wait_until(lambda: states()["label"] == "success", 60, "the labeling task to go on", w.deployment.logs)
    print(f"labeling task done {time.monotonic() - submitted:.1f}s after the submission")
    # The submit answered the request, as the person who submitted.
    (answered,) = admin.get(w.requests, timeout=30).json()["hitl_details"]
    assert answered["response_received"] and answered["chosen_options"] == ["Labels uploaded"]
    assert answered["responded_by_user"]["id"] == winner
    wait_until(
        lambda: w.deployment.run_state(DAG_ID, w.run_id) == "success", 180, "the import", w.deployment.logs
    )
    assert set(states().values()) == {"success"}
    again = second_person.post(f"{w.api}/submit", timeout=30)
    assert again.status_code == 409, again.text  # the labels file is never rewritten

    # The file the page wrote: Glue's format, the groups people made, imported by the emulator.
    from airflow_provider_glue_labeling.labels.format import labels_file_problems

    key = next(key for key in written(w) if key.endswith("labels.csv"))
    data = w.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert labels_file_problems(data, task["columns"]) == (None, [])
    rows_written = list(csv.reader(io.StringIO(data.decode())))
    assert rows_written[0] == ["labeling_set_id", "label", *task["columns"]]
    assert [row[2:] for row in rows_written[1:]] == [r for s in task["sets"] for r in s["records"]]
    first_labels = [row[1] for row in rows_written[1:] if row[0] == first]
    assert len(set(first_labels)) == len(entities)
    for members in entities:
        assert len({first_labels[i] for i in members}) == 1
    assert w.glue.get_ml_transform(TransformId=w.transform_id)["LabelCount"] == 300
    log = (w.deployment.home / "api-server.log").read_text()
    assert f"User alice saved the draft of labeling set {first} (done, version " in log
    assert f"User {winner} submitted the labels of 10 set(s), 100 record(s) to s3://{BUCKET}/{key}" in log

    # A Clear of the finished labeling task means "label again": the labels it took are kept
    # aside, it asks anew, and the page is open for labels again.
    w.deployment.clear(DAG_ID, w.run_id, "label")
    wait_until(lambda: states()["label"] == WAITING, 120, "the labeling task to ask again", w.deployment.logs)
    folder, _, name = key.rpartition("/")
    kept = [k for k in written(w) if k.startswith(f"{folder}/_{name}.replaced-")]
    assert len(kept) == 1 and key not in written(w), written(w)
    assert w.s3.get_object(Bucket=BUCKET, Key=kept[0])["Body"].read() == data
    assert second_person.get(w.api, timeout=30).json()["submitted"] is False
    (asked_again,) = admin.get(w.requests, timeout=30).json()["hitl_details"]
    assert not asked_again["response_received"]


@needs_ui_plugins
def test_two_people_label_a_set_twice_blind_in_two_browsers_and_one_settles_it(
    server, running_airflow, tmp_path
):
    """``overlap=0.5``, ``min_agreement=0.3`` (the test DAG ``label_twice``): alice and bea, each in
    a browser of her own at once, take the two copies of a set; neither sees the other's groups
    until both are done; then the page shows their agreement and the records in dispute, the gate
    refuses the submit, alice settles the set and submits, and the DAG imports and evaluates."""
    from playwright.sync_api import sync_playwright

    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people
    from dev.deployment import wait_until
    from tests.helpers import groups_from_truth

    requests.post(f"{server}/moto-api/reset", timeout=10).raise_for_status()
    # The test DAG waits for its Glue runs in the worker, not deferred: RUN_SECONDS's race is not
    # this test's, and three runs of 12 s would be most of its time.
    emulator.configure(run_seconds=2)
    transform_id = create_findmatches_transform(
        client("glue", server),
        client("s3", server),
        bucket=BUCKET,
        source_csv=people(count=120)[0],
        primary_key="id",
    )
    running, dag_id = running_airflow, "label_twice"
    labels = f"s3://{BUCKET}/twice/labels.csv"
    conf = {
        "transform_id": transform_id,
        "output_s3_path": f"s3://{BUCKET}/twice/labeling/",
        "labels_a": labels,
        "history": f"s3://{BUCKET}/twice/history/",
    }
    run_id = running.trigger(dag_id, conf)
    waits = (
        "awaiting_input" if HITL_AWAITS_INPUT else "running"
    )  # the test DAG watches in a worker before 3.3
    wait_until(
        lambda: running.states(dag_id, run_id, ["label"])["label"] == waits,
        240,
        "the labeling task",
        running.logs,
    )
    path = f"{dag_id}/{quote(run_id, safe='')}/label/-1"
    api, page_url = (
        f"{running.url}/glue-labeling/api/tasks/{path}",
        f"{running.url}/glue-labeling/tasks/{path}",
    )
    ana, bea_api = running.labeler("ana"), running.labeler("bea")
    task = ana.get(api, timeout=30).json()
    truth = {s["set_id"]: groups_from_truth(s["records"], task["columns"]) for s in task["sets"]}
    overlapped = task["overlapped"]
    o1 = next(set_id for set_id in overlapped if len(set(truth[set_id])) < len(truth[set_id]))
    pair = next(
        [i for i, g in enumerate(truth[o1]) if g == group][:2]
        for group in truth[o1]
        if truth[o1].count(group) > 1
    )
    # ana labels the sets labeled once and a copy of the other overlapped sets; bea their other copy.
    for set_id in truth:
        if set_id == o1:
            continue
        people_on = (ana, bea_api) if set_id in overlapped else (ana,)
        for person in people_on:
            taken = person.post(f"{api}/claims", json={"set_id": set_id}, timeout=30).json()
            body = {"set_id": set_id, "groups": truth[set_id], "done": True, "version": taken["version"]}
            person.put(
                f"{api}/drafts", json={**body, "copy_number": taken["copy_number"]}, timeout=30
            ).raise_for_status()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        w = SimpleNamespace(deployment=running)
        alice, bea = signed_in(browser, w, "alice"), signed_in(browser, w, "bea")
        for page in (alice, bea):
            page.goto(page_url)
            page.locator("body[data-loaded]").wait_for(timeout=60_000)
            assert (
                "Labeled twice, blind: 5 of 10 sets · 4 compared" in page.locator("#agreement").inner_text()
            )
        # alice takes a copy of O1 and groups one true pair, in her browser.
        alice_card = alice.locator(f"section[data-set='{o1}']")
        assert alice_card.get_attribute("data-mode") == "blind"
        alice_card.locator("button.take-copy").click()
        alice.locator(f"section[data-set='{o1}'][data-mode='label']").wait_for()
        assert "Your copy (1 of 2)" in alice_card.inner_text()
        for i in pair:
            alice_card.locator("tr.record").nth(i).click()
        alice_card.locator("button.group-selected").click()
        alice_card.locator("button.toggle-done").click()
        alice.locator("body[data-saving='0']").wait_for()
        # bea, at the same time, sees that alice's copy is done, but not how she grouped it.
        bea.reload()
        bea.locator("body[data-loaded]").wait_for(timeout=60_000)
        bea_card = bea.locator(f"section[data-set='{o1}']")
        assert bea_card.get_attribute("data-mode") == "blind"
        assert "copy 1: alice (done)" in bea_card.inner_text() and bea_card.locator(".group").count() == 0
        bea_card.locator("button.take-copy").click()
        bea.locator(f"section[data-set='{o1}'][data-mode='label']").wait_for()
        assert "Your copy (2 of 2)" in bea_card.inner_text()
        assert (
            len({bea_card.locator("tr.record").nth(i).get_attribute("data-group") for i in range(10)}) == 10
        )
        bea_card.locator("button.toggle-done").click()  # every record apart: she disagrees on the pair
        # Both copies done: bea's page shows them side by side, the records in dispute marked.
        bea.locator(f"section[data-set='{o1}'][data-mode='settle']").wait_for()
        assert bea_card.locator("tr.dispute").count() == 2
        assert "alice and bea: kappa 0.00" in bea_card.inner_text()
        # The gate: bea's submit is refused, naming the set, its kappa and its labelers.
        bea.locator("#submit").click()
        refused = bea.locator("#message.error")
        refused.wait_for()
        assert f"below min_agreement 0.3: {o1} (kappa 0.00, alice and bea)" in refused.inner_text()
        # alice settles it with her grouping, and submits.
        alice.reload()
        alice.locator(f"section[data-set='{o1}'][data-mode='settle']").wait_for(timeout=60_000)
        alice_card.locator("button.take-1").click()
        alice.locator(f"section[data-set='{o1}'] .status:has-text('Settled · alice')").wait_for()
        labelers = alice.locator("#labelers").inner_text()
        assert all(person in labelers for person in ("alice", "bea", "ana"))
        assert "Records misgrouped (estimated)" in labelers  # who is careless, where it can be told
        assert alice.locator("#progress").inner_text().startswith("10 of 10 sets done")
        shot = tmp_path / "labeling-agreement.png"
        alice.screenshot(path=str(shot), full_page=True)
        shots(shot)
        alice.locator("#submit").click()
        alice.locator("#message.ok:has-text('Submitted')").wait_for(timeout=60_000)
        browser.close()

    wait_until(
        lambda: running.run_state(dag_id, run_id) == "success", 240, "the import and evaluation", running.logs
    )
    data = client("s3", server).get_object(Bucket=BUCKET, Key="twice/labels.csv")["Body"].read()
    o1_labels = [row[1] for row in csv.reader(io.StringIO(data.decode())) if row[0] == o1]
    assert o1_labels[pair[0]] == o1_labels[pair[1]] and len(o1_labels) == 10  # settled: alice's copy, once
    log = (running.home / "api-server.log").read_text()
    assert f"User alice settled labeling set {o1} (version 1)" in log


@needs_ui_plugins
def test_a_labeling_task_nobody_answers_ends_at_its_timeout_not_retried(transform, endpoint, running_airflow):
    from dev.deployment import wait_until

    deployment = running_airflow
    client("s3", endpoint).put_object(
        Bucket=BUCKET, Key="labeling/set.csv", Body=HEADER + b"s1,,p1,Ann,Lee,a@x.org,555-0100,Oslo,1980\n"
    )
    conf = {"transform_id": transform, "output_s3_path": f"s3://{BUCKET}/labeling/"}
    run_id = deployment.trigger("labeling_deadline_human_in_the_loop", conf)
    wait_until(
        lambda: deployment.run_state("labeling_deadline_human_in_the_loop", run_id) == "failed",
        120,
        "the labeling task's timeout",
        deployment.logs,
    )
    label = deployment.task_instance("labeling_deadline_human_in_the_loop", run_id, "label")
    assert (label["state"], label["try_number"]) == ("failed", 1)  # retries=2: a timeout is not retried


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="reads the task instance through Airflow 3's REST API")
def test_a_labeling_task_that_fails_after_taking_its_labels_takes_them_again_on_its_retry(
    transform, endpoint, running_airflow
):
    """The scheduler's retry of a labeling task whose first try failed after taking the labels
    file (here in post_execute) is not a Clear: the labels people gave stay, and are taken again."""
    from dev.deployment import wait_until

    deployment = running_airflow
    s3 = client("s3", endpoint)
    s3.put_object(
        Bucket=BUCKET, Key="labeling/set.csv", Body=HEADER + b"s1,,p1,Ann,Lee,a@x.org,555-0100,Oslo,1980\n"
    )
    labels = HEADER + b"s1,a,p1,Ann,Lee,a@x.org,555-0100,Oslo,1980\n"
    s3.put_object(Bucket=BUCKET, Key="people-labels/retried.csv", Body=labels)
    conf = {
        "transform_id": transform,
        "output_s3_path": f"s3://{BUCKET}/labeling/",
        "labels_a": f"s3://{BUCKET}/people-labels/retried.csv",
    }
    run_id = deployment.trigger("label_fails_after_taking", conf)
    wait_until(
        lambda: deployment.run_state("label_fails_after_taking", run_id) in ("success", "failed"),
        180,
        "the labeling task's retry",
        deployment.logs,
    )
    label = deployment.task_instance("label_fails_after_taking", run_id, "label")
    assert (label["state"], label["try_number"]) == ("success", 2)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="people-labels/")["Contents"]
    assert not [o["Key"] for o in listed if ".replaced-" in o["Key"]]
    assert s3.get_object(Bucket=BUCKET, Key="people-labels/retried.csv")["Body"].read() == labels


def generation_runs(endpoint, transform_id):
    """Each generation run's output path → (TaskRunId, Status)."""
    runs = client("glue", endpoint).get_ml_task_runs(TransformId=transform_id)["TaskRuns"]
    return {
        r["Properties"]["LabelingSetGenerationTaskRunProperties"]["OutputS3Path"]: (
            r["TaskRunId"],
            r["Status"],
        )
        for r in runs
    }


def test_marking_a_deferred_task_failed_cancels_its_run_and_a_triggerer_restart_does_not(
    transform, endpoint, running_airflow
):
    from dev.deployment import wait_until

    deployment = running_airflow
    emulator.configure(run_seconds=600)
    run_id = deployment.trigger("deferred_kill", {"transform_id": transform})

    def states():
        return deployment.states("deferred_kill", run_id, ["cancel", "keep"])

    def polls():
        return len(emulator.calls("GetMLTaskRun"))

    both_deferred = {"cancel": "deferred", "keep": "deferred"}
    wait_until(lambda: states() == both_deferred, 180, "both waits deferred", deployment.logs)
    wait_until(lambda: len(generation_runs(endpoint, transform)) == 3, 120, "three runs", deployment.logs)
    wait_until(lambda: polls() >= 6, 60, "the triggerer polling", deployment.logs)
    runs = generation_runs(endpoint, transform)
    (cancel_id, _), (keep_id, _) = runs["s3://labels-bkt/cancel/"], runs["s3://labels-bkt/keep/"]

    # The triggerer stops and comes back: the waits go on (the mapped one too), nothing is cancelled.
    deployment.stop("triggerer")
    deployment.start("triggerer")
    before = polls()
    wait_until(lambda: polls() >= before + 4, 120, "the restarted triggerer polling", deployment.logs)
    assert emulator.calls("CancelMLTaskRun") == []
    assert states() == both_deferred

    # A user marks both failed, as in the UI.
    for task_id in ("cancel", "keep"):
        deployment.mark("deferred_kill", run_id, task_id, "failed")
    wait_until(lambda: emulator.calls("CancelMLTaskRun"), 120, "the cancel", deployment.logs)
    wait_until(
        lambda: generation_runs(endpoint, transform)["s3://labels-bkt/cancel/"][1] == "STOPPED",
        30,
        "the run to stop",
        deployment.logs,
    )
    assert [c[2]["TaskRunId"] for c in emulator.calls("CancelMLTaskRun")] == [cancel_id]
    assert generation_runs(endpoint, transform)["s3://labels-bkt/keep/"] == (keep_id, "RUNNING")
    assert generation_runs(endpoint, transform)["s3://labels-bkt/mapped/"][1] == "RUNNING"
    assert states() == {"cancel": "failed", "keep": "failed"}


@needs_ui_plugins
def test_labels_uploaded_another_way_are_taken_when_a_person_says_so(transform, endpoint, running_airflow):
    from dev.deployment import wait_until

    deployment = running_airflow
    s3 = client("s3", endpoint)
    s3.put_object(Bucket=BUCKET, Key="labeling/set.csv", Body=HEADER + UPLOADED_ROWS)
    labels = f"s3://{BUCKET}/uploaded/labels.csv"
    conf = {"transform_id": transform, "output_s3_path": f"s3://{BUCKET}/labeling/", "labels_a": labels}
    runs = [deployment.trigger("label_uploaded", conf) for _ in range(2)]

    def answer(run_id):
        """What a person does in Required Actions: the REST API's PATCH of the request."""
        wait_until(
            lambda: deployment.states("label_uploaded", run_id, ["label"])["label"] == WAITING,
            240,
            "the labeling task to ask",
            deployment.logs,
        )
        # A person answers after a while: an answer within seconds of the task's parking races with
        # Airflow 3.3 noticing that the parked task's process ended (it then fails the resumed try).
        time.sleep(8)
        answered = deployment.client("alice").patch(
            f"{deployment.url}/api/v2/dags/label_uploaded/dagRuns/{quote(run_id, safe='')}"
            "/taskInstances/label/-1/hitlDetails",
            json={"chosen_options": ["Labels uploaded"], "params_input": {}},
            timeout=30,
        )
        answered.raise_for_status()

        def ended():
            state = deployment.run_state("label_uploaded", run_id)
            return state if state in ("success", "failed") else None

        return wait_until(ended, 120, "the labeling task to go on", deployment.logs)

    # Answered before anyone put the file there: the task fails, saying where it looked.
    assert answer(runs[0]) == "failed"

    def task_logs():
        return "".join(
            p.read_text(errors="replace") for p in (deployment.home / "logs").rglob("*") if p.is_file()
        )

    said = f"alice answered 'Labels uploaded', but there is no labels file at {labels}"
    wait_until(lambda: said in task_logs(), 60, "the task's log to say why", deployment.logs)  # written last
    # A spreadsheet's labels uploaded to the path, then the answer: the task takes and checks them.
    s3.put_object(Bucket=BUCKET, Key="uploaded/labels.csv", Body=HEADER + UPLOADED_LABELS)
    assert answer(runs[1]) == "success"
    assert deployment.xcom("label_uploaded", runs[1], "label", "return_value") == labels


@needs_ui_plugins
def test_an_answer_within_a_second_of_asking_does_not_fail_the_labeling_task(
    transform, endpoint, running_airflow
):
    """Airflow 3.3 fails a task resumed before the scheduler has seen its parked process end
    (apache/airflow#71580, #72716). The page's submit keeps the labels at once and answers once the
    request has stood ``[glue_labeling] answer_settle_seconds``: the first try goes on. With the
    setting at 0 this run fails, more often than not: the scheduler starts the resumed try and a
    retry of the same task instance at once, and fails both (so a retry cannot mend it)."""
    from dev.deployment import wait_until

    deployment = running_airflow
    s3 = client("s3", endpoint)
    s3.put_object(Bucket=BUCKET, Key="labeling/set.csv", Body=HEADER + UPLOADED_ROWS)
    dag_id = "label_answered_at_once"

    conf = {
        "transform_id": transform,
        "output_s3_path": f"s3://{BUCKET}/labeling/",
        "labels_a": f"s3://{BUCKET}/at-once/page.csv",
    }
    run_id = deployment.trigger(dag_id, conf)
    wait_until(
        lambda: deployment.states(dag_id, run_id, ["label"])["label"] == WAITING,
        240,
        "the labeling task to ask",
        deployment.logs,
    )
    # Through the page: drafts and the submit within a second of the task's asking.
    asked = time.monotonic()
    path = f"{dag_id}/{quote(run_id, safe='')}/label/-1"
    bea, api = deployment.labeler("bea"), f"{deployment.url}/glue-labeling/api/tasks/{path}"
    for labeling_set in bea.get(api, timeout=30).json()["sets"]:
        draft = {"set_id": labeling_set["set_id"], "groups": [0] * len(labeling_set["records"]), "done": True}
        bea.put(f"{api}/drafts", json=draft, timeout=30).raise_for_status()
    assert time.monotonic() - asked < 1
    bea.post(f"{api}/submit", timeout=120).raise_for_status()
    assert s3.head_object(Bucket=BUCKET, Key="at-once/page.csv")

    def ended() -> str | None:
        state = deployment.run_state(dag_id, run_id)
        return state if state in ("success", "failed") else None

    assert wait_until(ended, 180, "the run to end", deployment.logs) == "success"
    assert deployment.task_instance(dag_id, run_id, "label")["try_number"] == 1
    mismatches = deployment.client("alice").get(
        f"{deployment.url}/api/v2/eventLogs",
        params={"dag_id": dag_id, "run_id": run_id, "event": "state mismatch"},
        timeout=30,
    )
    assert mismatches.json()["total_entries"] == 0, mismatches.json()


UPLOADED_ROWS = (
    b"s1,,p1,Ann,Lee,ann@example.com,555-0100,Oslo,1980\ns1,,p2,Anne,Lee,ann@example.com,555-0100,Oslo,1980\n"
)
UPLOADED_LABELS = UPLOADED_ROWS.replace(b"s1,,", b"s1,A,")
