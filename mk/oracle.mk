# mk/oracle.mk: `make oracle` — an independent recount of every Insight record (part of `make test`).
# Replays each real dataset in testdata/real (each folder alone and all together, with and without
# the counting options) and a simulated 9-day scenario, then recomputes every statistic and
# attribution from the raw logs with tests/oracle/oracle.py (Python standard library, no code
# shared with the detector). Fails on any difference; all of them are listed in
# $(OUT)/oracle/<case>/oracle.txt. Uses the debug build `make test` already compiles (its `unit`
# step's `cargo test --no-run`, so the command is not rebuilt with other features; also for
# the e2e run; a replay of the 9-day scenario takes about 10 s with it), ORACLE_BIN to override.
.PHONY: oracle

ORACLE_BIN ?= $(DEBUG_BIN)/trailsight

oracle:
	$(CARGO) test --quiet --workspace --exclude trailsight-integration --no-run
	tests/oracle/run.sh $(ORACLE_BIN) $(OUT)/oracle
