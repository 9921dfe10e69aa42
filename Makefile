# The two commands: `make run` serves the API and the console on 127.0.0.1:8000 with an
# embedded SQLite database and local index (in development mode unless FACEMATCH_ENVIRONMENT
# says otherwise: tokens are signed with a key made up for the run); `make test` checks the
# code (`make lint`) then runs the tests against SQLite and a throwaway PostgreSQL server,
# the console's in Debian's Chromium (each installed where missing), two at a time
# (pytest-xdist): most tests wait on a subprocess, a server, the database or the browser as
# much as they compute, and each heavy one runs its own worker processes, so two keep two
# cores busy without running short of memory. Both create the virtual environment and
# install into it from the lock files (requirements/), every file checked against its hash.

PYTHON ?= python3
VENV := .venv
SERVICE := $(VENV)/.service-installed
DEV := $(VENV)/.dev-installed
CODE := app auth index matcher calibration migrations benchmarks scripts tests

.PHONY: run demo test lint audit lock thresholds

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The service's own packages, then facematch itself without build isolation, so that
# setuptools too comes from the lock.
$(SERVICE): requirements/service.txt pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/service.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# And what the tests, the checks and the benchmarks use.
$(DEV): requirements/dev.txt $(SERVICE)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/dev.txt
	touch $@

run: $(SERVICE)
	FACEMATCH_ENVIRONMENT=$${FACEMATCH_ENVIRONMENT:-development} $(VENV)/bin/facematch serve

# The console with something in it, in development mode: a small LFW gallery, one account
# per role (their activation codes printed) and a request to review (docs/console.md).
demo: $(SERVICE)
	FACEMATCH_ENVIRONMENT=development $(VENV)/bin/facematch demo ../shared/datasets/lfw
	FACEMATCH_ENVIRONMENT=development FACEMATCH_PHOTO_STORE=../shared/datasets/lfw/images \
		$(VENV)/bin/facematch serve

test: lint
	scripts/with-postgres scripts/with-chromium $(VENV)/bin/pytest --numprocesses 2 --dist worksteal \
		--durations 15

# Style and formatting (ruff), types (mypy: strict for auth, matcher, index, calibration and
# the pure rule modules; pyproject.toml says which), and bandit's security lint.
lint: $(DEV)
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -c pyproject.toml -r app auth index matcher calibration migrations

# Known vulnerabilities in the locked dependencies. Needs PyPI's vulnerability API or OSV
# reachable; --strict fails, rather than passes, when a package could not be checked.
audit: $(DEV)
	$(VENV)/bin/pip-audit --strict --disable-pip --progress-spinner off -r requirements/dev.txt

# Resolve the lock files again from pyproject.toml: the newest releases that fit, for the
# Python and platform the service runs on; the service's lock takes the versions of the
# development one, so the two never disagree.
LOCK := $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --upgrade
lock: $(DEV)
	$(LOCK) pyproject.toml requirements/build.in --extra test --extra bench --extra lock \
		-o requirements/dev.txt
	$(LOCK) pyproject.toml requirements/build.in -c requirements/dev.txt \
		-o requirements/service.txt

# Every threshold figure, JSON and PNG (docs/accuracy.md): the calibration sets, the shipped
# operating point of each engine for the templates the index searches, checked on LFW's
# held-out people and on CelebA (the checks recorded in the point), then the benchmarks that
# measure them. About an hour on two cores the first time; templates are cached under
# var/cache.
thresholds: $(DEV)
	$(VENV)/bin/python benchmarks/public_sets.py --out var/calibration
	for engine in sface dlib; do \
		point=matcher/operating_points/$$engine.json; \
		FACEMATCH_DATA_DIR=var $(VENV)/bin/facematch calibrate --engine $$engine --by-group \
			--photos var/calibration/lfw-calibration.csv --out $$point || exit 1; \
		FACEMATCH_DATA_DIR=var $(VENV)/bin/facematch calibrate --check $$point --by-group \
			--photos var/calibration/lfw-held-out.csv --photos var/calibration/celeba.csv \
			--out $$point || exit 1; \
	done
	$(VENV)/bin/python benchmarks/identify.py
	$(VENV)/bin/python benchmarks/demographics.py
	$(VENV)/bin/python benchmarks/techniques.py
	$(VENV)/bin/python benchmarks/quality_gate.py
	$(VENV)/bin/python benchmarks/probe_levers.py
