# The two commands: `make run` serves the API on 127.0.0.1:8000 with an embedded SQLite
# database and local index (in development mode unless FACEMATCH_ENVIRONMENT says otherwise:
# tokens are signed with a key made up for the run); `make test` runs bandit over the code,
# pip-audit over the installed dependencies, then the tests against SQLite and a throwaway
# PostgreSQL server, two at a time (pytest-xdist): most tests wait on a subprocess, a server
# or the database as much as they compute, and each heavy one runs its own worker processes,
# so two keep two cores busy without running short of memory. Both create the virtual
# environment and install what they need.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test thresholds

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,bench]'
	touch $@

run: $(STAMP)
	FACEMATCH_ENVIRONMENT=$${FACEMATCH_ENVIRONMENT:-development} $(VENV)/bin/facematch serve

test: $(STAMP)
	$(VENV)/bin/bandit -q -c pyproject.toml -r app auth index matcher calibration migrations
	$(VENV)/bin/pip-audit --skip-editable --progress-spinner off
	scripts/with-postgres $(VENV)/bin/pytest --numprocesses 2 --dist worksteal

# Every threshold figure, JSON and PNG (README, "Thresholds"): the calibration sets, the
# shipped operating point of each engine, then the benchmarks that measure them. About an
# hour on two cores the first time; templates are cached under var/cache.
thresholds: $(STAMP)
	$(VENV)/bin/python benchmarks/public_sets.py --out var/calibration
	for engine in sface dlib; do \
		FACEMATCH_DATA_DIR=var $(VENV)/bin/facematch calibrate --engine $$engine --by-group \
			--photos var/calibration/lfw-calibration.csv \
			--out matcher/operating_points/$$engine.json || exit 1; \
	done
	$(VENV)/bin/python benchmarks/identify.py
	$(VENV)/bin/python benchmarks/demographics.py
	$(VENV)/bin/python benchmarks/techniques.py
	$(VENV)/bin/python benchmarks/quality_gate.py
