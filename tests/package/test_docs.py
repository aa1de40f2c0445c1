"""The documentation: it builds with no warning, and every snippet is code of an example DAG that
``tests/dag_runs/test_example_dags.py`` runs end to end on the emulator."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

DOCS = ROOT / "docs"
INCLUDE = re.compile(
    r"\.\. literalinclude:: \.\./(?P<file>\S+)\n(?:\s+:[a-z-]+:.*\n)*?\s+:start-after: \[START (?P<start>\w+)\]\n"
    r"\s+:end-before: \[END (?P<end>\w+)\]"
)
# The example DAGs the example tests run end to end (test_example_dags.py), by file.
RUN_END_TO_END = {
    "example_dags/glue_labeling_set_generation.py",
    "example_dags/glue_findmatches_retraining.py",
    "example_dags/glue_findmatches_matching.py",
    "example_dags/glue_findmatches_incremental.py",
}


def snippets() -> list[tuple[str, str, str]]:
    """(page, example file, snippet text) of every literalinclude of the docs."""
    found = []
    for page in sorted(DOCS.glob("*.rst")):
        for match in INCLUDE.finditer(page.read_text()):
            assert match["start"] == match["end"], (
                f"{page.name}: [START {match['start']}] ends at [END {match['end']}]"
            )
            text = (ROOT / match["file"]).read_text()
            start, end = f"[START {match['start']}]", f"[END {match['end']}]"
            assert text.count(start) == 1 and text.count(end) == 1, f"{match['file']}: {start} or {end}"
            found.append((page.name, match["file"], text.split(start, 1)[1].split(end, 1)[0]))
    return found


def test_every_snippet_is_code_of_an_example_dag_run_end_to_end():
    found = snippets()
    assert len(found) >= 9
    assert {file for _, file, _ in found} <= RUN_END_TO_END
    from tests.dag_runs.test_example_dags import EXAMPLES

    assert {f"example_dags/{p.name}" for p in EXAMPLES.glob("glue_*.py")} == RUN_END_TO_END
    # Each snippet's tasks are tasks of its DAG, as the example tests run it.
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+
    except ImportError:
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=str(EXAMPLES))
    tasks_of = {dag.fileloc.rsplit("/", 1)[-1]: set(dag.task_ids) for dag in bag.dags.values()}
    for page, file, text in found:
        for task_id in re.findall(r'task_id="(\w+)"', text):
            assert task_id in tasks_of[file.rsplit("/", 1)[-1]], f"{page}: {task_id} of {file}"
    documented = {page for page, _, _ in found}
    assert {"operators.rst", "assets.rst"} <= documented
    # Each operator of the provider has its how-to, with a snippet that makes it.
    operators = (ROOT / "docs" / "operators.rst").read_text()
    for name in (
        "GlueMLLabelingSetGenerationOperator",
        "GlueMLTaskRunSensor",
        "GlueMLLabelingOperator",
        "GlueMLImportLabelsOperator",
        "GlueMLExportLabelsOperator",
        "GlueMLEvaluationOperator",
    ):
        assert f"_howto/operator:{name}:" in operators or f"_howto/sensor:{name}:" in operators, name
        assert any(f"{name}(" in text for _, _, text in found), f"no snippet makes a {name}"


def test_the_docs_build_with_no_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="make docs installs Sphinx (the dev extra)")
    built = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    page = (tmp_path / "operators.html").read_text()
    assert "GlueMLLabelingSetGenerationOperator" in page and "findmatches_job.py" in page
