"""The console as the tests use it over HTTP in process: a form's CSRF token, a sign-in."""

from __future__ import annotations

import re
import time

import pyotp
from fastapi.testclient import TestClient

from tests.support.staff import PASSWORD, Staff


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def sign_in(client: TestClient, staff: Staff, username: str, step: int = 0) -> str:
    """Sign in through the console's form, with the code `step` steps from now (each step
    is taken once); the CSRF token of the session it opens."""
    form = client.get("/console/sign-in")
    code = pyotp.TOTP(staff.totp[username]).at(time.time() + 30 * step)
    body = {"csrf": csrf_of(form.text), "username": username, "password": PASSWORD}
    signed = client.post("/console/sign-in", data=body | {"totp_code": code})
    assert signed.status_code == 200 and username in signed.text, signed.text
    return csrf_of(signed.text)
