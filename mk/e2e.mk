# mk/e2e.mk: the two Lambda binaries end to end, on a local AWS (moto) and Lambda's runtime API
# (`cargo lambda watch`), both started by tests/harness/lambda_host.py. Included by the root
# Makefile (`include mk/e2e.mk`).
#
#   make e2e DATA=<dir of CloudTrail files in the S3 layout> OUT=<file> [STEP=15m] [CHAOS=seed] [E2E_FLAGS=--release]
#       uploads DATA to a bucket, delivers every file's notification to the ingest function (twice),
#       runs the detect function every STEP from the first delivery to the last, and writes the
#       insight records it published to EventBridge to OUT (JSON lines, sorted like `trailsight replay`).
#       Prints the time of each phase. With CHAOS=<seed>, the fault mode: processes killed during
#       invocations, notifications hours late and dead-lettered then redriven, EventBridge refusing
#       entries, ingest and detect interleaved; fails unless the published insights equal
#       `trailsight replay` of DATA. See tests/e2e/run_e2e.py.
#   make e2e-test
#       the same on a small simulated scenario, checked against `trailsight replay`, and at the same time its fault
#       mode on the same files (part of `make test`, its last step).

STEP ?= 15m
CHAOS ?=
E2E_FLAGS ?=

.PHONY: e2e e2e-test

e2e: tools
	@if [ -z "$(DATA)" ] || [ "$(origin OUT)" = file ]; then \
	  echo "usage: make e2e DATA=<dir of CloudTrail files in the S3 layout> OUT=<file> [STEP=15m] [CHAOS=seed]" >&2; exit 2; \
	fi
	$(VENV_BIN)/python tests/e2e/run_e2e.py --data "$(DATA)" --out "$(OUT)" --step "$(STEP)" $(if $(CHAOS),--chaos "$(CHAOS)") $(E2E_FLAGS)

e2e-test: tools
	tests/e2e/test_e2e.sh
