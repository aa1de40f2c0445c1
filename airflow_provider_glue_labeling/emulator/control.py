"""Control a running emulator server over HTTP: settings, faults, forced outcomes, the call log.

``emulator.configure()``, ``inject_fault()``, ``force_outcome()``, ``reset()`` and ``calls()`` act
on the process they are called in. A server started with ``python -m
airflow_provider_glue_labeling.emulator`` (or :func:`~.serve`) also answers them under
``/glue-ml-emulator/``, beside moto's own ``/moto-api/``, and :class:`Remote` calls them there::

    remote = emulator.Remote("http://127.0.0.1:5000")
    remote.force_outcome("FAILED", "out of memory")
    remote.inject_fault("GetMLTaskRun", "throttle", calls=[1, 2])

Endpoints (JSON bodies, the keyword arguments of the functions of the same name):
``POST /glue-ml-emulator/configure``, ``POST /glue-ml-emulator/inject_fault``,
``POST /glue-ml-emulator/force_outcome``, ``POST /glue-ml-emulator/reset``,
``POST /glue-ml-emulator/true_quality`` (``transform_id``, ``truth``: the transform's quality
against the known truth, for benchmarks and demos) and
``GET /glue-ml-emulator/calls[?operation=GetMLTaskRun]``.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from airflow_provider_glue_labeling.emulator import responses, settings
from airflow_provider_glue_labeling.emulator.data import GlueErrorResponse

PREFIX = "/glue-ml-emulator/"
ACTIONS: dict[str, Callable[..., Any]] = {
    "configure": lambda **values: vars(settings.configure(**values)),
    "inject_fault": lambda **values: settings.inject_fault(**values) and None,
    "force_outcome": lambda **values: settings.force_outcome(**values),
    "reset": lambda: settings.reset(),
    "true_quality": lambda **values: responses.true_quality(**values),
}


class ControlApp:
    """WSGI middleware: answers ``/glue-ml-emulator/...`` and hands every other request to moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.app(environ, start_response)
        action = path[len(PREFIX) :]
        try:
            if action == "calls" and environ["REQUEST_METHOD"] == "GET":
                query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
                operation = query.get("operation", [None])[0]
                body: Any = [list(call) for call in settings.calls(operation)]
            elif action in ACTIONS and environ["REQUEST_METHOD"] == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                arguments = json.loads(environ["wsgi.input"].read(length) or b"{}")
                body = ACTIONS[action](**arguments)
            else:
                return _answer(start_response, "404 Not Found", {"error": f"no such control: {action}"})
        except (TypeError, ValueError) as error:
            return _answer(start_response, "400 Bad Request", {"error": str(error)})
        except GlueErrorResponse as error:
            return _answer(start_response, "404 Not Found", {"error": error.message})
        return _answer(start_response, "200 OK", {"result": body})


def _answer(start_response: Callable[..., Any], status: str, body: Any) -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class Remote:
    """The emulator's controls, called on a running server at ``endpoint_url``.

    :param endpoint_url: the server's URL, e.g. ``http://127.0.0.1:5000``.
    """

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")

    def _call(self, action: str, arguments: dict[str, Any] | None = None, query: str = "") -> Any:
        data = None if arguments is None else json.dumps(arguments).encode()
        request = urllib.request.Request(
            f"{self.endpoint_url}{PREFIX}{action}{query}",
            data=data,
            method="GET" if arguments is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["result"]

    def configure(self, **values: float) -> dict[str, Any]:
        """Change the server's settings (see :func:`~.settings.configure`)."""
        return self._call("configure", values)

    def inject_fault(self, operation: str, kind: str, **options: Any) -> None:
        """Inject a fault in the server (see :func:`~.settings.inject_fault`)."""
        if isinstance(options.get("calls"), range):
            options["calls"] = list(options["calls"])
        self._call("inject_fault", {"operation": operation, "kind": kind, **options})

    def force_outcome(self, status: str, error_string: str, task_type: str | None = None) -> None:
        """End the server's next started run so (see :func:`~.settings.force_outcome`)."""
        self._call("force_outcome", {"status": status, "error_string": error_string, "task_type": task_type})

    def reset(self) -> None:
        """Forget the server's faults, forced outcomes and call log; restore its settings."""
        self._call("reset", {})

    def true_quality(self, transform_id: str, truth: dict[str, str]) -> dict[str, Any]:
        """The transform's quality against the known truth (see :func:`~.responses.true_quality`)."""
        return self._call("true_quality", {"transform_id": transform_id, "truth": truth})

    def calls(self, operation: str | None = None) -> list[list[Any]]:
        """The server's call log as ``[time, operation, parameters]`` items."""
        query = f"?{urllib.parse.urlencode({'operation': operation})}" if operation else ""
        return self._call("calls", query=query)
