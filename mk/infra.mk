# mk/infra.mk: Python tools, Lambda build, template lint, deploy. Included by the root Makefile
# (`include mk/infra.mk`); also usable alone from the repository root: `make -f mk/infra.mk lint-infra`.
#
#   make tools              .venv from requirements-dev.txt (again only when that file changes)
#   make build [ARCH=arm64] build/lambda/<fn>/bootstrap and build/<fn>.zip for both functions, each
#                           built on its own (its own features: ingest links no EventBridge, SNS,
#                           CloudWatch or Security Hub SDK; one cargo invocation would unify them)
#   make lint-infra         cfn-lint + checkov on infra/template.yaml and its offline SAM translation
#   make deploy             build, then `sam deploy` (guided the first time); DEPLOY_TOOLS=1 installs SAM CLI
#   make destroy            `sam delete` (the DynamoDB table is retained)

VENV_BIN   := $(CURDIR)/.venv/bin
VENV_STAMP := $(CURDIR)/.venv/.stamp
PYTHON     ?= python3

ARCH       ?= x86_64
LAMBDA_FUNCTIONS := trailsight-ingest trailsight-detect
BUILD_DIR  := $(CURDIR)/build
LAMBDA_OUT := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/lambda

STACK_NAME ?= trailsight
SAM_CONFIG ?= $(CURDIR)/samconfig.toml
DEPLOY_TOOLS ?=
DEPLOY_ARGS ?=
DESTROY_ARGS ?=

# ELF e_machine of each architecture: 62 = EM_X86_64, 183 = EM_AARCH64.
ifeq ($(ARCH),x86_64)
  RUST_TARGET      := x86_64-unknown-linux-gnu
  LAMBDA_ARCH_FLAG := --target $(RUST_TARGET)
  ELF_MACHINE      := 62
else ifeq ($(ARCH),arm64)
  RUST_TARGET      := aarch64-unknown-linux-gnu
  LAMBDA_ARCH_FLAG := --arm64
  ELF_MACHINE      := 183
else
  $(error ARCH must be x86_64 or arm64, not '$(ARCH)')
endif

# .venv/bin first: `cargo lambda` is the cargo-lambda wheel's binary, and it finds zig through the
# ziglang wheel's `python3 -m ziglang` there.
TOOLS_PATH := $(VENV_BIN):$(PATH)

.PHONY: tools build lint-infra deploy deploy-tools destroy

tools: $(VENV_STAMP)

$(VENV_STAMP): $(CURDIR)/requirements-dev.txt
	@test -x $(VENV_BIN)/python || $(PYTHON) -m venv $(CURDIR)/.venv
	$(VENV_BIN)/pip install --quiet -r $(CURDIR)/requirements-dev.txt
	@touch $@

build: tools
	@set -eu; \
	if [ "$(ARCH)" = arm64 ] && ! rustup target list --installed | grep -qx $(RUST_TARGET); then \
	  echo "rust target $(RUST_TARGET) missing; trying: rustup target add $(RUST_TARGET)"; \
	  rustup target add $(RUST_TARGET) || { \
	    echo "error: cannot install the Rust standard library for $(RUST_TARGET) (offline?)." >&2; \
	    echo "       Run 'rustup target add $(RUST_TARGET)' where rustup can download, or build with ARCH=x86_64." >&2; \
	    exit 1; }; \
	fi; \
	start=$$(date +%s); \
	for fn in $(LAMBDA_FUNCTIONS); do \
	  PATH="$(TOOLS_PATH)" cargo lambda build --release $(LAMBDA_ARCH_FLAG) --output-format zip \
	    --package $$fn --bin $$fn; \
	done; \
	echo "cargo lambda build ($(ARCH)): $$(( $$(date +%s) - start ))s"; \
	for fn in $(LAMBDA_FUNCTIONS); do \
	  zip="$(LAMBDA_OUT)/$$fn/bootstrap.zip"; dir="$(BUILD_DIR)/lambda/$$fn"; \
	  test -f "$$zip" || { echo "error: $$zip was not produced" >&2; exit 1; }; \
	  rm -rf "$$dir"; mkdir -p "$$dir"; \
	  cp "$$zip" "$(BUILD_DIR)/$$fn.zip"; \
	  $(VENV_BIN)/python -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("bootstrap", sys.argv[2])' "$$zip" "$$dir"; \
	  chmod 755 "$$dir/bootstrap"; \
	  magic=$$(od -An -tx1 -N5 "$$dir/bootstrap" | tr -d ' \n'); \
	  machine=$$(od -An -tu2 -j18 -N2 "$$dir/bootstrap" | tr -d ' \n'); \
	  if [ "$$magic" != 7f454c4602 ] || [ "$$machine" != $(ELF_MACHINE) ]; then \
	    echo "error: $$dir/bootstrap is not a 64-bit ELF for $(ARCH) (magic $$magic, e_machine $$machine)" >&2; exit 1; \
	  fi; \
	  echo "$$fn: bootstrap $$(wc -c < "$$dir/bootstrap") bytes, zip $$(wc -c < "$(BUILD_DIR)/$$fn.zip") bytes, ELF $(ARCH)"; \
	done; \
	echo $(ARCH) > "$(BUILD_DIR)/lambda/ARCH"

lint-infra: tools
	$(VENV_BIN)/cfn-lint infra/template.yaml
	$(VENV_BIN)/python tests/infra/sam_translate.py infra/template.yaml $(BUILD_DIR)/template.cfn.json
	$(VENV_BIN)/cfn-lint $(BUILD_DIR)/template.cfn.json
	$(VENV_BIN)/checkov -f infra/template.yaml --framework cloudformation --quiet --compact --skip-download
	$(VENV_BIN)/checkov -f $(BUILD_DIR)/template.cfn.json --framework cloudformation --quiet --compact --skip-download
	$(VENV_BIN)/python tests/infra/check_template.py

# SAM CLI is large and only needed to deploy, so it is opt-in rather than part of `tools`.
deploy-tools: tools
	$(VENV_BIN)/pip install --quiet aws-sam-cli

# The first deploy is guided and saves the answers to $(SAM_CONFIG); later ones reuse them. Later ones pass
# no --parameter-overrides, which would replace (not merge with) the saved parameters.
deploy: build $(if $(DEPLOY_TOOLS),deploy-tools)
	@PATH="$(TOOLS_PATH)"; export PATH; \
	if ! command -v sam >/dev/null 2>&1; then \
	  echo "SAM CLI not found. Either:"; \
	  echo "  make deploy DEPLOY_TOOLS=1      # installs aws-sam-cli into .venv, then deploys"; \
	  echo "or install it yourself and run:"; \
	  echo "  sam deploy --guided --template-file infra/template.yaml --stack-name $(STACK_NAME) \\"; \
	  echo "    --capabilities CAPABILITY_IAM --parameter-overrides Architecture=$(ARCH)"; \
	  echo "then add the bucket notification printed in the stack output BucketNotificationCommand (docs/DEPLOY.md)."; \
	  exit 1; \
	fi; \
	if [ -f "$(SAM_CONFIG)" ]; then \
	  grep -Eq 'Architecture=\\?"?$(ARCH)' "$(SAM_CONFIG)" || { \
	    echo "error: $(SAM_CONFIG) deploys another Architecture than ARCH=$(ARCH); pass the ARCH it names, or delete it to deploy guided again." >&2; \
	    exit 1; }; \
	  set -x; \
	  sam deploy --config-file "$(SAM_CONFIG)" --template-file infra/template.yaml \
	    --stack-name $(STACK_NAME) --capabilities CAPABILITY_IAM $(DEPLOY_ARGS); \
	else \
	  set -x; \
	  sam deploy --guided --config-file "$(SAM_CONFIG)" --template-file infra/template.yaml \
	    --stack-name $(STACK_NAME) --capabilities CAPABILITY_IAM \
	    --parameter-overrides Architecture=$(ARCH) $(DEPLOY_ARGS); \
	fi

destroy:
	@PATH="$(TOOLS_PATH)"; export PATH; \
	if ! command -v sam >/dev/null 2>&1; then \
	  echo "SAM CLI not found: make deploy-tools, or install it, then: sam delete --stack-name $(STACK_NAME)"; \
	  exit 1; \
	fi; \
	set -x; \
	sam delete --stack-name $(STACK_NAME) $(if $(wildcard $(SAM_CONFIG)),--config-file "$(SAM_CONFIG)") $(DESTROY_ARGS)
	@echo "The DynamoDB table is retained (DeletionPolicy Retain); delete it yourself if you no longer need its history."
