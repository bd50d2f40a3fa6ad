# The two commands: `make run` and `make test`. Everything else here serves them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test chaos lint format bench browser screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check ".[test]"
	touch $(STAMP)

## Start the whole community locally: web (uvicorn), Celery worker and beat, embedded Redis.
run: $(STAMP)
	$(BIN)/python manage.py launch

## Run the whole test suite (SQLite and embedded Redis unless DATABASE_URL / REDIS_URL are set).
test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The fault tests (tests/chaos): kill and restart uvicorn workers, Celery, PostgreSQL and Redis.
## They start a PostgreSQL cluster and a redis-server of their own and touch no other server.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos $(PYTEST_ARGS)

## Debian's chromium drives the browser tests (Playwright's own download cannot work offline).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is not installed: browser tests will be skipped (CI refuses to skip them)."; \
	    echo "Install it with: sudo apt-get install chromium"; \
	  fi; \
	fi

## Refresh docs/screenshots/ from the three-person browser test of the room.
screenshots: $(STAMP) browser
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -q tests/e2e/test_room_experience.py

## Measure (not assert) speed: every scenario of bench/run.py, the full stack side by side with
## stock Channels and a raw websockets server (under 10 minutes; results in bench/results/).
## BENCH_ARGS=--quick is the smoke run CI makes (tests/bench/), --profile adds py-spy profiles,
## "--scenarios ab --servers stack,stock,raw,floor" adds the storing floor (PostgreSQL only).
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -r community groups moderation companion -lll -q

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .local
