"""Offline AWS Glue FindMatches task runs on moto.

Importing this module adds the ML task-run operations to moto's Glue, so real boto3 and
aiobotocore clients work against ``mock_aws()`` in-process or against a moto server::

    import airflow_provider_glue_labeling.emulator as emulator
    from moto import mock_aws

    with mock_aws():
        ...  # boto3.client("glue").start_ml_labeling_set_generation_task_run(...)

    with emulator.serve() as endpoint_url:   # a server on 127.0.0.1 for aiobotocore
        ...
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from airflow_provider_glue_labeling.emulator.control import ControlApp, Remote
from airflow_provider_glue_labeling.emulator.responses import install, ml_state, true_quality
from airflow_provider_glue_labeling.emulator.settings import (
    SETTINGS,
    calls,
    configure,
    force_outcome,
    inject_fault,
    reset,
)

__all__ = [
    "SETTINGS",
    "Remote",
    "calls",
    "configure",
    "force_outcome",
    "inject_fault",
    "install",
    "ml_state",
    "reset",
    "serve",
    "true_quality",
]

install()


class _Server(ThreadedMotoServer):
    """moto's threaded server, with the emulator's controls under ``/glue-ml-emulator/``."""

    def _server_entry(self) -> None:
        app = ControlApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@contextlib.contextmanager
def serve(port: int = 0) -> Iterator[str]:
    """Run a moto server with the emulator on 127.0.0.1 in this process; yield its endpoint URL.

    Besides the AWS APIs it answers the controls of :mod:`.control` (see :class:`Remote`).

    :param port: the TCP port; 0 picks a free one.
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = _Server(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound = server.get_host_and_port()
        yield f"http://{host}:{bound}"
    finally:
        server.stop()
