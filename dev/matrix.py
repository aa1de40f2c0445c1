"""The support matrix: one venv per (Airflow, Python) cell, the whole test suite in each; and the lock.

``python dev/matrix.py run [CELL ...]`` installs each cell from its constraints file under
``constraints/`` (a venv under ``.matrix/``, rebuilt only when the constraints change) and runs
``pytest`` in it, then prints a table of the versions, passed counts and times. ``python
dev/matrix.py compile [NAME ...]`` resolves the constraints files anew (the only step that needs
the package index), and with them the lock of ``make install``, ``constraints/dev-py3.11.txt``.

The cell ``latest-py3.13`` has no constraints file: each run resolves the newest release of
everything the package's ranges admit (Airflow, the Amazon provider, common-compat, moto, boto3),
in a venv made anew, as a user's ``pip install`` would today. It is how drift is caught the day a
release comes out (``make test-latest``).

Older cells are resolved as of their Airflow release (``exclude_newer``), as Airflow's own
constraints files pin the libraries of their time; the packages this provider needs newer than
that (its own floors) are let through by ``newer``. The lowest cell takes the lowest versions
that ``pyproject.toml`` allows for every direct dependency (``uv --resolution lowest-direct``).
Only the standard library and ``uv`` are used, so it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints"
VENVS = ROOT / ".matrix"
TODAY = time.strftime("%Y-%m-%d")  # a compile lets the own floors through up to its day


@dataclass(frozen=True)
class Cell:
    airflow: str
    python: str
    resolution: str = "highest"
    exclude_newer: str | None = None
    newer: tuple[str, ...] = field(default=())
    extra: str = "test"
    locked: bool = True  # False: no constraints file, the newest releases at each run

    def requirement(self) -> str:
        return f"apache-airflow{self.airflow}"


# The provider's own floors that are newer than an old cell's era.
OWN_FLOORS = ("apache-airflow-providers-common-compat", "moto")

CELLS = {
    "airflow2.11-lowest-py3.12": Cell(">=2.11.0,<2.12", "3.12", resolution="lowest-direct"),
    "airflow3.1-py3.12": Cell("==3.1.8", "3.12", exclude_newer="2026-04-10", newer=OWN_FLOORS),
    "airflow3.2-py3.12": Cell("==3.2.2", "3.12", exclude_newer="2026-06-28", newer=OWN_FLOORS),
    "airflow3.3-py3.11": Cell("==3.3.2", "3.11"),
    "airflow3.3-py3.12": Cell("==3.3.2", "3.12"),
    "airflow3.3-py3.13": Cell("==3.3.2", "3.13"),
    "latest-py3.13": Cell("", "3.13", locked=False),
}
# What CI runs besides `make test` (Airflow 3.3 on Python 3.11, from the lock) and `make
# test-latest`: the lowest and the newest locked cell.
CI_CELLS = ("airflow2.11-lowest-py3.12", "airflow3.3-py3.13")
# `make install`'s lock: the dev extra (linters, docs, OpenLineage too) on the newest releases as of
# its compile; `make lock` compiles it and every locked cell anew.
LOCKS = {"dev-py3.11": Cell("", "3.11", extra="dev")}


def uv() -> str:
    found = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        raise SystemExit("uv not found: run `make install` (it installs uv into .venv)")
    return found


def interpreter(version: str) -> str:
    """A CPython ``version`` interpreter: pyenv's, else one on PATH."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"))
    found = candidates[-1] if candidates else shutil.which(f"python{version}")
    if not found:
        raise SystemExit(f"Python {version} not found (looked in {pyenv_root}/versions and on PATH)")
    return found


def compile_cell(name: str, cell: Cell) -> None:
    CONSTRAINTS.mkdir(exist_ok=True)
    requirement = VENVS / f"{name}.in"
    VENVS.mkdir(exist_ok=True)
    requirement.write_text(f"{cell.requirement()}\n")
    command = [
        uv(), "pip", "compile", "pyproject.toml", str(requirement), "--extra", cell.extra,
        "--python", interpreter(cell.python), "--resolution", cell.resolution,
        "--upgrade", "--no-header", "--no-annotate", "--quiet", "-o", str(CONSTRAINTS / f"{name}.txt"),
    ]  # fmt: skip
    if cell.exclude_newer:
        command += ["--exclude-newer", cell.exclude_newer]
        command += [
            arg for package in cell.newer for arg in ("--exclude-newer-package", f"{package}={TODAY}")
        ]
    subprocess.run(command, cwd=ROOT, check=True)
    text = (CONSTRAINTS / f"{name}.txt").read_text()
    # The provider itself is installed from the checkout, never from a pin.
    text = re.sub(r"(?m)^(-e |airflow-provider-glue-labeling\b).*\n", "", text)
    era = f", as of {cell.exclude_newer} but {', '.join(cell.newer)}" if cell.exclude_newer else ""
    header = (
        f"# {name}: apache-airflow{cell.airflow}, extra {cell.extra}, Python {cell.python}, {cell.resolution}{era}\n"
        f"# Made on {TODAY} by `make lock` (`python dev/matrix.py compile {name}`); do not edit by hand.\n"
    )
    (CONSTRAINTS / f"{name}.txt").write_text(header + text)
    print(f"{name}: constraints/{name}.txt", flush=True)


def install(name: str, cell: Cell) -> Path:
    """The cell's venv, (re)built when its constraints, pyproject.toml or the version changed; an unlocked
    cell's, built anew each time with the newest releases."""
    venv = VENVS / name
    stamp = venv / ".installed"
    python = venv / "bin" / "python"
    pins: list[str] = []
    digest = None
    if cell.locked:
        constraints = CONSTRAINTS / f"{name}.txt"
        pins = ["-c", str(constraints)]
        # The package's __init__ holds its version, which the editable install's metadata carries.
        sources = (
            constraints,
            ROOT / "pyproject.toml",
            ROOT / "airflow_provider_glue_labeling" / "__init__.py",
        )
        digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()
        if stamp.exists() and stamp.read_text() == digest and python.exists():
            return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([uv(), "venv", "--quiet", "--python", interpreter(cell.python), str(venv)], check=True)
    # --refresh: an unlocked cell asks the index for what is newest now, not what uv's cache saw.
    fresh = [] if cell.locked else ["--refresh"]
    # --compile-bytecode: see the Makefile (with PYTHONDONTWRITEBYTECODE set, nothing else writes .pyc).
    command = [uv(), "pip", "install", "--quiet", "--compile-bytecode", *fresh, "--python", str(python)]
    subprocess.run(
        [*command, *pins, "-e", f".[{cell.extra}]"],
        cwd=ROOT,
        check=True,
    )
    if digest:
        stamp.write_text(digest)
    return python


def run_cell(name: str, cell: Cell, pytest_args: list[str]) -> tuple[str, str, float, float]:
    started = time.monotonic()
    python = install(name, cell)
    installed = time.monotonic() - started
    print(f"== {name}: installed in {installed:.0f}s; running the tests", flush=True)
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "2",
            "--dist",
            "loadfile",
            *pytest_args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = result.stdout.strip().splitlines()
    print("\n".join(lines[-25:] if result.returncode else lines[-1:]), flush=True)
    summary = lines[-1].strip("= ") if lines else "no output"
    versions = subprocess.run(
        [str(python), "-c", VERSIONS], capture_output=True, text=True, check=False
    ).stdout.strip()
    return (
        versions,
        summary if result.returncode == 0 else f"FAILED: {summary}",
        installed,
        time.monotonic() - started,
    )


VERSIONS = """
import platform
from importlib.metadata import version
print(" | ".join([platform.python_version(), version("apache-airflow"),
      version("apache-airflow-providers-amazon"), version("apache-airflow-providers-common-compat"),
      version("moto"), version("boto3")]))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("run", "compile", "list"))
    parser.add_argument(
        "cells",
        nargs="*",
        help="cells (default: all; for compile, every locked cell and the lock); 'ci' for CI's",
    )
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments, e.g. '-x -k dag'")
    args = parser.parse_args(argv)
    compiled = {**{n: c for n, c in CELLS.items() if c.locked}, **LOCKS}
    if args.action == "compile":
        names = args.cells or list(compiled)
        unknown = [n for n in names if n not in compiled]
        if unknown:
            parser.error(f"unknown lock(s) {unknown}; they are {list(compiled)}")
        for name in names:
            compile_cell(name, compiled[name])
        return 0
    names = list(CI_CELLS) if args.cells == ["ci"] else args.cells or list(CELLS)
    unknown = [n for n in names if n not in CELLS]
    if unknown:
        parser.error(f"unknown cell(s) {unknown}; cells are {list(CELLS)}")
    if args.action == "list":
        print("\n".join(names))
        return 0
    rows = [run_cell(name, CELLS[name], args.pytest_args.split()) for name in names]
    print(
        "\n| cell | Python | Airflow | Amazon provider | common-compat | moto | boto3 | result | install | total |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (versions, summary, installed, total) in zip(names, rows, strict=True):
        print(f"| {name} | {versions} | {summary} | {installed:.0f} s | {total:.0f} s |")
    return 1 if any(summary.startswith("FAILED") for _, summary, _, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
