# The service image: the API on port 8000, data (SQLite file, index) under /var/lib/facematch.
# It will not start without its keys, each given in the environment:
#   FACEMATCH_JWT_KEY            signs access tokens (a random secret of 32 characters or more)
#   FACEMATCH_TEMPLATE_KEY       seals face templates and second-factor seeds (`facematch keys new`)
#   FACEMATCH_AUDIT_ANCHOR_KEY   signs the audit log's anchors (`facematch audit new-key`)
# (FACEMATCH_AUDIT_SIGNING_KEY, which signs a purge's checkpoint, is for `facematch retention
# purge` alone: the service must never hold it),
# and answers only clients in FACEMATCH_ALLOWED_NETWORKS (a JSON list, e.g. '["10.20.0.0/16"]';
# loopback by default, which from outside a container is nobody), believing X-Forwarded-For
# only from FACEMATCH_TRUSTED_PROXIES. Set FACEMATCH_DATABASE_URL to use PostgreSQL instead of the
# embedded SQLite file. docs/operations.md says what each key is for and how to rotate it.
FROM python:3.11-slim-bookworm

RUN useradd --system --create-home --home-dir /var/lib/facematch facematch
WORKDIR /opt/facematch
# The locked dependencies first, each checked against its hash (a layer that changes only
# with the lock), then facematch itself, without build isolation so setuptools is the lock's.
COPY requirements/service.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/service.txt
# Every package pyproject.toml installs (tests/test_packaging.py builds from exactly these).
COPY pyproject.toml README.md ./
COPY app ./app
COPY auth ./auth
COPY calibration ./calibration
COPY index ./index
COPY matcher ./matcher
COPY migrations ./migrations
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && rm -rf build

USER facematch
ENV FACEMATCH_DATA_DIR=/var/lib/facematch FACEMATCH_ENVIRONMENT=production FACEMATCH_HOST=0.0.0.0
EXPOSE 8000
# Healthy once the service answers over loopback on FACEMATCH_PORT (models loaded, database
# and index open): its health route, or its refusal where loopback is outside the allowed
# networks, which need not (and should not) be widened for this.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 CMD ["facematch", "health"]
CMD ["facematch", "serve"]
