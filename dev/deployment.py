"""A real Airflow deployment on 127.0.0.1 for tests: each component its own process.

On Airflow 3 the api-server (REST API, UI and the workers' execution API), the scheduler
(LocalExecutor), the dag-processor and the triggerer share a sqlite metadata DB in a private
home, as ``airflow standalone`` runs them, but one by one so that a test can stop and restart any
of them; users (:data:`USERS`: an admin, a user and a viewer) sign in through the SimpleAuthManager. On Airflow 2 the scheduler (SequentialExecutor, the one
sqlite allows) and the triggerer do, and what a user does in the UI is done by the same calls
the UI makes (``DAG.set_task_instance_state``), run in the deployment's environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests

from dev import airflow_env

AIRFLOW_3 = int(version("apache-airflow").split(".")[0]) >= 3
COMPONENTS = (
    ("api-server", "scheduler", "dag-processor", "triggerer") if AIRFLOW_3 else ("scheduler", "triggerer")
)
# SimpleAuthManager users: name -> (role, password); test-only passwords in the deployment's home.
USERS = {
    "alice": ("admin", "alice-test-password"),
    "bea": ("user", "bea-test-password"),
    "victor": ("viewer", "victor-test-password"),
    "ana": ("user", "ana-test-password"),  # in multi-team mode, of team_a
    "ben": ("user", "ben-test-password"),  # in multi-team mode, of team_b
}
# Multi-team mode (Airflow 3.2+): each user's teams.
USER_TEAMS = {"ana": "team_a", "ben": "team_b"}


# How long a test waits for the api-server's answer: longer than a request may wait for another
# process's write to the shared SQLite file (30 s, ``?timeout=30`` below). A task's start held
# one request 11 s on two busy cores, and a 10 s timeout failed the test.
REQUEST_SECONDS = 45


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str] = str) -> Any:
    """Poll ``condition`` twice a second until it returns something true; on a time-out, fail
    showing ``logs()``. Each poll is a request or two to the deployment's api-server, which shares
    the machine's two cores with it: twice a second is soon enough for any test."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs()}")
        time.sleep(0.5)


class Deployment:
    """Airflow 3's api-server, scheduler and triggerer in ``home``, with ``dag_folders`` as bundles.

    :param home: the deployment's AIRFLOW_HOME (its sqlite DB is copied from ``migrated_db``).
    :param dag_folders: bundle name to DAG folder.
    :param migrated_db: a migrated metadata DB to start from (saves a migration).
    :param env: more environment for every component (e.g. connections, users).
    :param teams: bundle name to the team that owns it: Airflow's multi-team mode (3.2+), with the
        users of :data:`USER_TEAMS` in their teams.
    """

    def __init__(
        self,
        home: Path,
        dag_folders: dict[str, Path],
        migrated_db: Path,
        env: dict[str, str] | None = None,
        teams: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.tokens: dict[str, str] = {}
        home.mkdir(parents=True, exist_ok=True)
        for stale in ("airflow.db-wal", "airflow.db-shm"):  # an earlier deployment's, stopped hard
            (home / stale).unlink(missing_ok=True)
        shutil.copy(migrated_db, home / "airflow.db")
        saved = dict(os.environ)
        try:
            airflow_env.prepare(home, dag_folders, teams)
            self.env = {
                **os.environ,
                # executors start ``airflow`` from PATH: this interpreter's
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "AIRFLOW__CORE__PARALLELISM": "4",
                # Processes share one SQLite file: a writer waits up to 30 s for another's lock
                # (Python's default, 5 s, failed a REST trigger while a task started on 2 busy cores).
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=30",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                # Only the runs a test triggers: no scheduled run of a @weekly example DAG beside them.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                # The DAG files do not change while a deployment runs (they are serialized before it
                # starts): no re-parse every 30 s, which on two cores took CPU from the tests.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            }
            if AIRFLOW_3:
                self.env.update(
                    {
                        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                        "AIRFLOW__API__BASE_URL": self.url,
                        "AIRFLOW__API__PORT": str(self.port),
                        "AIRFLOW__API__HOST": "127.0.0.1",
                        "AIRFLOW__API_AUTH__JWT_SECRET": "glue-labeling-tests-only",
                        "AIRFLOW__CORE__AUTH_MANAGER": (
                            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                        ),
                        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                            f"{name}:{role}"
                            + (f":{USER_TEAMS[name]}" if teams and name in USER_TEAMS else "")
                            for name, (role, _) in USERS.items()
                        ),
                        "AIRFLOW__CORE__MULTI_TEAM": str(bool(teams)),
                        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                    }
                )
                passwords = {name: password for name, (_, password) in USERS.items()}
                (home / "passwords.json").write_text(json.dumps(passwords))
            else:
                self.env["AIRFLOW__CORE__EXECUTOR"] = "SequentialExecutor"
            self.env.update(env or {})
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def airflow(self, *args: str, timeout: float = 300) -> str:
        """Run an ``airflow`` command in the deployment's environment; return its output."""
        airflow = Path(sys.executable).with_name("airflow")
        done = subprocess.run(
            [str(airflow), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        return done.stdout

    def start(self, *components: str) -> None:
        """Start components (default: all), each its own process logging to ``home/<name>.log``."""
        airflow = Path(sys.executable).with_name("airflow")
        for name in components or COMPONENTS:
            log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 (the process owns it)
            # no log server: it would listen on every interface; tests read the logs as files
            extra = ["--skip-serve-logs"] if name in ("scheduler", "triggerer") else []
            self.processes[name] = subprocess.Popen(
                [str(airflow), name, *extra],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if "api-server" in (components or COMPONENTS):
            wait_until(self._api_up, 120, "the api-server", self.logs)

    def stop(self, *names: str, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Stop components (and their children) with ``sig``, all at once, and wait for them."""
        stopping = [self.processes.pop(name) for name in names]
        for process in stopping:
            if process.poll() is None:
                os.killpg(process.pid, sig)
        for process in stopping:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def close(self) -> None:
        """Stop every component. What is left is thrown away: a scheduler whose LocalExecutor still
        waits for a task gets 5 s to end before SIGKILL (it waited the full minute in a teardown)."""
        self.stop(*self.processes, timeout=5)

    def logs(self, tail: int = 3000) -> str:
        return "".join(
            f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-tail:]}"
            for log in self.home.glob("*.log")
        )

    def _api_up(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).ok
        except requests.RequestException:  # not listening yet, or not answering yet
            return False

    def token(self, user: str = "alice") -> str:
        """A JWT for one of :data:`USERS`, as ``POST /auth/token`` hands it out; one per user for
        the deployment's life (Airflow's ``[api_auth] jwt_expiration_time``: a day), not one per call."""
        if user not in self.tokens:
            answer = requests.post(
                f"{self.url}/auth/token",
                json={"username": user, "password": USERS[user][1]},
                timeout=REQUEST_SECONDS,
            )
            answer.raise_for_status()
            self.tokens[user] = str(answer.json()["access_token"])
        return self.tokens[user]

    def client(self, user: str = "alice") -> requests.Session:
        """A REST API session of ``user`` (by default the admin)."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token(user)}"
        return session

    def labeler(self, user: str) -> requests.Session:
        """A session of ``user`` at the labeling page's HTTP API: its writes carry the page's header."""
        from airflow_provider_glue_labeling.ui.service import WRITE_HEADER

        session = self.client(user)
        session.headers[WRITE_HEADER] = "1"
        return session

    # -- what a user does: through the REST API on Airflow 3, the UI's own calls on Airflow 2 ------
    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        """Trigger a DAG run with ``conf``; return its run id."""
        if AIRFLOW_3:
            answer = self.client().post(
                f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
                json={"logical_date": None, "conf": conf},
                timeout=REQUEST_SECONDS,
            )
            answer.raise_for_status()
            return str(answer.json()["dag_run_id"])
        return (
            self._python(
                "from airflow.api.common.trigger_dag import trigger_dag\n"
                f"print(trigger_dag({dag_id!r}, conf={conf!r}).run_id)"
            )
            .strip()
            .splitlines()[-1]
        )

    def states(self, dag_id: str, run_id: str, task_ids: list[str]) -> dict[str, str | None]:
        """The current state of each task of a DAG run."""
        if AIRFLOW_3:
            api = self.client()
            base = f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
            return {t: api.get(f"{base}/{t}", timeout=REQUEST_SECONDS).json().get("state") for t in task_ids}
        out = self._python(
            "import json\nfrom airflow.models.dagrun import DagRun\n"
            f"dag_run = DagRun.find(dag_id={dag_id!r}, run_id={run_id!r})[0]\n"
            f"tis = {{t: dag_run.get_task_instance(t) for t in {task_ids!r}}}\n"
            "print(json.dumps({t: ti and ti.state for t, ti in tis.items()}))"
        )
        return dict(json.loads(out.strip().splitlines()[-1]))

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG, oldest first: ``run_id``, ``state`` and ``run_type``."""
        if AIRFLOW_3:
            answer = self.client().get(
                f"{self.url}/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "id"}, timeout=REQUEST_SECONDS
            )
            answer.raise_for_status()
            return [
                {key: run[key] for key in ("dag_run_id", "state", "run_type")}
                for run in answer.json()["dag_runs"]
            ]
        out = self._python(
            "import json\nfrom airflow.models.dagrun import DagRun\n"
            f"runs = sorted(DagRun.find(dag_id={dag_id!r}), key=lambda r: r.id)\n"
            "print(json.dumps([{'dag_run_id': r.run_id, 'state': r.state, 'run_type': r.run_type} for r in runs]))"
        )
        return list(json.loads(out.strip().splitlines()[-1]))

    def settle_scheduled(self, dag_id: str, task_id: str, timeout: float = 300) -> None:
        """Wait until the scheduler's own run of ``dag_id`` has ended the first try of ``task_id``.

        With ``[scheduler] use_job_schedule`` on, a scheduled DAG gets a run as the deployment
        starts; one SQLite file cannot take that run's start and a REST trigger at once (the
        trigger answered 500, "database is locked"), so a caller triggers its own runs after.
        """

        def settled() -> bool:
            scheduled = [r for r in self.runs(dag_id) if r["run_type"] == "scheduled"]
            if not scheduled:
                return False
            state = self.states(dag_id, scheduled[0]["dag_run_id"], [task_id])[task_id]
            return state in ("success", "failed", "up_for_retry", "skipped")

        wait_until(settled, timeout, f"the scheduled run of {dag_id} to end its first try", self.logs)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The state of a DAG run."""
        if AIRFLOW_3:
            answer = self.client().get(
                f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", timeout=REQUEST_SECONDS
            )
            answer.raise_for_status()
            return answer.json().get("state")
        out = self._python(
            "from airflow.models.dagrun import DagRun\n"
            f"print(DagRun.find(dag_id={dag_id!r}, run_id={run_id!r})[0].state)"
        )
        return out.strip().splitlines()[-1]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
        """A task's XCom value (None when there is none)."""
        if AIRFLOW_3:
            answer = self.client().get(
                f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                params={"deserialize": "true", "stringify": "false"},
                timeout=REQUEST_SECONDS,
            )
            return answer.json().get("value") if answer.ok else None
        out = self._python(
            "import json\nfrom airflow.models.xcom import XCom\n"
            f"print(json.dumps(XCom.get_one(dag_id={dag_id!r}, run_id={run_id!r}, task_id={task_id!r}, key={key!r})))"
        )
        return json.loads(out.strip().splitlines()[-1])

    def mark(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        """Mark a task instance ``state`` as a user does in the UI."""
        if AIRFLOW_3:
            answer = self.client().patch(
                f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
                json={"new_state": state},
                timeout=REQUEST_SECONDS,
            )
            answer.raise_for_status()
            return
        self._python(  # what the Airflow 2 UI's "Mark failed/success" calls
            "from airflow.models.dagbag import DagBag\n"
            f"dag = DagBag(read_dags_from_db=True).get_dag({dag_id!r})\n"
            f"dag.set_task_instance_state(task_id={task_id!r}, run_id={run_id!r}, state={state!r}, commit=True)"
        )

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """A task instance as the REST API gives it (state, try number, ...). Airflow 3."""
        answer = self.client().get(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
            timeout=REQUEST_SECONDS,
        )
        answer.raise_for_status()
        return dict(answer.json())

    def clear(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Clear one task instance, as a user does in the UI (its downstream tasks too). Airflow 3."""
        answer = self.client().post(
            f"{self.url}/api/v2/dags/{dag_id}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "only_failed": False,
                "include_downstream": True,
                "reset_dag_runs": True,
            },
            timeout=30,
        )
        answer.raise_for_status()

    def _python(self, code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"{code}\nfailed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return done.stdout


@contextmanager
def deployment(
    home: Path,
    dag_folders: dict[str, Path],
    migrated_db: Path,
    env: dict[str, str] | None = None,
    teams: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    """A started :class:`Deployment` whose DAGs are serialized; every process is stopped after."""
    running = Deployment(home, dag_folders, migrated_db, env, teams)
    try:
        for team in sorted({*teams.values(), *USER_TEAMS.values()} if teams else ()):
            running.airflow("teams", "create", team)
        running.airflow("dags", "reserialize")
        running.start()
        yield running
    finally:
        running.close()
