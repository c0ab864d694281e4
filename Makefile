# The two commands an operator needs: `make run` and `make test`.
# Each makes its own virtual environment (.venv) and installs what it needs.
PYTHON ?= python3
# Another interpreter gets a virtual environment of its own, so .venv is never clobbered:
# `make test PYTHON=python3.13` uses .venv313 (or name one: `make test PYTHON=... VENV=...`).
ifeq ($(origin PYTHON),command line)
VENV := .venv$(or $(shell $(PYTHON) -c 'import sys; print("%d%d" % sys.version_info[:2])' 2>/dev/null),$(error PYTHON=$(PYTHON) does not run))
else
VENV := .venv
endif
STAMP := $(VENV)/.installed

.PHONY: run test bench screenshots
ASSETS := node_modules/.installed

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

# The NHS.UK frontend styles for the pages, and axe-core for the tests' accessibility checks
# (package-lock.json pins both; from the npm registry; never committed).
$(ASSETS): package.json package-lock.json
	@if command -v npm >/dev/null; then npm install --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the pages will be unstyled and the accessibility tests fail (apt-get install npm)"; fi

## make run: the server on its embedded default (SQLite, local Twilio stand-in, demo account)
run: $(STAMP) $(ASSETS)
	$(VENV)/bin/python app.py

## make test: the whole suite on SQLite, then on PostgreSQL when TEST_DATABASE_URL is set
test: $(STAMP) $(ASSETS)
	scripts/install-test-tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	env -u TEST_DATABASE_URL $(VENV)/bin/python -m pytest -rs -q
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL ($$TEST_DATABASE_URL)"; \
		$(VENV)/bin/python -m pytest -rs -q -p no:cacheprovider || exit 1; \
	else echo "(TEST_DATABASE_URL not set: PostgreSQL run skipped)"; fi

## make screenshots: the browser tests, saving a picture of each page into docs/screenshots
screenshots: $(STAMP) $(ASSETS)
	SCREENSHOT_DIR=docs/screenshots $(VENV)/bin/python -m pytest -q tests/test_pages_browser.py tests/test_pages_push.py tests/test_push_browser.py tests/test_pages_recovery_browser.py tests/test_entra_browser.py

## make deploy-check: nginx from deploy/nginx/mfa.conf in front of two instances (TLS, request ids,
## a signed webhook, keep-alive, a rolling restart without a failed request) and the systemd units
.PHONY: deploy-check
deploy-check: $(STAMP)
	scripts/install-test-tools
	$(VENV)/bin/python -m pytest -rs -q -p no:cacheprovider tests/test_deploy_nginx.py
