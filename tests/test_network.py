"""What arrives over HTTP before any rule runs: forwarding headers, the access log's lines,
and bodies the form parser cannot read. Served as `facematch serve` serves it."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_network

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.api.main import create_app
from app.audit.models import AuditEntry
from app.core import logs
from app.core.settings import Settings
from auth import Role
from tests.support.commands import invoke
from tests.support.data import sample
from tests.support.service import served_in_thread
from tests.support.staff import Staff

OFFICE = ip_network("10.20.0.0/16")


def test_forwarding_headers_are_believed_only_from_a_trusted_proxy(settings: Settings) -> None:
    office_only = settings.model_copy(update={"allowed_networks": [OFFICE]})
    spoofed = {"X-Forwarded-For": "10.20.0.5"}
    with served_in_thread(create_app(office_only)) as client:
        # Anyone on the host, or behind a proxy nobody listed, claims to be in the office.
        refused = client.get("/v1/health", headers=spoofed)
        assert refused.status_code == 403 and refused.json()["code"] == "client_not_allowed"
    behind_proxy = office_only.model_copy(update={"trusted_proxies": [ip_network("127.0.0.1/32")]})
    with served_in_thread(create_app(behind_proxy)) as client:
        assert client.get("/v1/health", headers=spoofed).status_code == 200
        # The proxy appends the address it saw: the client's own claim before it is ignored.
        chained = {"X-Forwarded-For": "10.20.0.5, 203.0.113.9"}
        assert client.get("/v1/health", headers=chained).status_code == 403
        assert client.get("/v1/health").status_code == 403  # the proxy itself is not let in


# Nothing here needs a second database.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_health_command_needs_no_wider_allow_list(settings: Settings) -> None:
    """The image's health check: healthy where loopback is let in, answering where it is not
    (the allow-list stays as narrow as it was), failing where nothing listens."""
    with served_in_thread(create_app(settings)) as client:
        port = str(client.base_url.port)
        assert invoke(settings, "health", "--port", port).stdout.strip() == "healthy"
    office_only = settings.model_copy(update={"allowed_networks": [OFFICE]})
    with served_in_thread(create_app(office_only)) as client:
        answered = invoke(settings, "health", "--port", str(client.base_url.port))
        assert answered.exit_code == 0 and "outside the allowed networks" in answered.stdout
    gone = invoke(settings, "health", "--port", port)
    assert gone.exit_code == 1 and "not answering" in gone.stderr


def test_control_characters_in_a_path_cannot_forge_a_log_line(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")
    with served_in_thread(create_app(settings)) as client:
        client.get("/v1/requests/1%0A2026-12-01 GET /v1/health 200%0D%1B[2J")
    [line] = [r.getMessage() for r in caplog.records if r.name == "app.access"]
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line.startswith("GET /v1/requests/1\\n2026-12-01") and line.endswith(" ms")
    assert " 404 " in line


@contextmanager
def logging_json() -> Iterator[None]:
    """The service's log as JSON lines on standard error, as `facematch serve` configures it
    with FACEMATCH_LOG_FORMAT=json, for the block."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure("json", replace=True)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_each_request_has_an_id_of_the_services_own_in_its_answer_log_line_and_audit_entry(
    settings: Settings, sessions: sessionmaker[Session], capfd: pytest.CaptureFixture[str]
) -> None:
    """The id is the service's: one sent by the caller (a proxy forwarding one, or someone
    naming another request's, or forging a log line) is never taken up. The auditor joins an
    entry to its log line by it."""
    forged = {"X-Request-ID": "0123456789abcdef"}
    with logging_json(), served_in_thread(create_app(settings)) as client:
        refused = client.post(
            "/v1/auth/login",
            json={"username": "nobody", "password": "not the password", "totp_code": "000000"},
            headers=forged,
        )
        health = client.get("/v1/health", headers=forged)
    assert refused.status_code == 401
    [request_id] = refused.headers.get_list("X-Request-ID")
    assert re.fullmatch("[0-9a-f]{16}", request_id) and request_id != forged["X-Request-ID"]
    assert health.headers["X-Request-ID"] not in (request_id, forged["X-Request-ID"])
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line[:1] == "{"]
    [line] = [entry for entry in lines if entry.get("request_id") == request_id]
    assert line["event"] == "request" and line["level"] == "INFO" and line["time"]
    assert (line["method"], line["route"], line["status"]) == ("POST", "/v1/auth/login", 401)
    assert line["latency_ms"] >= 0
    with sessions() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None and entry.event_type == "login"
        assert entry.request_id == request_id


def test_bodies_the_form_parser_cannot_read_get_a_documented_code(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    staff = Staff.in_process(sessions, settings)
    staff.add("olga.operator", Role.operator)
    olga = staff.headers("olga.operator")
    path = "/v1/requests/1/searches"
    photo = ("probe.jpg", sample("obama.jpg"), "image/jpeg")
    with served_in_thread(create_app(settings)) as client:
        huge_box = client.post(
            path, headers=olga, files={"probe": photo}, data={"face_box": "1" * 2**21}
        )
        many = client.post(
            path, headers=olga, files={"probe": photo}, data={f"f{i}": "1" for i in range(1500)}
        )
        broken = client.post(
            path,
            headers=olga | {"Content-Type": "multipart/form-data; boundary=B"},
            content=b"no parts",
        )
        for response in (huge_box, many, broken):
            assert response.status_code == 400 and response.json()["code"] == "malformed_request"
            assert response.json()["message"].startswith("The request's body could not be read")
        json_body = client.post(
            "/v1/auth/login",
            headers={"Content-Type": "application/json"},
            content=b'{"username": "\xff\xfe", "password": "x"}',
        )
        assert json_body.status_code == 400 and json_body.json()["code"] == "malformed_request"
        # Two probes: refused whole, neither searched.
        two = client.post(path, headers=olga, files=[("probe", photo), ("probe", photo)])
        assert two.status_code == 422 and two.json()["code"] == "repeated_field"
