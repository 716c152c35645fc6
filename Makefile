# Rosetta: `make run` serves the embedded default, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rosetta serve $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check proxy translators tests
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check proxy translators tests
	$(BIN)/ruff format --check proxy translators tests

typecheck: $(STAMP)
	$(BIN)/mypy

check: $(STAMP)
	@for f in config/*.yaml; do $(BIN)/rosetta check --config $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
