# mk/oracle.mk: `make oracle` — an independent recount of every Insight record (part of `make test`).
# Replays each real dataset in testdata/real (each folder alone and all together, with and without
# the counting options) and a simulated 9-day scenario with the release binary, then recomputes
# every statistic and attribution from the raw logs with tests/oracle/oracle.py (Python standard
# library, no code shared with the detector). Fails on any difference; all of them are listed in
# $(OUT)/oracle/<case>/oracle.txt.
.PHONY: oracle

oracle: cli
	tests/oracle/run.sh $(TRAILSIGHT) $(OUT)/oracle
