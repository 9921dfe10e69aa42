"""The service as a person runs it: the `facematch` command, `facematch serve` on a free
port reached over real HTTP, and the agency's staff set up through the API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pyotp
import uvicorn
from fastapi import FastAPI

from app.api.main import server_config
from app.core.settings import Settings
from tests.conftest import LFW, TEST_ANCHOR_KEY, TEST_AUDIT_KEY, TEST_KEY, TEST_TEMPLATE_KEY
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
        FACEMATCH_AUDIT_ANCHOR_KEY=TEST_ANCHOR_KEY,
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


def activate(client: httpx.Client, username: str, code: str) -> dict[str, str]:
    """A person's first sign-in: their own password with the activation code, then their own
    second factor (the otpauth URI is shown once), then a sign-in with a code."""
    first = client.post(
        "/v1/auth/activate",
        json={"username": username, "activation_code": code, "password": PASSWORD},
    )
    assert first.status_code == 200 and not first.json()["mfa"], first.json()
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


def printed_code(output: str) -> str:
    """The activation code a `facematch accounts` command printed."""
    return output.rsplit(": ", 1)[1].strip()


class Agency:
    """The agency's staff, set up as the README walkthrough does: the first administrator on
    the command line, the second proposed by the first and approved on the command line,
    everyone else by the first administrator, with the second approving what confers power;
    each person activates their own account."""

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
        made = facematch(environment, "accounts", "first-admin", "ada.admin")
        self.headers = {"ada.admin": activate(client, "ada.admin", printed_code(made))}
        ada = self.headers["ada.admin"]
        proposed = client.post(
            "/v1/accounts", headers=ada, json={"username": "ben.admin", "role": "admin"}
        )
        assert proposed.status_code == 202, proposed.json()
        change = proposed.json()["pending_change"]["id"]
        approved = facematch(environment, "accounts", "approve", str(change))
        first = proposed.json()["credentials"]["activation_code"]
        code = f"{first}-{printed_code(approved)}"
        self.headers["ben.admin"] = activate(client, "ben.admin", code)
        ids, codes = {}, {}
        for username, role in self.PEOPLE.items():
            outcome = self.made(client, {"username": username, "role": role})
            ids[username] = outcome["account"]["id"]
            codes[username] = outcome["credentials"]["activation_code"]
        today = date.today()
        self.made(
            client,
            {
                "course": "facial-recognition-operator",
                "completed_on": str(today - timedelta(days=10)),
                "expires_on": str(today + timedelta(days=355)),
            },
            f"/v1/accounts/{ids['olga.operator']}/training",
        )
        system = self.made(client, {"username": "review-system", "role": "review_system"})
        token = client.post(
            "/v1/auth/token",
            json={
                "client_id": "review-system",
                "client_secret": system["credentials"]["client_secret"],
            },
        )
        self.system_token = token.json()["access_token"]
        self.headers["review-system"] = bearer(self.system_token)
        for username in self.PEOPLE:
            self.headers[username] = activate(client, username, codes[username])

    def made(self, client: httpx.Client, body: dict[str, str], path: str = "/v1/accounts") -> dict:
        """Ada asks; where the change waits for a second administrator, Ben approves it. A
        person's activation code is Ada's half, then Ben's."""
        asked = client.post(path, headers=self.headers["ada.admin"], json=body)
        assert asked.status_code in (201, 202), asked.json()
        if asked.status_code == 201:
            return asked.json()
        change = asked.json()["pending_change"]["id"]
        approved = client.post(
            f"/v1/account-changes/{change}/approve", headers=self.headers["ben.admin"]
        )
        assert approved.status_code == 200, approved.json()
        outcome = approved.json()
        first = (asked.json()["credentials"] or {}).get("activation_code")
        if first is not None:
            second = outcome["credentials"]["activation_code"]
            outcome["credentials"]["activation_code"] = f"{first}-{second}"
        return outcome


def review(client: httpx.Client, agency: Agency, request_id: int, reviewer: str) -> dict:
    body: dict[str, object] = {"decision": "approve", "reason": "a specific crime"}
    if reviewer == "uma.unitadmin":
        body["operators"] = ["olga.operator"]
    response = client.post(
        f"/v1/requests/{request_id}/reviews", headers=agency.headers[reviewer], json=body
    )
    assert response.status_code == 201, response.json()
    return response.json()


def approved_request(client: httpx.Client, agency: Agency) -> int:
    """A request the review system submits (a local narcotics case), approved by the three
    levels it needs, the unit administrator assigning Olga."""
    request_id = client.post(
        "/v1/requests", headers=agency.headers["review-system"], json=request_body()
    ).json()["id"]
    for reviewer in ("sam.staff", "mia.manager", "uma.unitadmin"):
        review(client, agency, request_id, reviewer)
    return request_id


@contextmanager
def served_in_thread(app: FastAPI) -> Iterator[httpx.Client]:
    """The application served over real HTTP as `facematch serve` serves it (the same uvicorn
    configuration), from a thread of this process: for races and headers, without the cost
    of a process that loads the face models."""
    server = uvicorn.Server(server_config(app, "127.0.0.1", free_port()))
    thread = threading.Thread(target=server.run, name="served-in-thread", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Send every call at the same moment, each from its own thread."""
    start = threading.Barrier(len(calls))

    def send(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(send, calls))
