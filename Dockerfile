# The service image: the API on port 8000, data (SQLite file, index) under /var/lib/facematch.
# It will not start without FACEMATCH_JWT_KEY (a random secret of 32 characters or more),
# FACEMATCH_TEMPLATE_KEY (`facematch keys new`) and FACEMATCH_AUDIT_ANCHOR_KEY (`facematch
# audit new-key`), and answers only clients in FACEMATCH_ALLOWED_NETWORKS (a JSON list, e.g.
# '["10.20.0.0/16"]'; loopback by default, which from outside a container is nobody; every
# address is refused), believing X-Forwarded-For only from FACEMATCH_TRUSTED_PROXIES. Set
# FACEMATCH_DATABASE_URL to use PostgreSQL instead of the embedded SQLite file.
FROM python:3.11-slim-bookworm

RUN useradd --system --create-home --home-dir /var/lib/facematch facematch
WORKDIR /opt/facematch
COPY pyproject.toml README.md ./
COPY app ./app
COPY matcher ./matcher
COPY index ./index
COPY auth ./auth
COPY migrations ./migrations
RUN pip install --no-cache-dir .

USER facematch
ENV FACEMATCH_DATA_DIR=/var/lib/facematch FACEMATCH_ENVIRONMENT=production FACEMATCH_HOST=0.0.0.0
EXPOSE 8000
CMD ["facematch", "serve"]
