# The two commands: `make run` serves the API on 127.0.0.1:8000 with an embedded SQLite
# database and local index (in development mode unless FACEMATCH_ENVIRONMENT says otherwise:
# tokens are signed with a key made up for the run); `make test` runs the tests against
# SQLite and a throwaway PostgreSQL server. Both create the virtual environment and install
# what they need.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	FACEMATCH_ENVIRONMENT=$${FACEMATCH_ENVIRONMENT:-development} $(VENV)/bin/facematch serve

test: $(STAMP)
	scripts/with-postgres $(VENV)/bin/pytest
