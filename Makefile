# DigitGlyph entry points.  `make app` and `make test` do their own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8866
HOST ?= 127.0.0.1
MAX_SESSIONS ?= 40
POOL ?= 32
CULL_AFTER ?= 60
CONNECT_GRACE ?= 300
FRONTEND ?= light
KERNEL_START ?= fork
REFILL_AFTER ?= 30
ALLOW_HOSTS ?=
DIGITGLYPH_DATA ?= $(abspath ../shared/mnist)
DIGITGLYPH_PEN_DATA ?= $(abspath ../shared/pendata)
export DIGITGLYPH_DATA DIGITGLYPH_PEN_DATA
export TF_CPP_MIN_LOG_LEVEL ?= 3
STAMP := $(VENV)/.installed

.PHONY: setup app test test-python test-web lint web ship sweep reports benchmarks kernel clean-web

# The full set (training, notebooks, app, web, tests) from the lock; `pip install .` alone is the light core.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name digitglyph --display-name "Python (digitglyph)"
	touch $(STAMP)

# Debian's chromium for the browser tests, node packages for the web page.
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

setup: $(STAMP) /usr/bin/chromium web/node_modules/.package-lock.json

kernel: $(STAMP)

## The main job: the Voila drawing app with the shipped model (no training).
app: $(STAMP)
	$(PY) -m digitglyph.serve --host $(HOST) --port $(PORT) --max-sessions $(MAX_SESSIONS) --pool $(POOL) \
		--cull-after $(CULL_AFTER) --connect-grace $(CONNECT_GRACE) --refill-after $(REFILL_AFTER) --frontend $(FRONTEND) \
		--kernel-start $(KERNEL_START) $(foreach h,$(ALLOW_HOSTS),--allow-host $(h))

## All tests: lint, JavaScript (node --test) and Python (unit, notebooks, browser).
test: setup
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-web
	$(MAKE) --no-print-directory test-python

test-python: $(STAMP)
	$(VENV)/bin/pytest -q

test-web: web/node_modules/.package-lock.json
	cd web && node --test test/

## Lint and format check (ruff, configured in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

web: $(STAMP) web/node_modules/.package-lock.json
	$(PY) -m digitglyph.export

## Ship a finished run as the model the apps use: make ship RUN=runs/my-run (folds batch norms, float16 weights).
ship: $(STAMP)
	@test -n "$(RUN)" || { echo "usage: make ship RUN=runs/<finished run dir>"; exit 2; }
	$(VENV)/bin/digitglyph ship $(RUN)

sweep: $(STAMP)
	$(VENV)/bin/digitglyph sweep sweeps/default.yaml

reports: $(STAMP)
	$(VENV)/bin/digitglyph reports

benchmarks: $(STAMP)
	for script in benchmarks/*.py; do $(PY) $$script || exit 1; done
