# Rosetta: `make run` serves the embedded default, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck check bench bench-smoke bench-inprocess clean

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

# Benchmark against nginx and hand-written proxies (docs/performance.md). bench/setup installs
# nginx, njs, wrk, redis-server (apt) and aiohttp (venv) when missing. BENCH_ARGS passes flags,
# e.g. make bench BENCH_ARGS="--duration 10 --connections 1,8,32".
bench: $(STAMP)
	bench/setup $(BIN)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: $(STAMP)
	bench/setup $(BIN)
	$(BIN)/python -m bench.run --smoke $(BENCH_ARGS)

# CPU per request of Rosetta's app and the hand-written proxy, in-process (no uvicorn, no wrk)
bench-inprocess: $(STAMP)
	bench/setup $(BIN)
	$(BIN)/python -m bench.inprocess $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
