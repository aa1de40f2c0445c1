"""Knobs of the emulator: run timing, quotas, forced outcomes, fault injection and the call log."""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("throttle", "server_error", "timeout", "latency", "slow_reply", "reset")


@dataclass
class Settings:
    """Timing and quotas of emulated task runs.

    :param starting_seconds: how long a new run stays ``STARTING``.
    :param run_seconds: seconds from start to the end of the run (``SUCCEEDED`` or ``FAILED``).
    :param stop_seconds: how long a cancelled run stays ``STOPPING`` before ``STOPPED``.
    :param max_concurrent_runs: active runs allowed per transform (Glue's default quota is 3).
    :param polls_to_finish: when above 0, a run ends at its ``GetMLTaskRun`` poll number
        ``polls_to_finish + 1`` instead of by the clock (for benchmarks: K polls, then the end).
    """

    starting_seconds: float = float(os.environ.get("GLUE_ML_EMULATOR_STARTING_SECONDS", "0.2"))
    run_seconds: float = float(os.environ.get("GLUE_ML_EMULATOR_RUN_SECONDS", "1.0"))
    stop_seconds: float = float(os.environ.get("GLUE_ML_EMULATOR_STOP_SECONDS", "0.3"))
    max_concurrent_runs: int = int(os.environ.get("GLUE_ML_EMULATOR_MAX_CONCURRENT_RUNS", "3"))
    polls_to_finish: int = int(os.environ.get("GLUE_ML_EMULATOR_POLLS_TO_FINISH", "0"))


@dataclass
class Fault:
    """A fault on one operation (``"*"``: every emulated operation), on chosen calls or at a rate."""

    operation: str
    kind: str
    calls: frozenset[int] | None = None
    rate: float = 0.0
    seconds: float = 0.5
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def fires(self, call_number: int) -> bool:
        if self.calls is not None:
            return call_number in self.calls
        return self.rng.random() < self.rate


SETTINGS = Settings()
_lock = threading.Lock()
_faults: list[Fault] = []
_forced: list[tuple[str | None, str, str]] = []
_calls: list[tuple[float, str, dict[str, Any]]] = []
_call_counts: dict[str, int] = {}


def configure(**values: float) -> Settings:
    """Change :class:`Settings` fields, e.g. ``configure(run_seconds=3)``; returns the settings."""
    for name, value in values.items():
        if not hasattr(SETTINGS, name):
            raise TypeError(f"unknown emulator setting {name!r}; known: {sorted(vars(SETTINGS))}")
        setattr(SETTINGS, name, type(getattr(SETTINGS, name))(value))
    return SETTINGS


def inject_fault(
    operation: str,
    kind: str,
    *,
    calls: list[int] | range | None = None,
    rate: float | None = None,
    seconds: float = 0.5,
    seed: int = 0,
) -> Fault:
    """Make ``operation`` fail (or slow down) on its Nth calls (1-based) or at a rate.

    :param operation: a Glue operation name such as ``"GetMLTaskRun"``, or ``"*"``.
    :param kind: ``throttle`` (ThrottlingException), ``server_error`` (InternalServiceException,
        HTTP 500), ``timeout`` (OperationTimeoutException), ``latency`` (sleep ``seconds``,
        then do the work), ``slow_reply`` (do the work, then hold the answer ``seconds``) or
        ``reset`` (the connection is dropped).
    :param calls: which calls of the operation, counted from the injection, fail.
    :param rate: the share of calls that fail, with a seeded generator (when ``calls`` is None).
    """
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault kind {kind!r} is not one of {FAULT_KINDS}")
    if (calls is None) == (rate is None):
        raise ValueError("give exactly one of calls=[...] or rate=...")
    with _lock:
        base = _call_counts.get(operation, 0) if operation != "*" else 0
        shifted = None if calls is None else frozenset(base + n for n in calls)
        fault = Fault(operation, kind, shifted, rate or 0.0, seconds, random.Random(seed))
        _faults.append(fault)
        return fault


def force_outcome(status: str, error_string: str, task_type: str | None = None) -> None:
    """End the next started run (of ``task_type``, or any) with ``status`` and ``error_string``."""
    with _lock:
        _forced.append((task_type, status, error_string))


def take_forced_outcome(task_type: str) -> tuple[str, str] | None:
    with _lock:
        for index, (wanted, status, error) in enumerate(_forced):
            if wanted in (None, task_type):
                del _forced[index]
                return status, error
    return None


def record_call(operation: str, params: dict[str, Any]) -> list[Fault]:
    """Log a call; return the faults that fire on it."""
    with _lock:
        _call_counts[operation] = number = _call_counts.get(operation, 0) + 1
        _calls.append((time.time(), operation, params))
        return [f for f in _faults if f.operation in (operation, "*") and f.fires(number)]


def calls(operation: str | None = None) -> list[tuple[float, str, dict[str, Any]]]:
    """The emulated calls so far as ``(time, operation, parameters)``, optionally of one operation."""
    with _lock:
        return [c for c in _calls if operation in (None, c[1])]


def reset() -> None:
    """Forget faults, forced outcomes and the call log, and restore default settings."""
    with _lock:
        _faults.clear()
        _forced.clear()
        _calls.clear()
        _call_counts.clear()
        for name, value in vars(Settings()).items():
            setattr(SETTINGS, name, value)
