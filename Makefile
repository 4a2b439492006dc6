# One command to run, one to test; each sets itself up on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test test-cluster lint schema bench redis-server chromium promtool graphiql mutation sdk-test app app-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# Tests need a real redis-server binary (each session starts a private one), and
# the failover drill Debian's redis-sentinel.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server not found: installing it from Debian packages"; \
	  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
	@command -v redis-sentinel >/dev/null 2>&1 || { \
	  echo "redis-sentinel not found: installing it from Debian packages"; \
	  apt-get update -qq && apt-get install -y -qq redis-sentinel >/dev/null; }

# The alerting rules are checked and tested with promtool (ops/prometheus; Debian's
# prometheus package ships it).
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "promtool not found: installing it from Debian packages (prometheus)"; \
	  apt-get update -qq && apt-get install -y -qq prometheus >/dev/null; }

# The browser tests drive Debian's chromium through Playwright.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "chromium not found: installing it from Debian packages"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# GraphiQL's browser assets, at the versions strawberry's page pins (web/graphiql).
GRAPHIQL_STAMP := web/graphiql/node_modules/.installed-$(shell cksum web/graphiql/package-lock.json | cut -d' ' -f1)

$(GRAPHIQL_STAMP): web/graphiql/package-lock.json
	cd web/graphiql && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	rm -f web/graphiql/node_modules/.installed-* && touch $(GRAPHIQL_STAMP)

graphiql: $(GRAPHIQL_STAMP)

# The browser SDK (web/sdk): its npm packages at the lock's versions, then its Vitest
# suite (unit tests, the committed dist/ against a fresh build, the 15 KB size budget).
SDK_STAMP := web/sdk/node_modules/.installed-$(shell cksum web/sdk/package-lock.json | cut -d' ' -f1)

$(SDK_STAMP): web/sdk/package-lock.json
	cd web/sdk && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	rm -f web/sdk/node_modules/.installed-* && touch $(SDK_STAMP)

sdk-test: $(SDK_STAMP)
	cd web/sdk && npx vitest run

# The reference app (web/app): dist/ is committed, so `make run` needs no npm. `make app`
# rebuilds it after a change to web/app/src or web/sdk/src; `make app-check` (and a test)
# fails when the committed dist/ is not what the sources build.
APP_STAMP := web/app/node_modules/.installed-$(shell cksum web/app/package-lock.json | cut -d' ' -f1)

$(APP_STAMP): web/app/package-lock.json
	cd web/app && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	rm -f web/app/node_modules/.installed-* && touch $(APP_STAMP)

app: $(APP_STAMP) $(SDK_STAMP)
	cd web/app && npx tsc --noEmit -p . && node scripts/build.mjs

app-check: $(APP_STAMP) $(SDK_STAMP)
	cd web/app && npx tsc --noEmit -p . && node scripts/build.mjs --check

run: $(STAMP) $(GRAPHIQL_STAMP)
	$(PY) main.py serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

# The end-to-end suite runs twice: with the fast paths, and on stock strawberry
# and graphql-core (FAST_PATHS=false), so a dependency upgrade that breaks a fast
# path is found here and can be shipped with the setting off.
test: $(STAMP) $(GRAPHIQL_STAMP) redis-server chromium promtool lint sdk-test app-check
	FAST_PATHS=false $(PY) -m pytest -q tests/e2e
	$(PY) -m pytest -q
	$(MAKE) test-cluster

# The e2e modules that exercise every Redis path, again on a local three-primary
# Redis Cluster (tests/cluster/cluster.py; about a minute and a half).
CLUSTER_E2E := likes_http views_http live_ws live_consistency trending_http analytics_http
test-cluster: $(STAMP) redis-server
	LIKEVIEW_TEST_REDIS=cluster $(PY) -m pytest -q $(CLUSTER_E2E:%=tests/e2e/test_%.py)

schema: $(STAMP)
	$(PY) main.py schema > schema.graphql

bench: $(STAMP) redis-server
	bash bench/run.sh

# Mutation testing of the pure modules against their unit tests ([tool.mutmut] in
# pyproject.toml, scores in docs/MUTATION.md). 4 to 5 minutes on 2 cores, so it is
# not part of `make test`. Starts from a clean mutants/ so no stale result is
# reported; fails when a module scores under MUTATION_MIN percent.
MUTMUT        ?= mutmut>=3.8,<4
MUTATION_MIN  ?= 90

mutation: $(STAMP)
	$(PY) -m pip install -q '$(MUTMUT)'
	rm -rf mutants
	$(VENV)/bin/mutmut run
	@$(VENV)/bin/mutmut results --all true | awk -F': ' -v min=$(MUTATION_MIN) ' \
	  { m = $$1; gsub(/^ +/, "", m); sub(/\.[^.]*$$/, "", m); n[m]++; if ($$2 == "killed") k[m]++ } \
	  END { printf "\n%-26s %6s %6s %7s\n", "module", "killed", "total", "score"; bad = 0; \
	        for (m in n) { s = 100 * k[m] / n[m]; printf "%-26s %6d %6d %6.1f%%\n", m, k[m], n[m], s; \
	                       if (s < min) bad = 1 } \
	        if (bad) { printf "a module scores under %d%%: see docs/MUTATION.md\n", min; exit 1 } }'
	@echo "survivors: $(VENV)/bin/mutmut results; one mutant: $(VENV)/bin/mutmut show NAME"
