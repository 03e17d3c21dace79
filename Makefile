# Trailsight. The two commands that matter:
#   make demo   simulate a few days of CloudTrail logs with anomalies, replay them, print the insights
#   make test   everything CI runs: format, lints, unit and integration tests (moto), infra linters
.DEFAULT_GOAL := help
SHELL := /bin/bash

CARGO ?= cargo
TRAILSIGHT := target/release/trailsight
OUT ?= out

.PHONY: help demo test eval cli fmt-check clippy unit integration lambda-invoke

help:
	@echo "make demo | test | eval | bench | build [ARCH=arm64] | lint-infra | e2e DATA=dir OUT=file | deploy | destroy"

include mk/infra.mk
include mk/e2e.mk
include mk/bench.mk
include mk/oracle.mk

cli:
	$(CARGO) build --release -p trailsight-cli

## demo: five simulated days (two regions) with seeded anomalies, replayed, printed as a table.
demo: cli
	@rm -rf $(OUT)/demo
	$(TRAILSIGHT) simulate --out $(OUT)/demo --days 5 --seed 7
	$(TRAILSIGHT) replay $(OUT)/demo --format table --out $(OUT)/demo-insights
	@echo
	@echo "Labelled anomalies (what the simulator injected):"
	@$(TRAILSIGHT) labels $(OUT)/demo

## eval: detection quality on three 9-day scenarios with all four kinds and four routine changes
## each (insights on a change after its 3-day learning period are false), and nine quiet days.
eval: cli
	@rm -rf $(OUT)/eval && mkdir -p $(OUT)/eval
	@for seed in 1 2 3; do $(TRAILSIGHT) simulate --out $(OUT)/eval/seed$$seed --days 9 --seed $$seed --changes; done
	$(TRAILSIGHT) simulate --out $(OUT)/eval/quiet --days 9 --seed 11 --quiet
	$(TRAILSIGHT) eval $(OUT)/eval/seed1 $(OUT)/eval/seed2 $(OUT)/eval/seed3 $(OUT)/eval/quiet

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

unit:
	$(CARGO) test --workspace --exclude trailsight-integration

# Integration tests start their own moto server (from .venv) on a free loopback port.
integration: tools
	AWS_EC2_METADATA_DISABLED=true $(CARGO) test -p trailsight-integration -- --test-threads 2

# The ingest Lambda's bootstrap under Lambda's runtime API, invoked twice (tests/lambda_invoke.sh).
lambda-invoke: tools
	tests/lambda_invoke.sh

## test: what CI runs (.ci/run). Installs its tools (.venv) itself. The only `test` rule: its
## prerequisites run in this order, quick checks first, the end-to-end run (mk/e2e.mk) last.
test: tools fmt-check clippy unit integration lint-infra oracle lambda-invoke e2e-test
	@echo "make test: all checks passed"
