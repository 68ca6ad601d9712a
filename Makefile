# mlops-platform. `make plan` and `make test` work on a fresh clone: the
# virtualenv is created and the pinned requirements installed on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK ?=
BASE ?= origin/main
PLAN_DIR := build/plan
# Python's default: the project's modules are compiled once into __pycache__
# (git-ignored), not again in every test worker and every `python -m tools...`
# the tests start, even where the environment turns bytecode caching off.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help install lint format test plan plan-diff preview up loadtest clean
.DEFAULT_GOAL := help

# One `--stack` per name in STACK (a name, a stack file name or its path).
STACK_ARGS = $(foreach stack,$(STACK),--stack $(stack))

help: ## Show the targets and what they do (the default)
	@echo "make <target> [STACK=\"name ...\"] [BASE=<revision>]"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 14

install: $(STAMP) ## Create .venv and install the pinned requirements (every target does this first)

# The last step puts the repository on the venv's path: Pulumi runs dynamic
# providers in a process of their own, which imports them from `infra`.
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -c "import pathlib, site; pathlib.Path(site.getsitepackages()[0], 'mlops-platform.pth').write_text(str(pathlib.Path.cwd()) + chr(10))"
	touch $(STAMP)

lint: $(STAMP) ## ruff lint and format check, workflow schema and security checks, actions pinned to commits
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(PY) -m tools.pinned_actions
	$(VENV)/bin/zizmor --offline --quiet .github/workflows

format: $(STAMP) ## Fix lint findings and format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(STAMP) ## The test suite on Pulumi mocks
	$(PY) -m pytest

plan: $(STAMP) ## Plan every stack offline, or those in STACK, into build/plan
	$(PY) -m tools.plan --out $(PLAN_DIR) $(STACK_ARGS)

plan-diff: $(STAMP) ## What this checkout changes against BASE (default origin/main), every stack or STACK
	$(PY) -m tools.plandiff --base $(BASE) $(STACK_ARGS)

preview: $(STAMP) ## pulumi preview with the policy pack, every stack or STACK (needs the Pulumi CLI)
	$(PY) -m tools.pulumi_cli preview $(STACK_ARGS)

up: $(STAMP) ## pulumi up with the policy pack for STACK (needs the Pulumi CLI)
	$(PY) -m tools.pulumi_cli up $(STACK_ARGS)

# `make loadtest STACK=aws-dev ENDPOINT=churn PAYLOAD=sample.json [USERS=4]
# [SPAWN_RATE=2] [DURATION=60] [URL=https://...] [CONTENT_TYPE=...]`: an
# unset option is left to the tool's default.
LOADTEST_ARGS = $(if $(ENDPOINT),--endpoint '$(ENDPOINT)') $(if $(PAYLOAD),--payload '$(PAYLOAD)') \
	$(if $(USERS),--users '$(USERS)') $(if $(SPAWN_RATE),--spawn-rate '$(SPAWN_RATE)') \
	$(if $(DURATION),--duration '$(DURATION)') $(if $(URL),--url '$(URL)') \
	$(if $(CONTENT_TYPE),--content-type '$(CONTENT_TYPE)')

loadtest: $(STAMP) ## Load-test STACK's ENDPOINT with PAYLOAD (USERS, SPAWN_RATE, DURATION, URL) into build/loadtest
	$(PY) -m tools.loadtest $(STACK_ARGS) $(LOADTEST_ARGS)

clean: ## Remove build/ (plans, plan diffs) and tool caches; keeps .venv
	rm -rf build .pytest_cache .ruff_cache
