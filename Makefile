# Two commands on a fresh machine: `make demo` and `make test`.
# Both bootstrap a local virtual environment (.venv) first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  # explore runs its seeds on every core (-j defaults to the number of cores)
	$(BIN)/brh-sim explore --seeds 100 --out reports/demo --report-first
	@echo
	@echo "Timeline reports and replay files are in reports/demo/ (open the .html files)."
	@echo "A guided story of three devices: .venv/bin/python -m simulator.demo"

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check brh hivevault simulator conformance vaultd tests benchmarks examples
	$(BIN)/ruff format --check brh hivevault simulator conformance vaultd tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy examples

unit: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/sync_cost.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
