# flagctl — everyday commands. `make demo` and `make test` work on a fresh clone.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
# The machine's PostgreSQL, if any: the DB suite runs against it too.
SYSTEM_PG := $(shell command -v pg_ctl 2>/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -n 1)

.PHONY: install prometheus chromium demo test test-embedded test-system test-slow torture lint bench schema-dump clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# $(call debian,BINARY,PACKAGE): install Debian's PACKAGE unless BINARY is there; as root, or through sudo.
define debian
	@if [ -x "$(1)" ]; then \
		echo "$(2): $(1) is installed"; \
	else \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(2) && \
		test -x "$(1)"; \
	fi
endef

## Prometheus for the guardrail tests (tests/db/test_prometheus.py), Debian's package, only if
## missing. Tests skip without it locally, and fail under CI=1.
PROMETHEUS ?= /usr/bin/prometheus

prometheus:
	$(call debian,$(PROMETHEUS),prometheus)

## Chromium for the status page's browser tests (tests/db/test_status_page.py): Playwright drives
## this binary (no `playwright install`, no download). Debian's package, only if missing. Tests
## skip without it locally, and fail under CI=1.
CHROMIUM ?= /usr/bin/chromium

chromium:
	$(call debian,$(CHROMIUM),chromium)

## Run the WS8 Phase 3 walk-through on the embedded PostgreSQL.
demo: install
	$(VENV)/bin/flagctl demo

## All tests on the embedded PostgreSQL 18, then the DB suite on the system PostgreSQL if present.
test: test-embedded test-system

# One embedded (or system) server per worker, each test in its own database: the suite
# parallelises cleanly. Two workers per core (at most 8): a worker spends much of its time waiting on its server,
# so on two cores four workers finish in 112 s where two took 141 s. The Prometheus tests
# share one worker, so one Prometheus starts, not one per worker.
WORKERS := $(shell n=$$(nproc 2>/dev/null || echo 2); w=$$((n * 2)); [ $$w -gt 8 ] && w=8; echo $$w)
PARALLEL ?= -n $(WORKERS) --dist loadgroup

test-embedded: install
	$(PY) -m pytest -q -m "not slow" --durations=10 $(PARALLEL)

test-system: install
ifneq ($(SYSTEM_PG),)
	FLAGCTL_TEST_SERVER=system $(PY) -m pytest -q -m "db and not slow" --durations=10 $(PARALLEL)
else
	@echo "no system PostgreSQL (pg_ctl) on this machine: DB suite ran on the embedded server only"
endif

## Torture-sized variants (e.g. a kill of 16,000 flags), on the embedded PostgreSQL.
test-slow: install
	$(PY) -m pytest -q -m slow

## The full torture run alone (8 processes × 200 random operations); FLAGCTL_TORTURE_SEED=N for another mix.
torture: install
	$(PY) -m pytest -q -s -m slow tests/db/test_torture.py

lint: install
	$(VENV)/bin/ruff check flagctl tests bench
	$(VENV)/bin/ruff format --check flagctl tests bench
	$(VENV)/bin/mypy flagctl

## Kill latency (flagctl vs bare psycopg vs psql), bucketing throughput, flagctl serve under load
## (bench/serve_bench.py drives it with Debian's wrk, installed here if missing) and more: docs/performance.md.
bench: install
	$(PY) -m pip install --quiet -e '.[bench]'
	@command -v wrk >/dev/null 2>&1 || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk \
		|| echo "wrk could not be installed: serve_bench.py skips requests per second"
	$(PY) bench/cli_startup.py
	$(PY) bench/kill_latency.py
	$(PY) bench/kill_wide.py
	$(PY) bench/bucket_throughput.py
	$(PY) bench/drill_ttm.py
	$(PY) bench/notify_kill.py
	$(PY) bench/gate_bench.py
	$(PY) bench/gate_exemptions.py
	$(PY) bench/audit_scale.py
	$(PY) bench/audit_restore.py
	$(PY) bench/fanout_bench.py
	$(PY) bench/flag_scale.py
	$(PY) bench/serve_bench.py

## docs/schema.sql: the schema of a fresh install, after a change to flagctl/sql (a test checks it).
schema-dump: install
	$(PY) -m flagctl.store.schema_dump docs/schema.sql

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
