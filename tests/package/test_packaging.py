"""The distribution: what the wheel holds and declares, and the emulator run from an installed wheel."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from airflow_provider_glue_labeling import __version__
from airflow_provider_glue_labeling.emulator.seed import create_findmatches_transform, people
from tests.helpers import ROOT, client


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent))
    assert found, "uv is installed with the test extra"
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # Built from a copy of the tracked files: setuptools leaves an .egg-info in the tree it builds,
    # and one in the checkout would be a second copy of the distribution (and of its entry points).
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in tracked.stdout.splitlines():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [uv(), "build", "--wheel", "--out-dir", str(out), str(source)], check=True, capture_output=True
    )
    (built,) = out.glob("*.whl")
    return built


def test_wheel_holds_the_provider_and_the_emulator_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    modules = sorted(n for n in names if not n.split("/")[0].endswith(".dist-info"))
    assert all(n.startswith("airflow_provider_glue_labeling/") for n in modules), modules
    assert "airflow_provider_glue_labeling/emulator/__main__.py" in modules
    assert "airflow_provider_glue_labeling/py.typed" in modules
    for harness in ("demo.py", "airflow_env.py", "matrix.py", "conftest.py"):
        assert not [n for n in modules if n.endswith(harness)], harness
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_wheel_declares_one_version_and_the_true_floors(wheel):
    meta_name = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(zipfile.ZipFile(wheel).read(meta_name).decode())
    assert meta["Version"] == __version__
    assert f"-{__version__}-" in wheel.name
    requires = {re.split(r"[\[<>=;]", r)[0].strip(): r for r in meta.get_all("Requires-Dist")}
    assert ">=2.11.0" in requires["apache-airflow"]
    # Each range stops short of the next release that could break it (pyproject.toml).
    assert "<3.4" in requires["apache-airflow"]
    assert "<5.3" in requires["moto"]
    assert ">=1.23.0" in requires["apache-airflow-providers-common-compat"]
    assert ">=9.5.0" in requires["apache-airflow-providers-amazon"]
    assert meta["License-Expression"] == "Apache-2.0"


def test_emulator_runs_from_the_installed_wheel(wheel, tmp_path):
    """A clean venv, the wheel installed with its emulator extra, then ``python -m ...emulator``.

    Its dependencies are the versions of the environment the tests run in (the lock, or a matrix
    cell's), so the test says the same thing every day; ``make test-latest`` installs the newest.
    """
    venv = tmp_path / "venv"
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    frozen = subprocess.run(
        [uv(), "pip", "freeze", "--python", sys.executable], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    pins = tmp_path / "pins.txt"
    pins.write_text("".join(f"{line}\n" for line in frozen if "==" in line and "glue-labeling" not in line))
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--python", str(python), "-c", str(pins), f"{wheel}[emulator]"],
        check=True,
        cwd=tmp_path,
    )
    server = subprocess.Popen(
        [str(python), "-m", "airflow_provider_glue_labeling.emulator", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = server.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        glue, s3 = client("glue", match.group(1)), client("s3", match.group(1))
        source, _ = people(count=30)
        transform_id = create_findmatches_transform(
            glue, s3, bucket="wheel-check", source_csv=source, primary_key="id"
        )
        run_id = glue.start_ml_labeling_set_generation_task_run(
            TransformId=transform_id, OutputS3Path="s3://wheel-check/labeling/"
        )["TaskRunId"]
        run = glue.get_ml_task_run(TransformId=transform_id, TaskRunId=run_id)
        assert run["Properties"]["TaskType"] == "LABELING_SET_GENERATION"
        where = subprocess.run(
            [str(python), "-c", "import airflow_provider_glue_labeling as p; print(p.__file__)"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert str(venv) in where, where
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_every_lock_stays_inside_the_declared_ranges():
    """``make install``'s lock and each matrix cell pin versions the package declares it works with:
    a range narrowed to leave out a broken release must leave it out of the locks too."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [
        Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["emulator"]
    ]
    locks = sorted((ROOT / "constraints").glob("*.txt"))
    assert ROOT / "constraints" / "dev-py3.11.txt" in locks
    for lock in locks:
        pins = dict(
            line.split("==", 1)
            for line in lock.read_text().splitlines()
            if "==" in line and not line.startswith("#")
        )
        for requirement in declared:
            assert requirement.name in pins, (lock.name, requirement.name)
            assert requirement.specifier.contains(pins[requirement.name]), (lock.name, str(requirement))
