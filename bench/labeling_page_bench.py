"""Big labeling sets in the labeling page, in Chromium on a real deployment (Airflow 3.1+).

Run with ``make bench-page``. A labeling task waits for a labeling set of 3,000 records (300 sets
of 10) on the emulator (127.0.0.1 only); the page is opened signed in, as a person would.

- **A click's repaint**: from a click on a record to the next frame, measured in the page
  (``performance.now()`` around the click, a forced layout and a ``requestAnimationFrame``),
  against the baseline measured in the same page: repainting every set, as the page did on each
  click before (its ``render()`` with no set).
- **Opening the task with 300 saved drafts**: the page's load time as the browser measures it
  (``window.labelingLoadedMs``), with the api-server's draft cache warm (the drafts were saved
  through it) and cold (a restarted api-server, its app loaded by a look at the task list, reads
  every draft once), against the baseline
  measured first in the same run: the same task with no draft.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dev import airflow_env  # noqa: E402 (the repository's root first)

BUCKET = "bench-bkt"
DAG_ID = "labeling_page_bench"
SETS, PER_SET = 300, 10

# One click, timed in the page: the handler, the DOM change, layout, and the next frame.
CLICK = """async (selector) => {
  const row = document.querySelector(selector);
  const started = performance.now();
  row.click();
  document.body.getBoundingClientRect();
  await new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
  return performance.now() - started;
}"""
# The baseline: every set repainted (the page's render() with no set), timed the same way.
WHOLE_PAGE = """async () => {
  const started = performance.now();
  render();
  document.body.getBoundingClientRect();
  await new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
  return performance.now() - started;
}"""


def labeling_set(source_csv: bytes) -> bytes:
    """SETS sets of PER_SET records of the source, as Glue writes a labeling set."""
    rows = list(csv.reader(io.StringIO(source_csv.decode())))
    header, records = rows[0], rows[1:]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["labeling_set_id", "label", *header])
    for number in range(SETS * PER_SET):
        writer.writerow([f"set-{number // PER_SET:03d}", "", *records[number % len(records)]])
    return out.getvalue().encode()


def open_page(browser, url: str, password: str):
    """A signed-in page at the task (alice), and its load time as the browser measured it."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{url}/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")
    page.get_by_role("link", name="Labeling", exact=True).wait_for()
    return page


def load_ms(page, page_url: str) -> float:
    page.goto(page_url)
    page.locator("body[data-loaded]").wait_for(timeout=120_000)
    return float(page.evaluate("window.labelingLoadedMs"))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=ROOT / ".airflow" / "bench-page")
    parser.add_argument("--repeats", type=int, default=15, help="clicks (and whole-page repaints) timed")
    args = parser.parse_args()
    home = args.home.resolve()
    shutil.rmtree(home / "deployment", ignore_errors=True)
    airflow_env.prepare(home, {"bench": ROOT / "bench" / "dags"})
    airflow_env.migrate(home)

    import boto3
    from playwright.sync_api import sync_playwright

    from airflow_provider_glue_labeling.emulator import serve
    from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people
    from dev.deployment import USERS, deployment, wait_until

    with serve() as endpoint:
        airflow_env.connect(endpoint)
        glue, s3 = boto3.client("glue", endpoint_url=endpoint), boto3.client("s3", endpoint_url=endpoint)
        source, _ = people(600)
        transform_id = create_findmatches_transform(
            glue, s3, bucket=BUCKET, source_csv=source, primary_key="id"
        )
        s3.put_object(Bucket=BUCKET, Key="labeling/set.csv", Body=labeling_set(source))
        conf = {
            "transform_id": transform_id,
            "labeling_set": f"s3://{BUCKET}/labeling/",
            "labels": f"s3://{BUCKET}/labels/labels.csv",
        }
        dags = {"bench": ROOT / "bench" / "dags"}
        with deployment(home / "deployment", dags, home / airflow_env.PRISTINE_DB) as airflow:
            run_id = airflow.trigger(DAG_ID, conf)
            wait_until(
                lambda: airflow.states(DAG_ID, run_id, ["label"])["label"] == "deferred", 240, "the wait"
            )
            path = f"{DAG_ID}/{quote(run_id, safe='')}/label/-1"
            page_url, api = (
                f"{airflow.url}/glue-labeling/tasks/{path}",
                f"{airflow.url}/glue-labeling/api/tasks/{path}",
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=shutil.which("chromium"), args=["--no-sandbox"]
                )
                page = open_page(browser, airflow.url, USERS["alice"][1])
                no_drafts = [load_ms(page, page_url) for _ in range(3)]
                clicks, whole = [], []
                for number in range(args.repeats):
                    row = f"section[data-set='set-{number * 7 % SETS:03d}'] tr.record:nth-child({number % PER_SET + 1})"
                    clicks.append(page.evaluate(CLICK, row))
                    whole.append(page.evaluate(WHOLE_PAGE))
                labeler = airflow.labeler("bea")
                started = time.monotonic()
                for number in range(SETS):
                    body = {"set_id": f"set-{number:03d}", "groups": list(range(PER_SET)), "done": True}
                    labeler.put(f"{api}/drafts", json=body, timeout=60).raise_for_status()
                saving = time.monotonic() - started
                warm = [load_ms(page, page_url) for _ in range(3)]
                airflow.stop("api-server")
                airflow.start("api-server")
                page = open_page(browser, airflow.url, USERS["alice"][1])
                # the new api-server's first requests load its app and clients: the task list does
                # that, and reads no draft
                airflow.labeler("bea").get(api.replace(f"/{path}", ""), timeout=60).raise_for_status()
                cold = load_ms(page, page_url)
                browser.close()

    median = statistics.median
    print(f"\nLabeling page, {SETS * PER_SET} records in {SETS} sets (Chromium; medians)")
    print("| measure | time | baseline (same run) | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| a click's repaint ({args.repeats} clicks) | {median(clicks):.1f} ms | whole page repainted: "
        f"{median(whole):.1f} ms | {median(clicks) / median(whole):.3f} |"
    )
    base = median(no_drafts)
    print(
        f"| open with {SETS} drafts, cache warm | {median(warm):.0f} ms | no draft: {base:.0f} ms | {median(warm) / base:.2f} |"
    )
    print(
        f"| open with {SETS} drafts, cache cold (new api-server) | {cold:.0f} ms | no draft: {base:.0f} ms | {cold / base:.2f} |"
    )
    print(f"\n({SETS} drafts saved through the page's API in {saving:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
