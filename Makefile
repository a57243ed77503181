# Two commands on a fresh machine: `make run` (the workbench) and `make test` (the test suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 7860
ARGS ?=

.PHONY: run test install dev-install gpu-install bench clean-venv

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# A stamp per requirements file: editing one re-runs the install, nothing else does.
$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

dev-install: $(VENV)/.dev-installed

gpu-install: $(VENV)/.installed
	$(PY) -m pip install -r requirements-gpu.txt
	touch $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) main.py --host $(HOST) --port $(PORT) $(ARGS)

test: $(VENV)/.dev-installed
	$(PY) -m pytest -q $(ARGS)

bench: $(VENV)/.dev-installed
	$(PY) -m bench.startup
	$(PY) -m bench.dataset_store

clean-venv:
	rm -rf $(VENV)
