# CWOM service — developer entry points.  `make help` lists them.
#
#   make run    migrate, (demo data if the command exists), Celery worker+beat, the ASGI app (API + /mcp)
#               under uvicorn on HOST:PORT, reloading on code changes
#               (default 127.0.0.1:8000; e.g. make run HOST=0.0.0.0 PORT=8080)
#   make test   pytest (PYTEST_ARGS="-k foo -x" to narrow)
#   make lint   ruff check + ruff format --check + makemigrations --check + manage.py check + mypy
#
# Needs only Python >= 3.11: with no DATABASE_URL / CELERY_BROKER_URL the service runs on an
# embedded SQLite file and a filesystem broker under var/.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
VENV_STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements/*.txt)
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_SETTINGS := cwom_site.settings_test

.PHONY: help venv .venv run test lint fmt mypy bench clean

help:
	@echo "Targets:"
	@echo "  make venv    create $(VENV) with $(PYTHON) and install requirements/dev.txt"
	@echo "  make run     migrate, load demo data if empty, start a Celery worker (+beat) and serve the API"
	@echo "               and the MCP server (/mcp) with uvicorn"
	@echo "               on HOST:PORT (default 127.0.0.1:8000)"
	@echo "  make test    run the test suite (PYTEST_ARGS='...' to pass options to pytest)"
	@echo "  make lint    ruff check, ruff format --check, makemigrations --check, manage.py check, mypy"
	@echo "  make fmt     ruff format + ruff check --fix"
	@echo "  make mypy    type-check with mypy + django-stubs"
	@echo "  make bench   run the benchmarks (see bench/)"
	@echo "  make clean   remove var/, $(VENV) and caches"

# --- virtual environment --------------------------------------------------------------------------
# The interpreter is created once; the stamp is refreshed whenever a requirements file changes.

venv .venv: $(VENV_STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: '$(PYTHON)' is missing or older than Python 3.11 (found: $$($(PYTHON) -V 2>&1))." >&2; \
	  echo "       Install Python 3.11+ or run e.g. 'make PYTHON=python3.12 ...'." >&2; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV_STAMP): $(PY) $(REQUIREMENTS)
	$(PY) -m pip install --disable-pip-version-check --quiet -r requirements/dev.txt
	@touch $@

# --- run ------------------------------------------------------------------------------------------

# An IPv6 address is written in brackets in URLs and ALLOWED_HOSTS (uvicorn takes it bare); the banner shows
# a wildcard bind as an address that answers.
HOST_NAME = $(if $(findstring :,$(HOST)),[$(HOST)],$(HOST))
URL_HOST = $(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST_NAME))

run: export DEBUG ?= 1
run: export ALLOWED_HOSTS ?= localhost,127.0.0.1,[::1],$(HOST_NAME)
run: $(VENV_STAMP)
	@[[ "$(PORT)" =~ ^[0-9]+$$ ]] && (( $(PORT) >= 1 && $(PORT) <= 65535 )) || { \
	  echo "error: PORT must be a TCP port number (1-65535), got '$(PORT)'." >&2; exit 2; }
	@[[ -n "$(HOST)" && "$(HOST)" != *[[:space:]]* ]] || { echo "error: HOST must be an address, got '$(HOST)'." >&2; exit 2; }
	@mkdir -p var
	$(MANAGE) migrate --noinput
	@if $(MANAGE) help cwom_demo >/dev/null 2>&1; then \
	  echo "$(MANAGE) cwom_demo --if-empty"; $(MANAGE) cwom_demo --if-empty; \
	else \
	  echo "(no cwom_demo command: skipping demo data)"; \
	fi
	@echo ""
	@echo "  CWOM service (DEBUG=$(DEBUG))"
	@echo "    API    http://$(URL_HOST):$(PORT)/api/v1/"
	@echo "    Docs   http://$(URL_HOST):$(PORT)/api/v1/docs/"
	@echo "    Admin  http://$(URL_HOST):$(PORT)/admin/   (create a login: DEBUG=1 $(MANAGE) createsuperuser)"
	@echo "    MCP    http://$(URL_HOST):$(PORT)/mcp      (Streamable HTTP, Bearer token; stdio: $(MANAGE) cwom_mcp)"
	@$(if $(filter 0.0.0.0 ::,$(HOST)),echo "  Listening on every interface: set ALLOWED_HOSTS to the names clients use (now: $$ALLOWED_HOSTS).")
	@echo "    Token  DEBUG=1 $(MANAGE) cwom_token create my-agent --write"
	@echo "  Ctrl-C stops the web server and the worker."
	@echo ""
	@$(VENV)/bin/celery -A cwom_site worker -B --loglevel=INFO --concurrency=2 & \
	worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; \
	trap 'exit 130' INT TERM; \
	$(VENV)/bin/uvicorn cwom_site.asgi:application --host $(HOST) --port $(PORT) \
	  --reload --reload-dir cwom --reload-dir cwom_site --reload-dir execution

# --- quality --------------------------------------------------------------------------------------

test: $(VENV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(MANAGE) makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(MANAGE) check
	$(VENV)/bin/mypy

fmt: $(VENV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

mypy: $(VENV_STAMP)
	$(VENV)/bin/mypy

bench: $(VENV_STAMP)
	@if [ -f bench/Makefile ]; then \
	  $(MAKE) -C bench; \
	else \
	  echo "No bench/Makefile yet: see bench/README.md for how to run the benchmarks."; \
	fi

clean:
	rm -rf var .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis staticfiles
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
