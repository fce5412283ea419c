# Set-up and everyday commands. Each target creates or reuses .venv inside the clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= runs/default

.PHONY: demo demo-quick test lint docs paper clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull several GB of CUDA packages.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dustvae demo -o $(OUT)

demo-quick: $(STAMP)
	$(BIN)/dustvae demo --quick -o runs/quick

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n auto
	$(MAKE) docs

lint: $(STAMP)
	$(BIN)/ruff check dustvae scripts tests docs/conf.py

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

paper: $(STAMP)
	$(MAKE) -C paper PYTHON=$(abspath $(BIN)/python)

clean-venv:
	rm -rf $(VENV)
