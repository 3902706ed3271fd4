# nudgeflow — the two commands are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SIZE   ?= 100000
DB     ?= sqlite
# The demo community ends yesterday; the nightly flow runs for the last two nights so the
# funnel can show the moves between them.
DEMO_END  ?= $(shell date -u -d yesterday +%F)
DEMO_PREV ?= $(shell date -u -d '2 days ago' +%F)
DEMO_DIR  := var/demo
DEMO_REPORT := var/reports/demo.html
# The commands that send refuse the shipped signing key (change-me): the demo signs its links
# with a key of its own, unless one is set in the environment or in .env.
DEMO_KEY  := $(if $(NUDGEFLOW_SIGNING_KEY)$(shell grep -s '^NUDGEFLOW_SIGNING_KEY=' .env),,NUDGEFLOW_SIGNING_KEY=demo-only-not-a-secret)

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nudgeflow demo-data --members 2000 --days 730 --seed 7 --end $(DEMO_END) --out $(DEMO_DIR)
	$(BIN)/nudgeflow members import $(DEMO_DIR)/members.csv
	$(BIN)/nudgeflow events import $(DEMO_DIR)/events.csv
	$(DEMO_KEY) $(BIN)/nudgeflow run --from $(DEMO_PREV) --to $(DEMO_END)
	$(BIN)/nudgeflow ledger balances
	@echo
	@echo "Where to look next:"
	@echo "  var/outbox/$(DEMO_END)/          the night's emails as .eml files (open one in a mail client)"
	@echo "  $(BIN)/nudgeflow actions --as-of $(DEMO_END)     what each action did (--state failed shows why)"
	@echo "  $(BIN)/nudgeflow runs                   past runs and how they ended"
	@echo "  $(BIN)/nudgeflow ledger export --from $(DEMO_PREV) --to $(DEMO_END) --format csv"
	@echo "  $(BIN)/nudgeflow gifts export --status pending --format csv"
	@echo "  $(BIN)/nudgeflow why MEMBER_ID --as-of $(DEMO_END)   why a member was or was not nudged"
	@echo
	@echo "The pages the emails link to (unsubscribe, preferences, VIP invites): start the service,"
	@echo "  $(strip $(DEMO_KEY) $(BIN)/nudgeflow web)        (Ctrl-C stops it)"
	@eml=$$(ls var/outbox/$(DEMO_END)/*.eml 2>/dev/null | head -n 1); \
	if [ -n "$$eml" ]; then \
	  link=$$(grep -m 1 '^List-Unsubscribe:' "$$eml" | sed -E 's/^[^<]*<([^>]*)>.*/\1/'); \
	  echo "then open the unsubscribe link of $$eml in a browser:"; \
	  echo "  $$link"; \
	fi
	@echo
	@echo "The report of the demo's nights (stages, pathways, sends and responses, spend, uplift):"
	$(BIN)/nudgeflow report --from $(DEMO_PREV) --to $(DEMO_END) --out $(DEMO_REPORT)
	@echo "  open $(DEMO_REPORT) in a browser: one file, it needs no network"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy nudgeflow settings audience domain planning store delivery providers night inbound bootstrap demo flows web cli
	$(BIN)/lint-imports --no-cache --no-logo

test: $(STAMP) lint
	$(BIN)/pytest -n 2

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --size $(SIZE) --db $(DB)

clean:
	rm -rf $(VENV) var build *.egg-info .mypy_cache .pytest_cache .ruff_cache
