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

from moto.server import ThreadedMotoServer

from airflow_provider_glue_labeling.emulator.responses import install, ml_state
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
    "calls",
    "configure",
    "force_outcome",
    "inject_fault",
    "install",
    "ml_state",
    "reset",
    "serve",
]

install()


@contextlib.contextmanager
def serve(port: int = 0) -> Iterator[str]:
    """Run a moto server with the emulator on 127.0.0.1 in this process; yield its endpoint URL.

    :param port: the TCP port; 0 picks a free one.
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, bound = server.get_host_and_port()
        yield f"http://{host}:{bound}"
    finally:
        server.stop()
