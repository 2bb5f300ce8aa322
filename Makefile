# Two commands for people (see README.md): `make run` and `make test`. Both set everything up first and
# are quick to re-run: pip runs again only when a requirements file changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
RUNTIME_STAMP := $(VENV)/.runtime-$(REQ_HASH)
DEV_STAMP := $(VENV)/.dev-$(REQ_HASH)
export HF_HUB_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test setup setup-dev migrate data zoo lint compose-check clean

# The site serves as soon as the mini benchmark is built (~1.5 min); runstack then prepares the zoo (its
# experiments and baseline rows, ~30 min of CPU, plus ~7 for the indicator study and the trajectory landscape) in the background, behind people's uploads.
# `make run RUN_ARGS="--addr 0.0.0.0:8080 --no-zoo"` passes options to runstack.
run: setup
	$(BIN)/python manage.py runstack $(RUN_ARGS)

test: setup-dev
	SPECTRA_VAR_DIR=$(CURDIR)/var/test $(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(RUNTIME_STAMP) migrate data

setup-dev: $(DEV_STAMP)

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Spectra needs Python 3.11 (set PYTHON=...)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.txt $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.runtime-* && touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.dev-* $(VENV)/.runtime-* && touch $@ $(RUNTIME_STAMP)

migrate: $(RUNTIME_STAMP)
	$(BIN)/python manage.py migrate --noinput

data: migrate
	$(BIN)/python manage.py build_mini_benchmark

# The zoo's preparation in the foreground (what `make run` does in the background).
zoo: data
	$(BIN)/python manage.py zoo_prepare

lint: setup-dev
	$(BIN)/ruff check .
	PYTHONPATH=.:platform $(BIN)/lint-imports

# The file's syntax only: placeholders stand in for the secrets compose requires at `up`.
COMPOSE_PLACEHOLDERS := DJANGO_SECRET_KEY DJANGO_ALLOWED_HOSTS SPECTRA_HIDDEN_ID_KEY REDIS_PASSWORD CELERY_BROKER_URL \
	SPECTRA_S3_ENDPOINT_URL SPECTRA_S3_PUBLIC_ENDPOINT_URL SPECTRA_S3_ACCESS_KEY_ID SPECTRA_S3_SECRET_ACCESS_KEY \
	SPECTRA_S3_READ_ACCESS_KEY_ID SPECTRA_S3_READ_SECRET_ACCESS_KEY
compose-check:
	for file in docker-compose.yml docker-compose.gpu.yml; do \
	  env $(foreach name,$(COMPOSE_PLACEHOLDERS),$(name)=$${$(name):-check}) docker-compose -f $$file config -q || exit 1; \
	done

clean:
	rm -rf var
