# The two commands a fresh machine needs: `make run` and `make test`.
PY := .venv/bin/python

.PHONY: run test lint format bench install install-dev clean

run: install  ## the whole system on embedded defaults: gateway on :8000, one of each worker
	$(PY) -m scripts.stack

test: install-dev  ## lint, types, then every test (unit and end-to-end)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .
	$(PY) -m pytest

SCENARIO ?= run
bench: install-dev  ## the benchmark; SCENARIO=long (one long recording), decoding or live (live sessions); BENCH_ARGS="--jobs 20 --workers 2" to change it
	$(PY) -m bench.$(SCENARIO) $(BENCH_ARGS)

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

format: install-dev
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

install:
	scripts/bootstrap.sh

install-dev:
	scripts/bootstrap.sh --dev

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
