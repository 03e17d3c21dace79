# Trailsight. The two commands that matter:
#   make demo   simulate a few days of CloudTrail logs with anomalies, replay them, print the insights and
#               the path of their HTML report
#   make test   everything CI runs: format, lints, unit and integration tests (moto), infra linters
.DEFAULT_GOAL := help
SHELL := /bin/bash

CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
# The release command, with the AWS commands (make bench measures it).
TRAILSIGHT := $(TARGET_DIR)/release/trailsight
# The command without the AWS SDKs, in the quick-to-compile `fast` profile: all demo and eval run.
LOCAL_TRAILSIGHT := $(TARGET_DIR)/fast/trailsight
OUT ?= out
# The tests build for the host's target triple, named as `cargo lambda build` names it (it always
# passes --target): the Lambda builds of `make test` then reuse the dependencies the test builds
# compiled (every AWS SDK) instead of compiling them all again (about 5 minutes on two cores).
# Their debug programs are under $(DEBUG_BIN).
HOST_TARGET := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
DEBUG_BIN := $(TARGET_DIR)/$(HOST_TARGET)/debug
TEST_STEPS := test fmt-check clippy unit integration lint-infra oracle report-test lambda-invoke e2e-test e2e
$(TEST_STEPS): export CARGO_BUILD_TARGET := $(HOST_TARGET)

.PHONY: help demo test eval cli local-cli fmt-check clippy unit integration lambda-invoke

help:
	@echo "make demo | test | eval | bench | build [ARCH=arm64] | lint-infra | e2e DATA=dir OUT=file | deploy | destroy"

include mk/infra.mk
include mk/e2e.mk
include mk/bench.mk
include mk/oracle.mk
include mk/report.mk

cli:
	$(CARGO) build --release -p trailsight-cli

local-cli:
	$(CARGO) build --profile fast -p trailsight-cli --no-default-features

## demo: five simulated days (two regions) with seeded anomalies, replayed, printed as a table,
## and drawn in an HTML report (out/demo-report.html; its path is printed).
demo: local-cli
	@rm -rf $(OUT)/demo $(OUT)/demo-insights
	$(LOCAL_TRAILSIGHT) simulate --out $(OUT)/demo --days 5 --seed 7
	$(LOCAL_TRAILSIGHT) replay $(OUT)/demo --format table --out $(OUT)/demo-insights
	@echo
	@echo "The report (charts, statistics, attributions of every insight above):"
	@$(LOCAL_TRAILSIGHT) report $(OUT)/demo --from-insights $(OUT)/demo-insights -o $(OUT)/demo-report.html
	@echo
	@echo "Labelled anomalies (what the simulator injected):"
	@$(LOCAL_TRAILSIGHT) labels $(OUT)/demo

## eval: detection quality on three 9-day scenarios with all four kinds and four routine changes
## each (insights on a change after its 3-day learning period are false), and nine quiet days.
## `make eval PRINCIPALS=1`: the same with principal scenarios (read-made attacks and benign
## look-alikes) and per-principal insights, scored apart.
PRINCIPALS ?=
EVAL_SIMULATE_FLAGS := $(if $(PRINCIPALS),--principals)
EVAL_FLAGS := $(if $(PRINCIPALS),--principal-insights)
eval: local-cli
	@rm -rf $(OUT)/eval && mkdir -p $(OUT)/eval
	@for seed in 1 2 3; do $(LOCAL_TRAILSIGHT) simulate --out $(OUT)/eval/seed$$seed --days 9 --seed $$seed --changes $(EVAL_SIMULATE_FLAGS); done
	$(LOCAL_TRAILSIGHT) simulate --out $(OUT)/eval/quiet --days 9 --seed 11 --quiet $(EVAL_SIMULATE_FLAGS)
	$(LOCAL_TRAILSIGHT) eval $(EVAL_FLAGS) $(OUT)/eval/seed1 $(OUT)/eval/seed2 $(OUT)/eval/seed3 $(OUT)/eval/quiet

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

unit:
	$(CARGO) test --workspace --exclude trailsight-integration

# Integration tests start their own moto server (from .venv) on a free loopback port. They are
# selected by name within the whole workspace (not with -p): the same package selection as
# `unit` resolves the same features, so the build `unit` made is reused instead of compiling the
# SDKs again with other features (about 90 s on two cores).
INTEGRATION_TESTS := $(patsubst tests/tests/%.rs,--test %,$(wildcard tests/tests/*.rs))
integration: tools
	AWS_EC2_METADATA_DISABLED=true $(CARGO) test --workspace $(INTEGRATION_TESTS) -- --test-threads 2

# The ingest Lambda's bootstrap under Lambda's runtime API (`cargo lambda watch`), invoked twice
# with `cargo lambda invoke` (tests/lambda_invoke.py, on tests/harness/lambda_host.py).
lambda-invoke: tools
	$(VENV_BIN)/python tests/lambda_invoke.py

## test: what CI runs (.ci/run). Installs its tools (.venv) itself. The only `test` rule: its
## prerequisites run in this order, quick checks first, the end-to-end run (mk/e2e.mk) last.
test: tools fmt-check clippy unit integration lint-infra oracle report-test lambda-invoke e2e-test
	@echo "make test: all checks passed"
