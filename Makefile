PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AZURITE := node_modules/.bin/azurite-blob

.PHONY: run test bench venv azurite clean

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

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	status=0; for script in benchmarks/*_bench.py; do $(BIN)/python $$script || status=1; done; exit $$status

clean:
	rm -rf $(VENV) node_modules
