# mk/report.mk: `make report-test` — `trailsight report` opened in a real browser (part of `make test`).
#
#   make browser        Debian's chromium and chromedriver, installed with apt-get when missing
#                       (as root; a no-op when both are there). Nothing else is downloaded: Selenium
#                       (.venv, requirements-dev.txt) drives this chromium through this chromedriver.
#   make report-test    tests/report/browser_test.py: a small simulated scenario, its report, the
#                       checks (every insight has its chart, no browser errors, nothing loaded, no
#                       sideways overflow at phone width), screenshots under $(OUT)/report.
#                       Uses the debug build `make test` compiles anyway, by the same command as
#                       its `unit` step (so nothing is rebuilt; REPORT_BIN to override).
.PHONY: browser report-test

CHROMIUM     ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
REPORT_BIN   ?= $(DEBUG_BIN)/trailsight

browser:
	@if [ -x "$(CHROMIUM)" ] && [ -x "$(CHROMEDRIVER)" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "error: $(CHROMIUM) or $(CHROMEDRIVER) is missing; as root: apt-get install -y chromium chromium-driver" >&2; exit 1; \
	fi; \
	echo "installing chromium and chromium-driver (apt-get)"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null

report-test: tools browser
	$(CARGO) test --quiet --workspace --exclude trailsight-integration --no-run
	CHROMIUM=$(CHROMIUM) CHROMEDRIVER=$(CHROMEDRIVER) SE_OFFLINE=true \
	  $(VENV_BIN)/python tests/report/browser_test.py --trailsight $(REPORT_BIN) --out $(OUT)/report
