"""The operations team's metrics, for a Prometheus scraper holding the scrape token: no
person's access token opens them, and no label holds personal data (app.core.metrics)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import ServicesDep
from app.api.schemas import problems
from app.core.refusals import Code, Refusal

router = APIRouter(tags=["metrics"], responses=problems(401, 404))


@router.get("/metrics", response_class=Response, name="metrics")
def scrape(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str, Header()] = "",
) -> Response:
    """The metrics in Prometheus' text format."""
    token = services.settings.metrics_token
    if token is None:
        raise Refusal(Code.not_found, "Metrics are not served: no scrape token is configured.")
    scheme, _, sent = authorization.partition(" ")
    expected = token.get_secret_value().strip().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), expected):
        raise Refusal(
            Code.invalid_scrape_token, "The metrics need the scrape token as the bearer token."
        )
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
