"""A real Airflow 3 deployment on 127.0.0.1 for tests: each component its own process.

The api-server (REST API, UI and the workers' execution API), the scheduler (LocalExecutor)
and the triggerer share a sqlite metadata DB in a private home, as ``airflow standalone`` runs
them, but one by one so that a test can stop and restart any of them. Users sign in through
the SimpleAuthManager.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from dev import airflow_env

COMPONENTS = ("api-server", "scheduler", "triggerer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str] = str) -> Any:
    """Poll ``condition`` until it returns something true; on a time-out, fail showing ``logs()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs()}")
        time.sleep(0.2)


class Deployment:
    """Airflow 3's api-server, scheduler and triggerer in ``home``, with ``dag_folders`` as bundles.

    :param home: the deployment's AIRFLOW_HOME (its sqlite DB is copied from ``migrated_db``).
    :param dag_folders: bundle name to DAG folder.
    :param migrated_db: a migrated metadata DB to start from (saves a migration).
    :param env: more environment for every component (e.g. connections, users).
    """

    def __init__(
        self, home: Path, dag_folders: dict[str, Path], migrated_db: Path, env: dict[str, str] | None = None
    ) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(migrated_db, home / "airflow.db")
        saved = dict(os.environ)
        try:
            airflow_env.prepare(home, dag_folders)
            self.env = {
                **os.environ,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API_AUTH__JWT_SECRET": "glue-labeling-tests-only",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                **(env or {}),
            }
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
            self.processes[name] = subprocess.Popen(
                [str(airflow), name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if "api-server" in (components or COMPONENTS):
            wait_until(self._api_up, 120, "the api-server", self.logs)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Stop one component (and its children) with ``sig``, and wait for it."""
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def logs(self, tail: int = 3000) -> str:
        return "".join(
            f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-tail:]}"
            for log in self.home.glob("*.log")
        )

    def _api_up(self) -> bool:
        try:
            return requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).ok
        except requests.ConnectionError:
            return False

    def client(self) -> requests.Session:
        """A REST API session of an admin (SimpleAuthManager hands out a token to anyone here)."""
        session = requests.Session()
        token = session.get(f"{self.url}/auth/token", timeout=10)
        token.raise_for_status()
        session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return session

    def task_instance(self, api: requests.Session, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        answer = api.get(
            f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", timeout=10
        )
        answer.raise_for_status()
        return dict(answer.json())


@contextmanager
def deployment(
    home: Path, dag_folders: dict[str, Path], migrated_db: Path, env: dict[str, str] | None = None
) -> Iterator[Deployment]:
    """A started :class:`Deployment` whose DAGs are serialized; every process is stopped after."""
    running = Deployment(home, dag_folders, migrated_db, env)
    try:
        running.airflow("dags", "reserialize")
        running.start()
        yield running
    finally:
        running.close()
