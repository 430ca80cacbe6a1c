# The two commands of the README: `make demo` (set up + main job) and `make test` (whole suite).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: kustomize-tool demo test lint typecheck unit integration bench bench-peer schemas broker-start broker-stop clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

.cache/kafka/classpath.txt: deploy/local/kafka/pom.xml
	deploy/local/kafka.sh classpath > /dev/null

# kustomize renders the Kubernetes manifests in the tests: kubectl's built-in one, or a pinned binary.
setup: $(STAMP) .cache/kafka/classpath.txt
	@$(MAKE) --no-print-directory -s kustomize-tool

kustomize-tool:
	@test -x .cache/bin/kustomize || command -v kustomize >/dev/null || command -v kubectl >/dev/null || \
	  (echo "installing kustomize v5.8.0 with go install (first run only)" && \
	   GOBIN=$(CURDIR)/.cache/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.0)

demo: setup
	$(BIN)/python -m worker.demo

test: setup
	$(BIN)/ruff check worker gorgias_sandbox tests bench
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check worker gorgias_sandbox tests bench
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -q tests/unit

integration: setup
	$(BIN)/python -m pytest -q tests/integration

schemas: setup
	$(BIN)/gorgias-worker schemas --write

bench: setup
	$(BIN)/python bench/run_all.py

# ours beside Kafka Connect 4.3.1 + the clescot HTTP sink (needs Java and Maven; ~45 min; not part of test)
bench-peer: setup
	$(BIN)/python bench/peer_bench.py

broker-start: setup
	deploy/local/kafka.sh start

broker-stop:
	deploy/local/kafka.sh stop

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
