# Aliases for dev.py (the README's quick start needs only python3): `make run`, `make test`, ...
PY ?= python3

.PHONY: run test test-all lint clean

run test test-all lint:
	$(PY) dev.py $@

clean:
	rm -rf .venv experiments/out build *.egg-info src/*.egg-info
