# The two commands a fresh machine needs: `make run` and `make test`.
PY := .venv/bin/python
# Strict: a broken link or anchor fails the build. Not --quiet, which hides the warnings that
# strict counts. NO_MKDOCS_2_WARNING silences Material's notice about its own end of life.
DOCS_BUILD := NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

.PHONY: run test test-cluster lint docs format bench install install-dev clean

run: install  ## the whole system on embedded defaults: gateway on :8000, one of each worker
	$(PY) -m scripts.stack

# Run one after another, the tests keep about one core busy: much of their time they wait on
# services and engines in other processes. Two pytest workers (a test file to each, so a module's
# stack starts once) keep two busy. Tests marked `alone` restart the broker under everyone, so
# they run afterwards, by themselves.
TEST_WORKERS ?= 2

test: install-dev  ## lint, types, the docs, then every test (unit and end-to-end)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .
	$(PY) -m scripts.settings_reference --check
	$(DOCS_BUILD)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not alone and not cluster"
	$(PY) -m pytest -m "alone and not cluster"

# Three RabbitMQ nodes of its own, joined into a cluster, and one killed during a burst of jobs
# (about a minute and a half): by itself, after `make test`.
test-cluster: install-dev  ## the cluster tier: a broker node lost during a burst loses no job
	$(PY) -m pytest -m cluster

SCENARIO ?= run
bench: install-dev  ## the benchmark; SCENARIO=long (one long recording), decoding or live (live sessions); BENCH_ARGS="--jobs 20 --workers 2" to change it
	$(PY) -m bench.$(SCENARIO) $(BENCH_ARGS)

lint: install-dev  ## the static checks: ruff, mypy, the settings reference and the docs' links
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .
	$(PY) -m scripts.settings_reference --check
	$(DOCS_BUILD)

docs: install-dev  ## the documentation site on http://127.0.0.1:8001, rebuilt as pages change
	$(PY) -m scripts.settings_reference
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8001

format: install-dev
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

install:
	scripts/bootstrap.sh

install-dev:
	scripts/bootstrap.sh --dev

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
