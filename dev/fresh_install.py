"""A user's install today: a fresh virtualenv, nothing pinned, then a first DAG on the emulator.

``python dev/fresh_install.py`` (run by ``make test-latest``) does what the README tells a new
user to do, with the newest releases the package's ranges admit today:

1. a new virtualenv under ``.matrix/fresh-install`` and, with pip,
   ``pip install apache-airflow "<a copy of this checkout>[emulator]"``, nothing pinned;
2. ``airflow db migrate`` in a new Airflow home whose ``aws_default`` connection points at
3. the emulator's server (``python -m airflow_provider_glue_labeling.emulator``), its output kept;
4. ``dev/first_dag.py`` in that home's dags folder, run with ``dag.test()``: generate a labeling
   set, label it, import the labels, evaluate.

It fails when the DAG run does not succeed, when the evaluation has no metrics, or when the
emulator's log holds a traceback. Its last line is one JSON object: the versions that were
resolved, the task states and the metrics. Only the standard library is used; nothing reaches
beyond 127.0.0.1 but pip's package index.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".matrix" / "fresh-install"
REPORTED = (
    "apache-airflow",
    "apache-airflow-providers-amazon",
    "apache-airflow-providers-common-compat",
    "moto",
    "boto3",
    "airflow-provider-glue-labeling",
)
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def copy_checkout(into: Path) -> Path:
    """The tracked files of the checkout: pip builds in the tree it is given, and build leftovers
    in the checkout (an ``.egg-info``) would be a second copy of the distribution there."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        if (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    return into


def install(python: str, source: Path) -> Path:
    """A new venv with ``pip install apache-airflow "<source>[emulator]"``; its interpreter."""
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for requirements in (["--upgrade", "pip"], ["apache-airflow", f"{source}[emulator]"]):
        done = subprocess.run([*pip, *requirements], capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"pip install {' '.join(requirements)} failed:\n{done.stdout}{done.stderr}")
    return VENV / "bin" / "python"


def versions(python: Path) -> dict[str, str]:
    code = f"import json; from importlib.metadata import version; print(json.dumps({{n: version(n) for n in {REPORTED!r}}}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


def start_emulator(python: Path, log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """The emulator's server on a free port, its output to ``log``; the process and its URL."""
    server = subprocess.Popen(
        [str(python), "-m", "airflow_provider_glue_labeling.emulator", "--port", "0", "--run-seconds", "2"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if found:
            return server, found.group(1)
        if server.poll() is not None:
            raise SystemExit(f"the emulator exited {server.returncode}:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the emulator did not start in 60 s:\n{log.read_text(errors='replace')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the new venv")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="glue-labeling-fresh-") as tmp:
        work = Path(tmp)
        python = install(args.python, copy_checkout(work / "source"))
        installed = time.monotonic() - started
        home, log = work / "airflow", work / "emulator.log"
        (home / "dags").mkdir(parents=True)
        shutil.copy(ROOT / "dev" / "first_dag.py", home / "dags" / "first_dag.py")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
        env.update(FAKE_AWS)
        server, endpoint = start_emulator(python, log, env)
        try:
            env.update(
                {
                    "AIRFLOW_HOME": str(home),
                    "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                    "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                        {"conn_type": "aws", "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
                    ),
                    "GLUE_ML_EMULATOR": endpoint,
                }
            )
            airflow = str(python.with_name("airflow"))
            subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
            run = subprocess.run(
                [str(python), str(home / "dags" / "first_dag.py")],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        emulator_log = log.read_text(errors="replace")
        lines = run.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
        problems = []
        if run.returncode or result.get("state") != "success":
            problems.append(f"the DAG run did not succeed (exit {run.returncode})")
        if not result.get("metrics", {}).get("F1"):
            problems.append("the evaluation left no metrics")
        if "Traceback" in emulator_log:
            problems.append("the emulator's log holds a traceback")
        report = {
            "ok": not problems,
            "problems": problems,
            "versions": versions(python),
            "install_seconds": round(installed),
            "seconds": round(time.monotonic() - started),
            **result,
        }
        if problems:
            print(run.stdout[-6000:], run.stderr[-6000:], sep="\n", file=sys.stderr)
            print(f"--- the emulator's log ---\n{emulator_log[-6000:]}", file=sys.stderr)
        print(json.dumps(report))
        return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
