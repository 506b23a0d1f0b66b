# opslens: `make demo` runs the whole pipeline on bundled data; `make test` runs lint, types and tests.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# every dependency pinned, for every extra: what CI passed with (`make lock` refreshes it)
LOCK := requirements.lock
LOCK_ARGS := --all-extras --python-version 3.11 --python-platform x86_64-unknown-linux-gnu

.PHONY: demo test lint typecheck docs pytest bench lock clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; fix: install Python 3.11 or run make PYTHON=python3"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# after installing, the fingerprint kernels are compiled into numba's cache once, so the
# first fleet run costs what the second does
$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) -e .
	$(BIN)/python -m opslens.features.warm
	@touch $@

$(DEV_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
	$(BIN)/python -m opslens.features.warm
	@touch $@ $(STAMP)

demo: $(STAMP)
	$(BIN)/opslens demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# the documentation site (docs/, mkdocs.yml) into site/; a broken link or an unreadable
# docstring fails it (--strict)
docs: $(DEV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

pytest: $(DEV_STAMP)
	$(BIN)/python -m pytest -n 2 -q

test: lint typecheck docs pytest

bench: $(DEV_STAMP)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev,bench]'
	$(BIN)/python benchmarks/stream_latency.py
	$(BIN)/python benchmarks/distribution_batch.py
	$(BIN)/python benchmarks/fingerprints_vs_tsfresh.py
	$(BIN)/python benchmarks/fleet_scaling.py
	$(BIN)/python benchmarks/report_build.py
	$(BIN)/python benchmarks/ui_fleet_page.py
	$(BIN)/python benchmarks/residual_nab.py ../shared/datasets/nab
	$(BIN)/python benchmarks/spark_vs_local.py
	$(BIN)/python benchmarks/online_checker.py
	$(BIN)/python benchmarks/service_load.py
	$(BIN)/python benchmarks/bad_inputs.py
	$(BIN)/python benchmarks/segments_batch.py
	$(BIN)/python benchmarks/segments_assign.py
	$(BIN)/python benchmarks/segments_training.py
	$(BIN)/python benchmarks/propensity_sessionize.py
	$(BIN)/python benchmarks/propensity_features.py
	$(BIN)/python benchmarks/propensity_production.py

# re-resolve the lock after a change to pyproject.toml, keeping the pins that still fit;
# `make lock UPGRADE=1` moves every pin to the newest release pyproject.toml allows
lock: | $(BIN)/python
	$(BIN)/pip install --quiet 'uv>=0.5,<1'
	$(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) $(if $(UPGRADE),--upgrade) \
		--custom-compile-command 'make lock' --output-file $(LOCK)

clean:
	rm -rf $(VENV) opslens-demo site .pytest_cache .mypy_cache .ruff_cache
