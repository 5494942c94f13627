# PBTS developer and CI entry points. `make run` and `make test` are the README's two commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Debian packages the test suite drives (real tools, real clients).
TEST_DEBS := mktorrent aria2 python3-libtorrent

.PHONY: run test lint format install test-deps migrate seed worker beat trackerd bench check-deploy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed
	$(BIN)/python manage.py ensure_owner

# Embedded default: SQLite, in-process cache and peer store, Celery tasks inline.
run: export DEBUG ?= true
run: export PBTS_BASE_URL ?= http://127.0.0.1:$(PORT)
run: seed
	@echo "Serving on http://127.0.0.1:$(PORT)/ (Ctrl-C to stop)"
	exec $(BIN)/python manage.py runserver 127.0.0.1:$(PORT) --noreload

test-deps:
	bash scripts/apt-install.sh $(TEST_DEBS)

test: install test-deps
	$(BIN)/pytest

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

bench: install
	bash scripts/apt-install.sh opentracker wrk
	$(BIN)/python bench/announce.py

check-deploy: install
	DEBUG=false SECRET_KEY=$$($(BIN)/python -c 'import secrets;print(secrets.token_urlsafe(50))') \
	  ALLOWED_HOSTS=tracker.example.org $(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
