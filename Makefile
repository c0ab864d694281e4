# The two commands an operator needs: `make run` and `make test`.
# Each makes its own virtual environment (.venv) and installs what it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test bench

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

## make run: the server on its embedded default (SQLite, local Twilio stand-in, demo account)
run: $(STAMP)
	$(VENV)/bin/python app.py

## make test: the whole suite on SQLite, then on PostgreSQL when TEST_DATABASE_URL is set
test: $(STAMP)
	scripts/install-test-tools
	env -u TEST_DATABASE_URL $(VENV)/bin/python -m pytest -rs -q
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL ($$TEST_DATABASE_URL)"; \
		$(VENV)/bin/python -m pytest -rs -q -p no:cacheprovider || exit 1; \
	else echo "(TEST_DATABASE_URL not set: PostgreSQL run skipped)"; fi
