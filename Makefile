# imagerec: `make run` sets up and starts the local server; `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Node tools for the checks (asl-validator), pinned in package-lock.json, in ./node_modules.
NODE_STAMP := node_modules/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# TensorFlow's C++ start-up chatter helps nobody here.
export TF_CPP_MIN_LOG_LEVEL := 2

include mk/iac.mk

.PHONY: help setup model run test lint typecheck unit check check-image-wheels bench eval events clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
	  | sed -e 's/$$(HOST)/$(HOST)/g' -e 's/$$(PORT)/$(PORT)/g' \
	  | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt constraints.txt functions/classify/requirements.txt functions/classify/requirements-build.txt layers/imagerec/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e layers/imagerec
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

setup: $(STAMP) model $(NODE_STAMP)  ## create .venv and node_modules with pinned dependencies and build the default model

model: $(STAMP)  ## build the default model artefact (once; cached)
	@$(VENV)/bin/imagerec build-model >/dev/null  # stderr already says where it is

run: setup  ## set up, then serve the page and the API at http://$(HOST):$(PORT)/ (PORT=9000 for another port)
	@$(VENV)/bin/imagerec serve --host $(HOST) --port $(PORT)

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)  ## mypy --strict on the package, the function and the benchmarks
	$(VENV)/bin/mypy

unit: $(STAMP)  ## unit tests that need no built model (no sockets; seconds)
	$(PY) -m pytest -m "unit and not model" -q

check-image-wheels: $(STAMP)  ## the function image's pins resolve as wheels for its Python, glibc and both architectures
	$(PY) scripts/check_image_wheels.py

check: lint typecheck check-template check-image-wheels  ## every static check

test: setup check  ## lint, types, template checks, then every test (unit, integration, browser)
	$(PY) -m pytest -q

bench: setup  ## benchmarks: writes benchmarks/results.json, docs/benchmarks.md and the README's speed line
	@# The models section compares Lite0 with Lite1 and Lite2: built once (~1 min each), offline.
	$(VENV)/bin/imagerec build-model efficientnet_lite1
	$(VENV)/bin/imagerec build-model efficientnet_lite2
	$(PY) -m benchmarks

eval: $(STAMP)  ## accuracy on 882 real photos per Lite model (top-1, top-5, summaries): writes docs/accuracy.md
	@# The photos: $$IMAGEREC_EVAL_DIR, else ../shared/eval/imagenet-sample (docs/accuracy.md).
	$(VENV)/bin/imagerec build-model efficientnet_lite1
	$(VENV)/bin/imagerec build-model efficientnet_lite2
	$(PY) -m benchmarks.accuracy

events: $(STAMP)  ## regenerate events/*.json from the sample photos
	$(PY) scripts/make_events.py

clean:  ## remove caches (not .venv, not built models)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .aws-sam test-artifacts
	find . -name __pycache__ -prune -exec rm -rf {} +
