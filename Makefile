# The two commands of the README: `make demo` (set up + main job) and `make test` (whole suite).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test-tools kustomize-tool helm-tool promtool-tool browser-tool try console-screenshots demo test lint typecheck unit integration bench bench-peer schemas broker-start broker-stop clean \
	lock lock-check image image-tools image-base image-test

# The virtualenv installs the exact versions (and hashes) of requirements/dev.lock, then the package.
$(STAMP): pyproject.toml requirements/dev.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Locks: uv resolves once for every platform and Python >= 3.11 (`--universal`), so one lock serves
# this virtualenv and the image. runtime.lock: the image; dev.lock: runtime + the test extra.
UV_VERSION := 0.13.9
UV := .cache/tools/bin/uv
LOCK_ARGS := --universal --python-version 3.11 --generate-hashes --quiet --custom-compile-command "make lock"

$(UV):
	$(PY) -m venv .cache/tools
	.cache/tools/bin/python -m pip install --quiet uv==$(UV_VERSION)

lock: $(UV)
	$(UV) pip compile pyproject.toml $(LOCK_ARGS) -o requirements/runtime.lock
	$(UV) pip compile pyproject.toml --extra test $(LOCK_ARGS) -o requirements/dev.lock

# Fails when pyproject.toml's dependencies changed without `make lock` (needs the package index).
lock-check: $(UV)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	cp requirements/runtime.lock requirements/dev.lock $$tmp/ && \
	$(UV) pip compile pyproject.toml $(LOCK_ARGS) -o $$tmp/runtime.lock && \
	$(UV) pip compile pyproject.toml --extra test $(LOCK_ARGS) -o $$tmp/dev.lock && \
	diff -u requirements/runtime.lock $$tmp/runtime.lock && diff -u requirements/dev.lock $$tmp/dev.lock && \
	echo "locks match pyproject.toml"

.cache/kafka/classpath.txt: deploy/local/kafka/pom.xml
	deploy/local/kafka.sh classpath > /dev/null

# What running the worker needs (the demo, the console); the tests need test-tools besides.
setup: $(STAMP) .cache/kafka/classpath.txt
	@$(MAKE) --no-print-directory -s browser-tool

# kustomize and helm render the Kubernetes manifests in the tests (kubectl's built-in kustomize, or pinned
# binaries); promtool unit-tests the alert rules. Pinned binaries go to .cache/bin (first run only).
test-tools: setup
	@$(MAKE) --no-print-directory -s kustomize-tool
	@$(MAKE) --no-print-directory -s helm-tool
	@$(MAKE) --no-print-directory -s promtool-tool

# The console's browser tests drive Debian's chromium through Playwright (its own browser download
# cannot work here); installed with apt-get when missing and we are root, else those tests skip.
browser-tool:
	@test -x /usr/bin/chromium || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    echo "installing chromium (apt-get, first run only; the console's browser tests use it)" && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "note: no /usr/bin/chromium and no way to install it: the console's browser tests will skip"

kustomize-tool:
	@test -x .cache/bin/kustomize || command -v kustomize >/dev/null || command -v kubectl >/dev/null || \
	  (echo "installing kustomize v5.8.0 with go install (first run only)" && \
	   GOBIN=$(CURDIR)/.cache/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.0)

# go: on the PATH, else Go's default install location.
GO := $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)

HELM_VERSION := v4.3.2
helm-tool:
	@test -x .cache/bin/helm || command -v helm >/dev/null || \
	  { test -x "$(GO)" && echo "installing helm $(HELM_VERSION) with go install (first run only)" && \
	    GOBIN=$(CURDIR)/.cache/bin $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION); } || \
	  echo "note: no helm and no go to install it: the Helm chart's tests will fail"

# promtool is a large build (Prometheus' module graph); `remove_all_sd` leaves out the service-discovery
# plugins (cloud SDKs) that rule tests never use. When it cannot be installed, the alert-rule tests skip,
# saying so.
PROMTOOL_VERSION := v0.316.0
promtool-tool:
	@test -x .cache/bin/promtool || command -v promtool >/dev/null || \
	  { test -x "$(GO)" && echo "installing promtool $(PROMTOOL_VERSION) with go install (first run only)" && \
	    GOBIN=$(CURDIR)/.cache/bin $(GO) install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION); } || \
	  echo "note: promtool could not be installed: the alert-rule tests (promtool test rules) will skip"

demo: setup
	$(BIN)/python -m worker.tools.demo

# The console with a broker, the sandbox and sample records, until Ctrl-C.
try: setup
	$(BIN)/python -m worker.tools.try_console

# Rewrite docs/console/*.png from the browser tests' flow (README shows them).
console-screenshots: setup
	CONSOLE_SCREENSHOTS=docs/console $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser

# The suite runs in TEST_PROCESSES processes (pytest-xdist) sharing one broker: the integration tests
# mostly wait on Kafka and the sandbox, so more processes than cores pays. `loadgroup` hands tests out
# one by one (long ones first, see tests/conftest.py) and keeps an `xdist_group` in one process. On a quiet
# 2-core machine (1,633 tests): 4 processes 438 s of pytest, 6 processes 353 s.
TEST_PROCESSES ?= 6
PARALLEL := -n $(TEST_PROCESSES) --dist loadgroup

test: test-tools
	$(BIN)/ruff check worker gorgias_sandbox tests bench
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PARALLEL)

lint: setup
	$(BIN)/ruff check worker gorgias_sandbox tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# No broker, no process started: the unit tests are CPU-bound, so one process per core.
unit: test-tools
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto tests/unit

integration: test-tools
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PARALLEL) -m integration

schemas: setup
	$(BIN)/gorgias-worker schemas --write

# The image. No registry here: the base is a Debian bookworm rootfs built locally (deploy/image/base.sh);
# with a registry, `make image PYTHON_IMAGE=python:3.11.11-slim-bookworm` keeps the pinned python image.
IMAGE ?= localhost/gorgias-worker:0.1.0
BASE_IMAGE := localhost/gorgias-worker-base:bookworm
PYTHON_IMAGE ?=
ENGINE := deploy/image/engine.sh
, := ,

# The tools the image needs, installed from Debian's packages when missing (root with apt-get only;
# elsewhere engine.sh and base.sh say what to install).
image-tools:
	@command -v podman >/dev/null || (command -v docker >/dev/null && docker info >/dev/null 2>&1) || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    echo "installing podman, runc and debootstrap (apt-get, first run only)" && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null; } || true
	@test -n "$(PYTHON_IMAGE)" || command -v debootstrap >/dev/null || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } || true

image-base: image-tools
	@test -n "$(PYTHON_IMAGE)" || deploy/image/base.sh $(BASE_IMAGE)

image: image-base
	$(ENGINE) build -f deploy/Dockerfile -t $(IMAGE) \
	  --build-arg PYTHON_IMAGE=$(if $(PYTHON_IMAGE),$(PYTHON_IMAGE),$(BASE_IMAGE)) \
	  $(if $(PIP_CERT),--secret id=pip_cert$(,)src=$(PIP_CERT)) .

# Smoke test of the image against the test broker and the sandbox (builds the image first).
image-test: setup image
	GORGIAS_WORKER_IMAGE=$(IMAGE) $(BIN)/python -m pytest -q -p no:cacheprovider tests/image

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
