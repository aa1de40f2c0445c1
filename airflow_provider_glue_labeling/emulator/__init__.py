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
import threading
from collections.abc import Iterator

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


@contextlib.contextmanager
def serve(port: int = 0) -> Iterator[str]:
    """Run a moto server with the emulator on 127.0.0.1 in this process; yield its endpoint URL.

    Besides the AWS APIs it answers the controls of :mod:`.control` (see :class:`Remote`). It is
    moto's own WSGI app (``DomainDispatcherApplication`` over ``create_backend_app``, as the
    ``moto_server`` command serves it) behind the controls, served by werkzeug on a thread of its own.

    :param port: the TCP port; 0 picks a free one.
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = ControlApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="glue-ml-emulator", daemon=True)
    thread.start()
    try:
        host, bound = server.server_address[:2]
        yield f"http://{host!s}:{bound}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
