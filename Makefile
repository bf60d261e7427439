PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AZURITE := node_modules/.bin/azurite-blob
AXE := node_modules/axe-core/axe.min.js
WEB_STATIC := src/batchpoint/web/static

# Python's default: compiled modules are cached in __pycache__. Some shells turn that off, and then every server,
# worker and test process compiles batchpoint (and pytest every test module) from source again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run check test test-durations test-postgres fuzz soak bench bench-deps coverage venv azurite chromium web-assets screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cli,mlflow,ray,test]'
	touch $(STAMP)

# Azurite, htmx and axe-core (package-lock.json) for the AzureBlob datastore tests and the web page's tests;
# without Node.js those tests are skipped.
azurite:
	@if command -v node >/dev/null && { ! test -x $(AZURITE) || ! test -f $(AXE); }; then npm ci --no-audit --no-fund; fi

# Debian's Chromium for the web page's browser tests (CI runs as root); without apt-get they are skipped.
chromium:
	@if ! command -v chromium >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }; \
	  else echo "chromium is missing and apt-get is unavailable (or not root): the browser tests will be skipped"; fi; \
	fi

# The web page's front-end files, copied from the npm packages into the Python package (committed, so that
# 'pip install batchpoint' ships them): run after changing their versions in package.json.
web-assets: azurite
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx-ext-sse/dist/sse.min.js $(WEB_STATIC)/

venv: $(STAMP) azurite chromium

# As root, workers run as nobody unless told otherwise, and nobody can reach neither ~/.batchpoint nor a Python under
# /root (pyenv's): the quick start runs them as root, without capabilities and sandboxed (docs/security.md). ARGS:
# more serve options (make run ARGS="--port 9443").
RUN_AS := $(if $(filter 0,$(shell id -u)),--worker-user root)

run: $(STAMP)
	$(BIN)/batchpoint serve $(RUN_AS) $(ARGS)

# Lint, formatting, types (src and benchmarks) and the layers contract (pyproject.toml holds each tool's configuration).
# Each tool runs even when one before it failed, so that one run lists every problem.
check: $(STAMP)
	status=0; \
	$(BIN)/ruff check src tests benchmarks || status=1; \
	$(BIN)/ruff format --check src tests benchmarks || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/lint-imports || status=1; \
	exit $$status

# Test modules are spread over four processes (a module's tests stay in one; each process shares one server among
# its modules), the longest first (tests/scheduling.py). Four, on two cores: many tests wait on leases, restarts,
# PostgreSQL's timeouts and clusters rather than compute (session 9, same tree, quiet machine: three processes
# 231 to 256 s in four runs, four processes 209 and 211 s).
PYTEST := $(BIN)/python -m pytest -q -n 4 --dist loadfile --no-loadscope-reorder --durations=10

test: venv
	$(PYTEST) $(PYTEST_ARGS)

# Records each test module's seconds in tests/module_seconds.json, which orders the modules of the next runs.
test-durations: venv
	BATCHPOINT_RECORD_DURATIONS=1 $(PYTEST) $(PYTEST_ARGS)

# Every HTTP suite on PostgreSQL as well (make test covers it through the store, ledger and replica tests).
test-postgres: venv
	BATCHPOINT_TEST_BACKENDS=sqlite,postgresql $(PYTEST) $(PYTEST_ARGS)

# The long fuzz run: many more generated requests per operation than make test sends.
fuzz: venv
	BATCHPOINT_FUZZ_EXAMPLES=200 BATCHPOINT_FUZZ_REQUESTS=5000 $(BIN)/python -m pytest -q -n 2 \
	  tests/api/test_openapi_fuzz.py tests/api/test_hostile_input.py $(PYTEST_ARGS)

# The chaos soak (benchmarks/soak.py, docs/deployment.md): three replicas on a private PostgreSQL, a small Ray cluster,
# steady invokes and a fault every few seconds for SOAK_MINUTES, then its invariants; fails on a violation.
SOAK_MINUTES ?= 10
SOAK_SEED ?= 1
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --minutes $(SOAK_MINUTES) --seed $(SOAK_SEED)

# The screenshots in docs/images, taken by the web page's browser tests.
screenshots: venv
	BATCHPOINT_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/web/

# docs/coverage.md: the spec extract's operations against the served ones ($$BATCHPOINT_SPEC_DIR, tests/spec.py).
coverage: $(STAMP)
	$(BIN)/python -m tests.spec_coverage

# The benchmarks' own dependencies (pyproject's bench extra), with pip: see the comment on the extra.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench-deps: $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	status=0; for script in benchmarks/*_bench.py; do $(BIN)/python $$script || status=1; done; exit $$status

clean:
	rm -rf $(VENV) node_modules
