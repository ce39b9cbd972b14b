# mailsrv: `make run` starts the dev server, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
ARGS   ?=

.PHONY: run test check lint typecheck certs clean demo bench bench-compare fuzz soak venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	# An editable install leaves no bytecode: compile once so every start skips it (~60 ms).
	$(BIN)/python -m compileall -q mailsrv
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/mailsrv serve --dev --maildir ./var/mail --certs ./certs --users ./var/users $(ARGS)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check mailsrv tests examples benchmarks
	$(BIN)/mypy

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

check: lint test

certs: $(VENV)/.installed
	$(BIN)/mailsrv certs --certs ./certs --force

demo: $(VENV)/.installed
	$(BIN)/mailsrv demo $(ARGS)

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks $(ARGS)

bench-compare: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks --compare-dovecot --workers 1 --workers 2 $(ARGS)

fuzz: $(VENV)/.installed-test
	$(BIN)/python -m tests.fuzz $(ARGS)

soak: $(VENV)/.installed-test
	$(BIN)/python -m tests.soak $(ARGS)

clean:
	rm -rf $(VENV) var build dist *.egg-info .hypothesis .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
