"""schemathesis against the service's own OpenAPI schema, over real HTTP: a bounded number of
generated requests for every operation, each sent with no token and with a valid token of
every role; none may get a 5xx, or a response its schema does not allow."""

from __future__ import annotations

from collections.abc import Callable

import schemathesis
from hypothesis import HealthCheck, Phase, given, strategies
from hypothesis import settings as examples
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err
from sqlalchemy.orm import Session, sessionmaker

from app.core.settings import Settings
from auth import Role
from tests.support.commands import service_environment
from tests.support.service import serving
from tests.support.staff import Staff

EXAMPLES = 5
# A tester's photo set is a ZIP archive: generated as any bytes, since the schema cannot say
# what one holds.
schemathesis.openapi.media_type("application/zip", strategies.binary(max_size=4096))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def identities(staff: Staff) -> dict[str, dict[str, str]]:
    """No token, and a valid token of each role (people with their second factor)."""
    headers: dict[str, dict[str, str]] = {"no token": {}}
    for role in Role:
        username = role.value.replace("_", "-")
        staff.add(username, role)
        headers[role.value] = staff.headers(username)
    return headers


def test_no_generated_request_gets_a_server_error_or_breaks_the_schema(
    settings: Settings,
    sessions: sessionmaker[Session],
    report_figure: Callable[[str], None],
) -> None:
    environment = service_environment(settings, api_docs="true")
    with serving(environment) as (client, _):
        callers = identities(Staff.in_process(sessions, settings))
        base = str(client.base_url)
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        failures: list[str] = []
        calls = 0
        for result in schema.get_all_operations():
            if isinstance(result, Err):  # an operation the schema does not describe validly
                failures.append(f"the schema: {result.err()}")
                continue
            operation = result.ok()

            @given(case=operation.as_strategy())
            @examples(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: schemathesis.Case) -> None:
                nonlocal calls
                for headers in callers.values():
                    response = case.call(base_url=base, headers=headers)
                    calls += 1
                    case.validate_response(response, checks=CHECKS)

            try:
                fuzz()
            except (Exception, BaseExceptionGroup) as failure:  # every operation's is reported
                failures.append(f"{operation.label}: {failure}")
    report_figure(f"fuzzing: {calls} generated requests, {len(failures)} operations failed")
    assert not failures, "\n\n".join(failures)
