# Mitmachen: `make run` starts the platform with demo data on SQLite; `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# test processes (pytest-xdist); each has its own SQLite file and PostgreSQL database
PYTEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help run test audit lint format install install-test i18n check-migrations clean vendor

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.run-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.run-installed

install: $(VENV)/.run-installed ## create .venv and install the app

install-test: $(VENV)/.test-installed ## create .venv and install the app with test tools

run: install ## migrate a SQLite database, load demo data, serve on http://127.0.0.1:8000
	$(VENV)/bin/mitmachen migrate
	$(VENV)/bin/mitmachen demo
	$(VENV)/bin/mitmachen serve --host $(HOST) --port $(PORT)

test: install-test ## ruff, alembic check, and the whole test suite (PostgreSQL too when TEST_DATABASE_URL is set)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

audit: install-test ## pip-audit the installed packages (a known vulnerability fails; no network only warns)
	bash scripts/audit.sh

lint: install-test ## ruff only
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-test ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

i18n: install-test ## extract messages into the .pot and update the .po catalogues
	$(VENV)/bin/pybabel extract -F babel.cfg -k lazy -k gettext -k _ -k ngettext:1,2 --no-location \
		--sort-output --omit-header -o app/translations/messages.pot .
	$(VENV)/bin/pybabel update -i app/translations/messages.pot -d app/translations --no-fuzzy-matching \
		--ignore-obsolete -w 110

vendor: ## refresh the vendored front-end assets from npm (pinned versions)
	bash scripts/vendor.sh

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) var
