# One command to run, one to test; each sets itself up on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint schema bench redis-server

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# Tests need a real redis-server binary (each session starts a private one).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "redis-server not found: installing it from Debian packages"; \
	  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }

run: $(STAMP)
	$(PY) main.py serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

test: $(STAMP) redis-server lint
	$(PY) -m pytest -q

schema: $(STAMP)
	$(PY) main.py schema > schema.graphql

bench: $(STAMP) redis-server
	bash bench/run.sh
