PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AZURITE := node_modules/.bin/azurite-blob

.PHONY: run test test-postgres fuzz bench venv azurite clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cli,mlflow,test]'
	touch $(STAMP)

# Azurite (package-lock.json) for the AzureBlob datastore tests; without Node.js those tests are skipped.
azurite:
	@if command -v node >/dev/null && ! test -x $(AZURITE); then npm ci --no-audit --no-fund; fi

venv: $(STAMP) azurite

run: $(STAMP)
	$(BIN)/batchpoint serve

# Test modules are spread over two processes (a module's tests and its shared server stay in one).
PYTEST := $(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=10

test: venv
	$(PYTEST) $(PYTEST_ARGS)

# Every HTTP suite on PostgreSQL as well (make test covers it through the store, ledger and replica tests).
test-postgres: venv
	BATCHPOINT_TEST_BACKENDS=sqlite,postgresql $(PYTEST) $(PYTEST_ARGS)

# The long fuzz run: many more generated requests per operation than make test sends.
fuzz: venv
	BATCHPOINT_FUZZ_EXAMPLES=200 $(BIN)/python -m pytest -q tests/api/test_openapi_fuzz.py $(PYTEST_ARGS)

bench: $(STAMP)
	status=0; for script in benchmarks/*_bench.py; do $(BIN)/python $$script || status=1; done; exit $$status

clean:
	rm -rf $(VENV) node_modules
