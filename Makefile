# Aliases for dev.py (the README's quick start needs only python3): `make run`, `make test`, ...
PY ?= python3

.PHONY: run test test-all lint wheel test-lower clean

run test test-all lint wheel test-lower:
	$(PY) dev.py $@

clean:
	rm -rf .venv .venv-lower experiments/out build dist *.egg-info src/*.egg-info
