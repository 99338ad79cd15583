# sidecar-lab — `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
SERVICES := app config-sidecar log-sidecar exporter mesh-proxy
PACKAGES := libs/sidecar_common $(addprefix services/,$(SERVICES)) services/sink-emulators
REQUIREMENTS := requirements-dev.txt libs/sidecar_common/requirements.txt $(addsuffix /requirements.txt,$(addprefix services/,$(SERVICES)))
LINT_PATHS := libs services tests bench scripts

.PHONY: help install test test-unit test-integration test-manifests lint fmt ci clean-venv

help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# system-deps (mk/system.mk) adds the Debian packages the tests need when it can (root or
# passwordless sudo on apt); it is silent when nothing is missing.
install: system-deps $(VENV)/.installed ## Create .venv with every service (editable) and the dev tools; as root also mk/system-packages.txt

$(VENV)/.installed: $(REQUIREMENTS) $(addsuffix /pyproject.toml,$(PACKAGES))
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(addprefix -r ,$(REQUIREMENTS))
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(addprefix -e ,$(PACKAGES))
	touch $@

test: install ## Run every test layer that needs no Docker (unit, integration, manifests)
	$(BIN)/pytest -m "not e2e" $(PYTEST_ARGS)

test-unit: install ## Run the unit tests only
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

test-integration: install ## Run the integration tests (real processes on 127.0.0.1)
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

lint: install ## Run ruff (lint and format check) and mypy (--strict on the services, libs and scripts)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy libs/sidecar_common/sidecar_common services/app/demo_app services/config-sidecar/config_sidecar services/log-sidecar/log_sidecar services/exporter/metrics_exporter services/sink-emulators/sink_emulators services/mesh-proxy/mesh_proxy scripts/local_pod.py
	$(BIN)/mypy tests bench

fmt: install ## Format and auto-fix the code with ruff
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

ci: lint test ## What CI runs before the Docker layer: lint and every non-Docker test

clean-venv: ## Remove .venv
	rm -rf $(VENV)

# Each area (docker, k8s, local pod, bench) keeps its targets in mk/<area>.mk.
include $(sort $(wildcard mk/*.mk))
