"""The service as a person runs it: the `facematch` command, `facematch serve` on a free
port reached over real HTTP, and the agency's staff set up through the API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pyotp

from app.config import Settings
from tests.conftest import LFW, TEST_AUDIT_KEY, TEST_KEY, TEST_TEMPLATE_KEY
from tests.governance import PASSWORD, request_body

FACEMATCH = [str(Path(sys.executable).with_name("facematch"))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `facematch` command for these settings, and `extra` FACEMATCH_*
    variables (given without the prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEMATCH_")}
    env.update(
        FACEMATCH_DATA_DIR=str(settings.data_dir),
        FACEMATCH_DATABASE_URL=settings.sqlalchemy_url,
        FACEMATCH_JWT_KEY=TEST_KEY,
        FACEMATCH_TEMPLATE_KEY=TEST_TEMPLATE_KEY,
        FACEMATCH_AUDIT_SIGNING_KEY=TEST_AUDIT_KEY,
        FACEMATCH_ENGINE=settings.engine,
    )
    env.update({f"FACEMATCH_{name.upper()}": value for name, value in extra.items()})
    return env


def facematch(environment: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [*FACEMATCH, *args], env=environment, input=stdin, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def enrol_demo_args(manifest: Path, rejects: Path) -> list[str]:
    """`facematch enroll` of an LFW demo manifest, as the README runs it."""
    images = str(LFW / "images")
    return [
        "enroll",
        str(manifest),
        "--images",
        images,
        "--face",
        "central",
        "--rejects",
        str(rejects),
    ]


@contextmanager
def serving(environment: dict[str, str]) -> Iterator[tuple[httpx.Client, subprocess.Popen]]:
    """`facematch serve` on a free port, once it answers; stopped afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [*FACEMATCH, "serve", "--host", "127.0.0.1", "--port", str(port)], env=environment
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.5)
        with httpx.Client(base_url=base, timeout=60) as client:
            yield client, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in_first_time(client: httpx.Client, username: str) -> dict[str, str]:
    """A person's first sign-in: password, set up the second factor, sign in with a code."""
    first = client.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert first.status_code == 200 and not first.json()["mfa"]
    setup = client.post("/v1/auth/totp", headers=bearer(first.json()["access_token"]))
    totp = pyotp.parse_uri(setup.json()["otpauth_uri"])
    confirmed = client.post(
        "/v1/auth/totp/confirm",
        headers=bearer(first.json()["access_token"]),
        json={"code": totp.now()},
    )
    assert confirmed.status_code == 204
    # Each code is good once: sign in with the next one.
    code = totp.at(datetime.now(UTC) + timedelta(seconds=30))
    signed_in = client.post(
        "/v1/auth/login", json={"username": username, "password": PASSWORD, "totp_code": code}
    )
    assert signed_in.status_code == 200 and signed_in.json()["mfa"], signed_in.json()
    return bearer(signed_in.json()["access_token"])


class Agency:
    """The agency's staff, set up as the README walkthrough does."""

    PEOPLE = {
        "sam.staff": "staff_reviewer",
        "mia.manager": "manager",
        "uma.unitadmin": "unit_admin",
        "dan.director": "director",
        "gail.governor": "governor_office",
        "olga.operator": "operator",
        "rita.records": "records_clerk",
        "aldo.auditor": "auditor",
    }

    def __init__(self, client: httpx.Client, environment: dict[str, str]) -> None:
        facematch(
            environment,
            "accounts",
            "create",
            "ada.admin",
            "--role",
            "admin",
            stdin=f"{PASSWORD}\n{PASSWORD}\n",
        )
        self.headers = {"ada.admin": sign_in_first_time(client, "ada.admin")}
        admin = self.headers["ada.admin"]
        ids = {}
        for username, role in self.PEOPLE.items():
            created = client.post(
                "/v1/accounts",
                headers=admin,
                json={"username": username, "role": role, "password": PASSWORD},
            )
            assert created.status_code == 201, created.json()
            ids[username] = created.json()["id"]
        today = date.today()
        trained = client.post(
            f"/v1/accounts/{ids['olga.operator']}/training",
            headers=admin,
            json={
                "course": "facial-recognition-operator",
                "completed_on": str(today - timedelta(days=10)),
                "expires_on": str(today + timedelta(days=355)),
            },
        )
        assert trained.status_code == 201
        system = client.post(
            "/v1/accounts",
            headers=admin,
            json={"username": "review-system", "role": "review_system"},
        ).json()
        token = client.post(
            "/v1/auth/token",
            json={"client_id": "review-system", "client_secret": system["client_secret"]},
        )
        self.system_token = token.json()["access_token"]
        self.headers["review-system"] = bearer(self.system_token)
        for username in self.PEOPLE:
            self.headers[username] = sign_in_first_time(client, username)


def review(client: httpx.Client, agency: Agency, request_id: int, reviewer: str) -> dict:
    response = client.post(
        f"/v1/requests/{request_id}/reviews",
        headers=agency.headers[reviewer],
        json={"decision": "approve", "reason": "a specific crime; the order is in the file"},
    )
    assert response.status_code == 201, response.json()
    return response.json()


def approved_request(client: httpx.Client, agency: Agency) -> int:
    """A request the review system submits (a local narcotics case), approved by the three
    levels it needs."""
    request_id = client.post(
        "/v1/requests", headers=agency.headers["review-system"], json=request_body()
    ).json()["id"]
    for reviewer in ("sam.staff", "mia.manager", "uma.unitadmin"):
        review(client, agency, request_id, reviewer)
    return request_id
