# Trellis — see README.md. `make dev` runs Trellis locally; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
CLUSTER_DIR := $(CURDIR)/target/cluster
KUBECONFIG_LOCAL := $(CLUSTER_DIR)/kubeconfig
KUBECTL := $(CLUSTER_DIR)/bin/kubectl --kubeconfig $(KUBECONFIG_LOCAL)
OPERATOR := $(CARGO_TARGET_DIR)/debug/trellis-operator

.PHONY: help dev test bench fmt fmt-check lint unit e2e real-node build crds tools cluster-up cluster-down token

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

dev: build ## Build everything and run Trellis locally (Ctrl-C stops it)
	tests/system-packages.sh dev
	tests/dev/run.sh

test: fmt-check lint unit e2e real-node ## Every test: format, lint, unit tests, end-to-end on a fresh local cluster, then on a real node

fmt: ## Format the Rust code
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit: ## Unit tests (no cluster needed; DataSHIELD's take base R as their oracle)
	tests/system-packages.sh unit
	$(CARGO) test --workspace --locked --exclude trellis-e2e

e2e: build ## End-to-end tests: starts a local control plane, runs the tests, always stops it
	tests/system-packages.sh test
	tests/run-e2e.sh

real-node: build ## The real-node lane: the chart from local images on a cluster with a real kubelet (needs root)
	tests/system-packages.sh test
	tests/system-packages.sh images
	tests/system-packages.sh node
	images/test.sh
	tests/real-node/run.sh

bench: ## Measure the performance targets of DESIGN.md and print a report (with the real node's and DataSHIELD's figures)
	tests/system-packages.sh unit
	tests/system-packages.sh images
	tests/system-packages.sh node
	tests/bench.sh

build:
	$(CARGO) build --workspace --all-targets --locked

.PHONY: images
images: ## Build the container images offline into target/images/ (OCI archives for ctr images import)
	tests/system-packages.sh images
	images/build.sh

crds: ## Regenerate the chart's CRDs from the Rust types
	$(CARGO) run --quiet --locked -p trellis-operator -- crd > charts/trellis/crds/trellis.dev.yaml

tools: ## Build (or reuse from the cache) the pinned local-cluster tools (Kubernetes, etcd, kwok, helm, dex)
	tests/cluster/build-tools.sh

cluster-up: ## Start the local control plane (etcd, apiserver, controllers, scheduler, kwok); NODE=real adds a real node
	$(if $(filter real,$(NODE)),tests/system-packages.sh node)
	tests/cluster/up.sh $(if $(filter real,$(NODE)),--real-node)

cluster-down: ## Stop the local control plane and remove its state
	tests/cluster/down.sh

# USER is also the login name in the environment: only USER=... on the command line counts here.
token: ## Print a demo user's access token from the dev Dex: make token USER=alice
	@tests/dev/token.sh "$(if $(filter command line,$(origin USER)),$(USER))"
