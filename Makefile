# Each target sets itself up: a .venv with the package and its dev tools, installed once from the
# committed lock (the versions the project was tested with); again when the lock, pyproject or the
# package's __init__ (its version, which the editable install's metadata carries) changes.
PYTHON ?= $(shell command -v python3.11 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
LOCK := constraints/dev-py3.11.txt
STAMP := $(VENV)/.installed-dev

.PHONY: install lock browser lint typecheck test suite test-matrix test-latest constraints dist docs demo bench bench-stopping bench-agreement bench-review bench-review-memory bench-page clean

install: $(STAMP)

# The lock is for Python 3.11 (uv resolves for one version): the venv is made with it.
# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is set (as on
# this project's machines) nothing ever does, so every process compiled what it imports from
# source: about 3.5 s of CPU for each Airflow component, task and CLI call (importing Airflow's
# models: 5.3 s, 1.7 s compiled).
$(STAMP): pyproject.toml $(LOCK) airflow_provider_glue_labeling/__init__.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $$(grep '^uv==' $(LOCK))
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) --constraint $(LOCK) -e '.[dev]'
	touch $(STAMP)

# Resolve the lock and every locked matrix cell anew, to the newest releases the ranges admit
# (needs the package index). Then run `make test test-matrix` before committing what changed.
lock: install
	$(PY) dev/matrix.py compile

# The labeling page's browser test drives Debian's chromium (Playwright cannot download its own).
browser:
	@command -v chromium >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# The type check (one core, about 30 s) runs beside the tests, which spend part of their time
# waiting on Airflow's processes.
test: lint browser
	$(MAKE) --no-print-directory -j2 typecheck suite

# Two workers, a test module each at a time (a module's fixtures, e.g. a deployment, stay on one),
# the longest modules first (tests/conftest.py).
suite: install
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

# Every cell of the support matrix (dev/matrix.py): CELLS="a b" for some, CELLS=ci for CI's.
test-matrix: install browser
	$(PY) dev/matrix.py run $(CELLS)

# Resolve some of the matrix's constraints files anew: CELLS="a b" (needs the package index).
constraints: install
	$(PY) dev/matrix.py compile $(CELLS)

# Drift: the tests on the newest releases the ranges admit (no lock), then a user's fresh install
# (pip, nothing pinned) running a first DAG on the emulator. Needs the package index.
test-latest: install browser
	$(PY) dev/matrix.py run latest-py3.13
	$(PY) dev/fresh_install.py

# The sdist and the wheel under dist/, checked by twine.
dist: install
	rm -rf dist
	$(VENV)/bin/uv build
	rm -rf *.egg-info  # setuptools' leftover; beside the checkout it is a second copy of the package
	$(VENV)/bin/twine check --strict dist/*

# The provider's documentation (how-to pages with snippets of the example DAGs), warnings as errors.
docs: install
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs/_build/html/index.html"

demo: install
	$(PY) -m dev.demo

bench: install
	$(PY) bench/triggerer_bench.py

# Where the evaluation's decision stops asking for labels, against the known truth: 100 seeds
# never used to choose the rule (1000-1099), about 16 minutes on 2 cores.
bench-stopping: install
	$(PY) bench/stopping_bench.py --first-seed 1000 --seeds 100

# Overlap, agreement, the gate and adjudication against simulated labelers (one careless), on 50
# seeds never used to choose the thresholds (1000-1049); see docs/agreement.md.
bench-agreement: install
	$(PY) bench/agreement_bench.py --first-seed 1000 --seeds 50

# Review sets against more of Glue's labeling sets, once the transform has plateaued, against the
# truth: 20 seeds never used while building the review sets (1000-1019), about 2 minutes on 2 cores.
bench-review: install
	$(PY) bench/review_bench.py --first-seed 1000 --seeds 20

# What building a review set holds in the worker, per record of the matching output: about 2 minutes.
bench-review-memory: install
	$(PY) bench/review_memory.py --first-seed 1000 --seeds 3

# The labeling page with 3,000 records and 300 drafts, in Chromium on a real deployment (Airflow 3.1+).
bench-page: install browser
	$(PY) bench/labeling_page_bench.py

clean:
	rm -rf $(VENV) .matrix .airflow .mypy_cache .ruff_cache build dist docs/_build
