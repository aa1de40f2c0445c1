"""``python -m airflow_provider_glue_labeling.emulator --port N``: a moto server with the emulator."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from airflow_provider_glue_labeling.emulator import configure, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5000, help="TCP port on 127.0.0.1 (0: any free)")
    parser.add_argument("--run-seconds", type=float, help="seconds from a run's start to its end")
    parser.add_argument("--starting-seconds", type=float, help="seconds a run stays STARTING")
    parser.add_argument("--max-concurrent-runs", type=int, help="active runs allowed per transform")
    parser.add_argument("--polls-to-finish", type=int, help="end each run after this many polls")
    args = parser.parse_args(argv)
    configure(**{k: v for k, v in vars(args).items() if k != "port" and v is not None})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve(args.port) as endpoint_url:
        print(f"Glue ML emulator listening on {endpoint_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
