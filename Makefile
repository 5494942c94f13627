# PBTS developer and CI entry points. `make run` and `make test` are the README's two commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Debian packages the test suite drives (real tools, real clients; the reliability suite starts
# private redis-server and PostgreSQL instances of its own).
TEST_DEBS := mktorrent aria2 python3-libtorrent chromium redis-server postgresql \
  transmission-daemon transmission-cli deluged deluge-console rtorrent iproute2

.PHONY: run test test-compiled lint format install speedups test-deps migrate seed worker beat trackerd bench check-deploy clean
.PHONY: test-npm contracts check-contracts chain bench-chain

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Compiled modules beside their sources, left by the old in-place build: they would shadow the
# sources (and refuse to load, tracker/speedups.py), so install and speedups delete them.
INPLACE_SO := tracker/announce/*.so tracker/*.so

# The announce pipeline compiled with Cython (setup.py) into build/speedups/, out of the source
# tree: it runs only with PBTS_SPEEDUPS=1 (deployment, bench, test-compiled); `make run` and
# `make test` run the sources and need no compiler. Always runs setup.py, which recompiles only
# what changed (a no-op takes ~1 s), so a deleted build file is never hidden by a stamp.
speedups: $(VENV)/.installed
	rm -f $(INPLACE_SO)
	$(BIN)/python setup.py --quiet build_ext --parallel 2

install: $(VENV)/.installed
	@rm -f $(INPLACE_SO)

# Local settings of the checkout (DEBUG=true and a generated SECRET_KEY; git-ignored), so that
# every manage.py command works after `make run` with nothing exported. Never overwritten; only
# `make run` writes it (a deployment sets DEBUG and SECRET_KEY in its own environment).
.env:
	$(PYTHON) scripts/local_env.py .env http://127.0.0.1:$(PORT)

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed
	$(BIN)/python manage.py ensure_owner

# Embedded default: SQLite, in-process cache and peer store, Celery tasks inline (DEBUG comes
# from .env). `manage.py serve` is runserver plus the periodic tasks in a thread
# (core.embedded_beat); it serves no UDP, so downloaded .torrent files list no udp:// URL.
run: export PBTS_BASE_URL ?= http://127.0.0.1:$(PORT)
run: export PBTS_UDP_PORT ?= 0
run: .env seed
	@echo "Serving on http://127.0.0.1:$(PORT)/ (Ctrl-C to stop)"
	exec $(BIN)/python manage.py serve 127.0.0.1:$(PORT) --noreload

test-deps:
	bash scripts/apt-install.sh $(TEST_DEBS)

# npm packages pinned in package-lock.json: solc (solc-js) and anvil (docs/chain.md).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

test-npm: node_modules/.package-lock.json

test: install test-deps test-npm
	$(BIN)/pytest

# The announce tests once more against the compiled build (.ci/run, after `make test`);
# test_compiled.py checks that the compiled modules really are the ones loaded.
ANNOUNCE_TESTS := tracker/announce tracker/tests/test_trackerd.py tracker/tests/test_announce.py \
  tracker/tests/test_stats_flush.py tracker/tests/test_realclients.py \
  tracker/tests/test_reader_process.py
test-compiled: install speedups test-deps
	PBTS_SPEEDUPS=1 $(BIN)/pytest $(ANNOUNCE_TESTS)

# Recompile contracts/*.sol into contracts/artifacts/ (commit the result).
contracts: test-npm
	node contracts/compile.js

# CI: fail if a committed artifact differs from a fresh compile.
check-contracts: test-npm
	node contracts/compile.js --check

# A local chain (anvil, state kept in .local/chain/) with this site's contracts deployed;
# `make run`/`worker`/`beat` in another terminal then use it. Ctrl-C stops it.
CHAIN_PORT ?= 8545
chain: migrate test-npm
	$(BIN)/python manage.py chain_devnet --port $(CHAIN_PORT)

# Written by `make chain`: DEV_CHAIN_RPC_URL and anvil's public dev key (never a real chain).
-include .local/chain/chain.env
run worker beat: export PBTS_CHAIN_RPC_URL ?= $(DEV_CHAIN_RPC_URL)
run worker beat: export PBTS_CHAIN_PRIVATE_KEY ?= $(DEV_CHAIN_PRIVATE_KEY)

bench-chain: install test-npm
	$(BIN)/python bench/chain_gas.py --json bench/results/chain_gas.json

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

worker: install
	$(BIN)/celery -A pbts_site worker --loglevel=INFO

beat: install
	$(BIN)/celery -A pbts_site beat --loglevel=INFO

# The lean asyncio tracker; several workers share the port (SO_REUSEPORT) and peers (Redis).
TRACKERD_PORT ?= 8080
TRACKERD_WORKERS ?= 1
trackerd: install
	$(BIN)/python manage.py trackerd --host 127.0.0.1 --port $(TRACKERD_PORT) --workers $(TRACKERD_WORKERS)

# The compiled build is measured (the bench scripts give their servers PBTS_SPEEDUPS=1).
bench: install speedups
	bash scripts/apt-install.sh opentracker wrk
	$(BIN)/python bench/announce.py

check-deploy: install
	DEBUG=false SECRET_KEY=$$($(BIN)/python -c 'import secrets;print(secrets.token_urlsafe(50))') \
	  ALLOWED_HOSTS=tracker.example.org $(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache build
	rm -f $(INPLACE_SO)
