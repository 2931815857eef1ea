# Two commands on a fresh machine with python3 (and make): `make run` and `make test`.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test test-all lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,experiments]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/fungpt train

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) experiments/out build *.egg-info src/*.egg-info
