# ldm — set-up and main entry points. The README's first two commands:
#   make quickstart   # creates .venv, installs, runs the main job
#   make test         # creates .venv if missing, installs dev extras, runs pytest
#
# Why torch is installed first and on its own: a plain `torch` requirement with no
# torch present makes pip/uv fetch a multi-GB CUDA build. `pip install torch==2.13.0`
# takes the CPU wheel that lies on this machine's disk (pip's find-links); once it is
# installed, the project's `torch>=2.4` range is satisfied and nothing more is pulled.
# On a GPU machine set TORCH_SPEC to the build you want (e.g. TORCH_SPEC=torch).
# uv (installed from PyPI into .venv) then installs the rest in seconds; ldm also uses
# it to build each environment library's own isolated virtual environment.
# --no-compile: pip would compile all of torch's Python files to bytecode (36.6 s of install
# against 16.2 s without, measured on a fresh venv); uv compiles none either, and Python
# writes the bytecode of what is imported on first import (3.4 s for `import torch`).

PYTHON ?= python3
VENV   ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
PYTEST_ARGS ?=
# Git-only env libraries (gym-inventory, growspace, ...) install from a local mirror of their
# source trees when one lies beside the repository (machines without GitHub); unset, from git.
LDM_SOURCE_MIRROR ?= $(wildcard $(abspath ../shared/envlibs))
export LDM_SOURCE_MIRROR

# Containers and CI images often set PYTHONDONTWRITEBYTECODE=1 (this machine does): then every
# Python process compiles what it imports again, and uv installs no bytecode. Measured on a
# fresh .venv: `import stable_baselines3` 8.6 s each time, 3.5 s once its bytecode exists;
# transformers' Llama 13.1 s / 8.7 s. Let Python write bytecode (once per venv, on first import).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: quickstart suite wide test test-long test-docker install lint format bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile "$(TORCH_SPEC)" uv
	$(UV) pip install -q --python $(PY) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

quickstart: install
	$(VENV)/bin/ldm run configs/quickstart.toml

# one LDM across every installable library (configs/suite.toml; resumable: run it again), its
# references budgeted by rule (the `auto` profile: no hand budgets, ~2.5 h on 2 cores); the
# hand-budgeted references of the tables in the file: `ldm run configs/suite.toml` (~1.3 h)
suite: install
	$(VENV)/bin/ldm run configs/suite.toml --profile auto

# one LDM across envs picked and budgeted by rule (configs/wide.toml; resumable: run it again;
# `ldm status runs/wide` shows stage times, why runs stopped and an estimate of what is left;
# `ldm run configs/wide.toml --dry-run` the pick and why every other env is out)
wide: install
	$(VENV)/bin/ldm run configs/wide.toml

# the whole suite but the container tests (those build Docker images: make test-docker)
test: install
	$(PY) -m pytest -m "not docker and not long" $(PYTEST_ARGS)

# the tests that take minutes each (the wide smoke run, Ray clusters whose workers are killed);
# CI runs them after `make test`
test-long: install
	$(PY) -m pytest -m "long and not docker" $(PYTEST_ARGS)

test-docker: install
	$(PY) -m pytest -m docker $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	for b in bench/*.py; do $(PY) $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
