# mk/bench.mk: `make bench` — performance measured against floors measured in the same run.
# Figures go into BENCHMARKS.md (by hand, from out/bench/*.json). Not part of `make test`.
BENCH_DATA ?= $(OUT)/bench-data
BENCH_OUT  ?= $(OUT)/bench

.PHONY: bench bench-data bench-principal cold-start ingest-memory

bench-data: cli
	@test -f $(BENCH_DATA)/labels.json || $(TRAILSIGHT) simulate --out $(BENCH_DATA) --days 9 --seed 1

bench: bench-data
	@mkdir -p $(BENCH_OUT)
	$(CARGO) build --release -p trailsight-core --examples
	@echo "== ingest, single-threaded, vs gzip -dc and our inflate alone (same files, same run)"
	target/release/examples/ingest_bench $(BENCH_DATA) | tee $(BENCH_OUT)/ingest.json
	@echo "== the same fold in Python (gzip + json from the standard library)"
	python3 bench/python_fold.py $(BENCH_DATA) | tee $(BENCH_OUT)/python.json
	@echo "== DynamoDB requests and write units per log file (as the store writes them)"
	target/release/examples/delta_bench $(BENCH_DATA) | tee $(BENCH_OUT)/deltas.json
	@echo "== peak RSS folding one 100 MB (uncompressed) log file"
	python3 bench/big_file.py $(BENCH_DATA) $(BENCH_OUT)/big.json.gz 100
	/usr/bin/time -f '{"max_rss_kb": %M, "seconds": %e}' $(TRAILSIGHT) summarize --json $(BENCH_OUT)/big.json.gz 2>&1 >/dev/null | tee $(BENCH_OUT)/rss.json
	@echo "== detector cost per run (5 one-minute evaluations) for 1k, 10k, 100k series"
	target/release/examples/detector_bench --state-dir $(BENCH_OUT)/states 1000 10000 100000 | tee $(BENCH_OUT)/detector.json
	@echo "== one whole detect run (load state, 5 minutes, save state), a fresh process per size: time, peak RSS"
	@rm -f $(BENCH_OUT)/detector_run.json
	for n in 1000 10000 100000; do target/release/examples/detector_bench --run $(BENCH_OUT)/states/state-$$n.json.gz $$n | tee -a $(BENCH_OUT)/detector_run.json || exit 1; done
	@echo "== bounded state: 60 days of 300 one-off keys a day and 200 steady keys, with and without eviction"
	target/release/examples/detector_bench --eviction 60 300 | tee $(BENCH_OUT)/eviction.json
	@echo "== a 3-hour catch-up at 100,000 series: one run, then runs cut by a 10-second deadline (same records)"
	target/release/examples/detector_bench --catch-up 100000 3 10 | tee $(BENCH_OUT)/catch_up.json
	@echo "== replay of the 9-day scenario (two regions, all cores)"
	/usr/bin/time -f '{"replay_seconds": %e, "max_rss_kb": %M}' $(TRAILSIGHT) replay $(BENCH_DATA) 2>&1 >/dev/null | tail -1 | tee $(BENCH_OUT)/replay.json
	@$(MAKE) --no-print-directory bench-principal
	@echo "== monthly cost model from these figures (docs/COST.md)"
	python3 bench/cost_model.py $(BENCH_OUT) | tee $(BENCH_OUT)/cost.md
	@$(MAKE) --no-print-directory cold-start
	@$(MAKE) --no-print-directory ingest-memory

# Lambda cold start of the bootstraps `make build` deploys, each started fresh COLD_START_RUNS times
# against a minimal local Lambda Runtime API (LocalRuntimeApi, tests/harness/lambda_host.py): Init
# Duration, first invocation, peak RSS, sizes.
COLD_START_RUNS ?= 20
cold-start: build
	@mkdir -p $(BENCH_OUT)
	@echo "== Lambda cold start: release bootstraps under a local Runtime API, $(COLD_START_RUNS) fresh processes each"
	python3 bench/cold_start.py --runs $(COLD_START_RUNS) --out $(BENCH_OUT)/cold_start.json

# Peak RSS of the ingest bootstrap `make build` deploys, under the same local Runtime API, against
# moto (S3, DynamoDB): a 48 MB gzip log file, and 100,000 distinct series in 1 MB (capped, and
# uncapped for comparison). Both deployed cases must stay under 100 MB of the function's 128.
ingest-memory: build
	@mkdir -p $(BENCH_OUT)
	@echo "== ingest bootstrap peak RSS: 48 MB gzip file, 100,000 distinct series (local Runtime API, moto)"
	$(VENV_BIN)/python bench/ingest_memory.py --out $(BENCH_OUT)/ingest_memory.json --work $(BENCH_OUT)/ingest-memory

# Principal insights' cost: a 9-day scenario with principal cases (read-made attacks, look-alikes),
# replayed with and without --principal-insights (time, peak RSS, detector time, series, state
# size: replay --stats) and folded as ingest stores it (delta_bench: cells and bytes per event).
# docs/COST.md's "With principal insights on" comes from out/bench/principal.json.
PRINCIPAL_DATA ?= $(OUT)/bench-principal-data
bench-principal: cli
	@mkdir -p $(BENCH_OUT)
	@test -f $(PRINCIPAL_DATA)/labels.json || $(TRAILSIGHT) simulate --out $(PRINCIPAL_DATA) --days 9 --seed 1 --changes --principals
	$(CARGO) build --release -p trailsight-core --example delta_bench
	@echo "== principal insights: replay without and with the flag, and what ingest stores per event"
	/usr/bin/time -f '{"seconds": %e, "max_rss_kb": %M}' -o $(BENCH_OUT)/replay-principal-off.time $(TRAILSIGHT) replay $(PRINCIPAL_DATA) --stats $(BENCH_OUT)/replay-principal-off.json >/dev/null
	/usr/bin/time -f '{"seconds": %e, "max_rss_kb": %M}' -o $(BENCH_OUT)/replay-principal-on.time $(TRAILSIGHT) replay $(PRINCIPAL_DATA) --principal-insights --stats $(BENCH_OUT)/replay-principal-on.json >/dev/null
	target/release/examples/delta_bench $(PRINCIPAL_DATA) > $(BENCH_OUT)/deltas-principal-off.json
	target/release/examples/delta_bench $(PRINCIPAL_DATA) --principal-insights > $(BENCH_OUT)/deltas-principal-on.json
	python3 bench/principal_bench.py $(BENCH_OUT) | tee $(BENCH_OUT)/principal.json
