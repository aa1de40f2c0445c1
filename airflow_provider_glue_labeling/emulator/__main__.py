"""``python -m airflow_provider_glue_labeling.emulator --port N``: a moto server with the emulator.

Faults and forced outcomes can be set at start (``--fault``, ``--force-outcome``) and at any
time over HTTP (:class:`~airflow_provider_glue_labeling.emulator.control.Remote`).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from airflow_provider_glue_labeling.emulator import configure, force_outcome, inject_fault, serve
from airflow_provider_glue_labeling.emulator.settings import FAULT_KINDS


def fault(text: str) -> dict[str, object]:
    """``OPERATION:KIND[:calls=1,2|rate=0.2][:seconds=S]`` as ``inject_fault`` arguments."""
    operation, kind, *options = text.split(":")
    if kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(f"fault kind {kind!r} is not one of {FAULT_KINDS}")
    arguments: dict[str, object] = {"operation": operation, "kind": kind}
    for option in options:
        name, _, value = option.partition("=")
        if name == "calls":
            arguments["calls"] = [int(n) for n in value.split(",")]
        elif name in ("rate", "seconds"):
            arguments[name] = float(value)
        else:
            raise argparse.ArgumentTypeError(f"unknown fault option {name!r} in {text!r}")
    if "calls" not in arguments and "rate" not in arguments:
        arguments["rate"] = 1.0
    return arguments


def outcome(text: str) -> dict[str, object]:
    """``STATUS:ERROR_STRING[:TASK_TYPE]`` as ``force_outcome`` arguments."""
    status, _, rest = text.partition(":")
    error_string, _, task_type = rest.partition(":")
    return {"status": status, "error_string": error_string, "task_type": task_type or None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5000, help="TCP port on 127.0.0.1 (0: any free)")
    parser.add_argument("--run-seconds", type=float, help="seconds from a run's start to its end")
    parser.add_argument("--starting-seconds", type=float, help="seconds a run stays STARTING")
    parser.add_argument("--max-concurrent-runs", type=int, help="active runs allowed per transform")
    parser.add_argument("--polls-to-finish", type=int, help="end each run after this many polls")
    parser.add_argument(
        "--fault",
        type=fault,
        action="append",
        default=[],
        help="OPERATION:KIND[:calls=1,2|rate=0.2][:seconds=S], e.g. GetMLTaskRun:throttle:calls=1,2",
    )
    parser.add_argument(
        "--force-outcome",
        type=outcome,
        action="append",
        default=[],
        help="STATUS:ERROR_STRING[:TASK_TYPE] for the next started run, e.g. 'FAILED:out of memory'",
    )
    args = parser.parse_args(argv)
    controls = ("port", "fault", "force_outcome")
    configure(**{k: v for k, v in vars(args).items() if k not in controls and v is not None})
    for arguments in args.fault:
        inject_fault(**arguments)  # type: ignore[arg-type]
    for arguments in args.force_outcome:
        force_outcome(**arguments)  # type: ignore[arg-type]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve(args.port) as endpoint_url:
        print(f"Glue ML emulator listening on {endpoint_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
