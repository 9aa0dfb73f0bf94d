# The whole set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# torch is pinned to the CPU wheel on these machines' disk (see constraints.txt).
PIP_INSTALL := $(PIP) install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test lint typecheck pytest fast-test bench-env bench bench-scan bench-privacy bench-theft bench-poisoning bench-data clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --upgrade pip

$(VENV)/.installed-all: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e ".[all]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e ".[all,dev]"
	touch $@ $(VENV)/.installed-all

demo: $(VENV)/.installed-all
	$(BIN)/mlwarden demo --out demo-report/

test: $(VENV)/.installed-dev
	$(MAKE) lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest

fast-test: $(VENV)/.installed-dev
	$(BIN)/pytest -m "not slow"

# Peers for the side-by-side benchmarks live in their own environment, never in the
# package's dependencies. torchattacks is installed without its declared torchvision and
# requests pins, which it does not import.
BENCH_VENV := .bench-venv
BENCH_BIN := $(BENCH_VENV)/bin

$(BENCH_VENV)/.installed: pyproject.toml constraints.txt benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BENCH_BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		-e ".[all]" -r benchmarks/requirements.txt
	$(BENCH_BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		torchattacks==3.5.1
	touch $@

bench-env: $(BENCH_VENV)/.installed

bench: bench-env
	$(BENCH_BIN)/python benchmarks/evasion_vs_peers.py

bench-scan: bench-env
	$(BENCH_BIN)/python benchmarks/scan_vs_peers.py

bench-privacy: bench-env
	$(BENCH_BIN)/python benchmarks/privacy_vs_peers.py

bench-theft: bench-env
	OMP_NUM_THREADS=1 $(BENCH_BIN)/python benchmarks/theft.py
	OMP_NUM_THREADS=1 $(BENCH_BIN)/python benchmarks/theft_detectors.py

bench-poisoning: bench-env
	OMP_NUM_THREADS=1 $(BENCH_BIN)/python benchmarks/poisoning.py

bench-data: bench-env
	$(BENCH_BIN)/python benchmarks/data_manifest.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) demo-report .mypy_cache .ruff_cache .pytest_cache
