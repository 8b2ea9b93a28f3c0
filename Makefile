# connector-operator: `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
IMAGE ?= connector-operator:dev
KIND_CLUSTER_NAME ?= connector-operator
CLUSTER_DIR ?= $(HOME)/.cache/connector-operator/cluster
export CONNECTOR_CLUSTER_DIR := $(CLUSTER_DIR)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: install
install: $(VENV)/.installed ## Create .venv with the operator and its dev tools

.PHONY: run
run: install ## Run the operator: current kube context, else the local control plane
	@hack/run.sh

.PHONY: gateway
gateway: install ## Run the REST gateway on 127.0.0.1:8443/api/v1 (after make run)
	@hack/gateway.sh

.PHONY: test
TEST_WORKERS ?= 2
test: install lint cluster-build edc-build oidc-build storage-build kstatus-build helm-build ## Run the whole suite: lint, unit and integration tests
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: test-unit
test-unit: install ## Run the unit tests only (no cluster)
	$(BIN)/pytest tests/unit

.PHONY: lint
lint: install ## ruff, formatting, mypy strict, import contracts
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: fmt
fmt: install ## Format and autofix the code
	$(BIN)/ruff format operator tests
	$(BIN)/ruff check --fix operator tests

.PHONY: crds
crds: install ## Regenerate crds/ (and the Helm chart's copy) from the models
	$(BIN)/python -m connector_operator.crd crds/dataspace.dev_connectors.yaml
	cp crds/dataspace.dev_connectors.yaml deploy/helm/connector-operator/crds/

.PHONY: cluster-build
cluster-build: ## Build the control plane binaries into ~/.cache (only when missing)
	@tests/cluster/build.sh >/dev/null

.PHONY: edc-build
edc-build: ## Gather the EDC runtimes' jars (Maven Central) into ~/.cache (only when missing)
	@tests/edc/build.sh >/dev/null

.PHONY: oidc-build
oidc-build: ## Fetch Keycloak (Maven Central) and build it once into ~/.cache (only when missing)
	@tests/oidc/build.sh >/dev/null

.PHONY: storage-build
storage-build: ## Install Azurite (npm) into ~/.cache for the storage checks' tests (only when missing)
	@tests/storage/build.sh >/dev/null

.PHONY: kstatus-build
kstatus-build: ## Build the kstatus helper (Flux's health library) into ~/.cache (only when missing)
	@tests/kstatus/build.sh >/dev/null

.PHONY: goref-build
goref-build: ## Build the benchmark's Go reference (controller-runtime) into ~/.cache (only when missing)
	@tests/scale/goref/build.sh >/dev/null

.PHONY: helm-build
helm-build: ## Build helm (the chart's tests) from Go modules into ~/.cache (only when missing)
	@tests/helm/build.sh >/dev/null

.PHONY: cluster-up
cluster-up: cluster-build ## Start the local control plane in the background; prints the KUBECONFIG line
	@$(PYTHON) tests/cluster/controlplane.py up --dir $(CLUSTER_DIR)

.PHONY: cluster-down
cluster-down: ## Stop the local control plane and remove its state
	@$(PYTHON) tests/cluster/controlplane.py down --dir $(CLUSTER_DIR)

.PHONY: deploy
deploy: ## Apply the CRD and deploy/ (kustomize) to the current kube context
	kubectl apply -f crds/
	kubectl apply -k deploy/

.PHONY: undeploy
undeploy: ## Remove deploy/ (the operator and its namespace); the CRD and every Connector stay
	kubectl delete -k deploy/ --ignore-not-found

.PHONY: undeploy-crd
undeploy-crd: ## Delete the CRD: every Connector and everything they run is deleted with it
	kubectl delete -f crds/ --ignore-not-found

.PHONY: image
image: ## Build the operator image (needs Docker)
	docker build -t $(IMAGE) .

.PHONY: kind-up
kind-up: ## Create a kind cluster and load the operator image (needs Docker)
	kind create cluster --name $(KIND_CLUSTER_NAME) --wait 180s
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER_NAME)

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER_NAME)

.PHONY: test-kind
test-kind: install image ## Run the suite against a fresh kind cluster (needs Docker)
	CONNECTOR_TEST_BACKEND=kind OPERATOR_IMAGE=$(IMAGE) $(BIN)/pytest

.PHONY: bench
bench: install cluster-build goref-build ## Benchmark at N = 100 into a temp folder (BENCH_ARGS="--connectors 1000 --out docs/")
	$(BIN)/python -m tests.bench $(BENCH_ARGS)
