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

.PHONY: install lint format test plan plan-diff preview up clean

install: $(STAMP)

# The last step puts the repository on the venv's path: Pulumi runs dynamic
# providers in a process of their own, which imports them from `infra`.
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -c "import pathlib, site; pathlib.Path(site.getsitepackages()[0], 'mlops-platform.pth').write_text(str(pathlib.Path.cwd()) + chr(10))"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(STAMP)
	$(PY) -m pytest

plan: $(STAMP)
	$(PY) -m tools.plan --out $(PLAN_DIR) $(if $(STACK),--stack $(STACK))

plan-diff: $(STAMP)
	$(PY) -m tools.plandiff --base $(BASE) $(if $(STACK),--stack $(STACK))

preview: $(STAMP)
	$(PY) -m tools.pulumi_cli preview $(if $(STACK),--stack $(STACK))

up: $(STAMP)
	$(PY) -m tools.pulumi_cli up --stack $(STACK)

clean:
	rm -rf build .pytest_cache .ruff_cache
