"""The console in a real browser: Debian's Chromium, driven through its chromedriver, against
`facematch serve` over real HTTP, set up by `facematch demo`. Every role signs in; a request
the review system submits through the API is reviewed page by page; the operator searches a
real LFW photo, compares the faces, concludes and confirms; the auditor verifies the log and
reads the report; the clerk finds the disclosure. On the way: no page holds the name, date of
birth or licence number of anyone but the person released, a form without its CSRF token is
refused, an idle session locks, and a candidate's photo answers nobody but the searching
operator, and nobody once the search is decided. Screenshots of each page are written under
benchmarks/results/console/ (never committed: they show real faces)."""

from __future__ import annotations

import csv
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from app.core.settings import Settings
from tests.support.commands import facematch, service_environment
from tests.support.data import LFW
from tests.support.requests import request_body
from tests.support.service import serving
from tests.support.staff import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "console"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
PEOPLE = 30


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """One database: the console calls the API's own route functions, which every other
    test runs on both."""
    return f"sqlite:///{tmp_path / 'facematch.db'}"


@pytest.fixture
def environment(settings: Settings) -> dict[str, str]:
    return service_environment(settings, environment="development", photo_store=str(LFW / "images"))


@pytest.fixture
def demo(environment: dict[str, str]) -> dict[str, str]:
    """`facematch demo`: what it printed, as username → activation code, and the secret."""
    printed = facematch(environment, "demo", str(LFW), "--people", str(PEOPLE))
    codes = dict(re.findall(r"^  (\S+)\s+\S+\s+(\S+)$", printed, re.MULTILINE))
    secret = re.search(r"client secret \(for the API\): (\S+)", printed)
    assert secret and "olga.operator" in codes, printed
    return codes | {"review-system": secret.group(1)}


@pytest.fixture
def base(environment: dict[str, str], demo: dict[str, str]) -> Iterator[str]:
    with serving(environment) as (client, _):
        yield str(client.base_url)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium, its network chatter off (this machine reaches no other host)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, f"{missing} missing: `make test` installs Chromium (scripts/with-chromium)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1400",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


class Authenticator:
    """A person's authenticator app: a code of a step not used yet, waiting for one if need
    be. The service takes each step once, within one step of its own now; never the step
    before this one, which a step boundary crossed on the way would put out of reach."""

    def __init__(self, key: str) -> None:
        self.totp, self.last = pyotp.TOTP(key), -1

    def code(self) -> str:
        while True:
            now = self.totp.timecode(datetime.now(UTC))
            step = max(self.last + 1, now)
            if step <= now + 1:
                self.last = step
                return self.totp.generate_otp(step)
            time.sleep(1)


class Visit:
    """The browser as the test walks it: every page's source kept for the leak check, a
    screenshot of each named page."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver, self.base = driver, base
        self.sources: list[tuple[str, str]] = []
        self.authenticators: dict[str, Authenticator] = {}

    def get(self, path: str) -> None:
        self.driver.get(self.base + path)
        self.keep(path)

    def keep(self, label: str) -> None:
        self.sources.append((label, self.driver.page_source))

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    def fill(self, **fields: str) -> None:
        for name, value in fields.items():
            element = self.driver.find_element(By.NAME, name)
            element.clear()
            element.send_keys(value)

    def submit(self, selector: str = "main form button[type=submit]") -> None:
        self.click(selector)
        self.keep(self.driver.current_url)

    def click(self, selector: str) -> None:
        """Click what sends the browser to another page, and wait until it is there and
        loaded: a mark left on this page's window is gone from the next one's."""
        self.driver.execute_script("window.facematchLeaving = true")
        self.driver.find_element(By.CSS_SELECTOR, selector).click()
        WebDriverWait(self.driver, 30, ignored_exceptions=(WebDriverException,)).until(
            lambda driver: driver.execute_script(
                "return !window.facematchLeaving && document.readyState === 'complete'"
            )
        )

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "main").text

    def activate(self, username: str, code: str) -> None:
        self.get("/console/activate")
        self.fill(username=username, activation_code=code, password=PASSWORD)
        self.submit()
        key = self.driver.find_element(By.ID, "totp-key").text
        self.authenticators[username] = Authenticator(key)
        code = self.authenticators[username].code()
        self.fill(code=code)
        self.submit()
        assert "second factor is set up" in self.text(), (
            self.text(),
            key,
            code,
            self.driver.current_url,
        )

    def sign_in(self, username: str) -> None:
        self.get("/console/sign-in")
        self.fill(
            username=username, password=PASSWORD, totp_code=self.authenticators[username].code()
        )
        self.submit()
        assert username in self.driver.find_element(By.CLASS_NAME, "who").text, self.text()

    def sign_out(self) -> None:
        assert self.driver.find_elements(By.CSS_SELECTOR, ".sign-out"), self.text()
        self.click(".sign-out button")
        assert "signed out" in self.text()


def test_every_role_walks_the_path_in_a_browser(
    browser: WebDriver, base: str, demo: dict[str, str], settings: Settings
) -> None:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    visit = Visit(browser, base)
    people = ("ada.admin", "ben.admin", "sam.staff", "mia.manager", "uma.unitadmin")
    for username in (*people, "olga.operator", "otto.operator", "aldo.auditor", "rita.records"):
        visit.activate(username, demo[username])
    visit.shot("sign-in")

    # The session cookie: HttpOnly, SameSite=Strict, only for the console.
    visit.sign_in("ada.admin")
    [cookie] = [c for c in browser.get_cookies() if c["name"] == "facematch_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"

    # Administrators: Ada asks for an account, Ben approves; each holds half of the code.
    visit.get("/console/accounts")
    visit.fill(username="nia.new")
    visit.submit("form[action='/console/accounts'] button")
    assert "waits for a second administrator" in visit.text()
    visit.shot("admin-asked")
    visit.sign_out()
    visit.sign_in("ben.admin")
    visit.get("/console/accounts")
    visit.shot("admin-accounts")
    visit.submit("form[action$='/approve'] button")
    assert "Activation code (second half)" in visit.text()
    visit.sign_out()

    # The request-review system submits through the API, as it does.
    with httpx.Client(base_url=base) as api:
        secret = {"client_id": "review-system", "client_secret": demo["review-system"]}
        token = api.post("/v1/auth/token", json=secret).json()["access_token"]
        submitted = api.post(
            "/v1/requests", headers={"Authorization": f"Bearer {token}"}, json=request_body()
        )
        assert submitted.status_code == 201
        request_id = submitted.json()["id"]

    # Each level in turn reads the request and decides; a form without its token is refused.
    for username in ("sam.staff", "mia.manager", "uma.unitadmin"):
        visit.sign_in(username)
        visit.get("/console/reviews")
        visit.shot(f"queue-{username}")
        visit.click(f"a[href='/console/requests/{request_id}']")
        visit.keep(browser.current_url)
        assert "Passed under rule 2" in visit.text() and "Det. R. Alvarez" in visit.text()
        if username == "sam.staff":
            browser.execute_script(
                "document.querySelector(\"form[action$='/reviews'] [name=csrf]\").value = ''"
            )
            browser.find_element(By.CSS_SELECTOR, "input[value=approve]").click()
            visit.fill(reason="specific crime")
            visit.submit("form[action$='/reviews'] button")
            assert "csrf_failed" in visit.text() and "did not come from your" in visit.text()
            visit.shot("refused-csrf")
            browser.back()
            browser.refresh()
        browser.find_element(By.CSS_SELECTOR, "input[value=approve]").click()
        visit.fill(reason="a specific crime, not an immigration matter")
        if username == "uma.unitadmin":
            browser.find_element(By.CSS_SELECTOR, "input[value='olga.operator']").click()
        visit.shot(f"request-{username}")
        visit.submit("form[action$='/reviews'] button")
        assert username in visit.text()
        visit.sign_out()

    # The operator searches with a second photo of someone enrolled by their first.
    with open(settings.data_dir / "demo.csv", newline="") as manifest:
        rows = list(csv.DictReader(manifest))
    person = rows[0]
    probe = LFW / "images" / person["photo"].replace("_0001.jpg", "_0002.jpg")
    visit.sign_in("olga.operator")
    visit.get("/console/operator")
    assert "Olympia Police Department" in visit.text()
    visit.shot("operator-requests")
    visit.get(f"/console/requests/{request_id}/search")
    browser.find_element(By.NAME, "probe").send_keys(str(probe))
    visit.submit()
    review = browser.current_url.removeprefix(base)
    assert re.fullmatch(r"/console/searches/\d+", review), visit.text()
    images = browser.find_elements(By.CSS_SELECTOR, ".compare img")
    assert images and all(
        browser.execute_script("return arguments[0].naturalWidth", image) > 0 for image in images
    )
    photo = browser.find_element(By.CSS_SELECTOR, "[data-enrolled]").get_attribute("src")
    assert photo is not None
    visit.shot("operator-review")
    compare = browser.find_element(By.CSS_SELECTOR, "[data-compare]")
    browser.find_element(By.CSS_SELECTOR, "[data-zoom]").click()
    browser.find_element(By.CSS_SELECTOR, "[data-overlay]").click()
    assert {"zoomed", "overlaid"} <= set(str(compare.get_attribute("class")).split())
    visit.shot("operator-review-overlaid")
    visit.sign_out()

    # Nobody else sees the candidate's photo, nor the review page.
    for other in ("otto.operator", "aldo.auditor"):
        visit.sign_in(other)
        for path in (photo.removeprefix(base), review):
            visit.get(path)
            code = "not_search_operator" if other == "otto.operator" else "forbidden"
            assert code in visit.text(), visit.text()
        visit.sign_out()

    # A conclusion for every candidate; the identification releases five fields, once.
    visit.sign_in("olga.operator")
    visit.get(review)
    candidates = browser.find_elements(By.CSS_SELECTOR, ".candidate")
    for rank, section in enumerate(candidates, start=1):
        choice = "identification" if rank == 1 else "exclusion"
        section.find_element(By.CSS_SELECTOR, f"input[value={choice}]").click()
        section.find_element(By.TAG_NAME, "textarea").send_keys("face shape, eyes, nose, ears")
    visit.submit("button.decide")
    released = browser.find_element(By.ID, "release").text
    assert person["license_number"] in released and person["last_name"] in released
    visit.shot("operator-release")
    visit.get(review)
    assert "decided: confirmed" in visit.text()
    assert person["license_number"] not in browser.page_source
    visit.get(photo.removeprefix(base))
    assert "already_decided" in visit.text()
    visit.sign_out()

    # The auditor: the log, its verification, the report with its chart, the operating point.
    visit.sign_in("aldo.auditor")
    visit.get("/console/audit?event_type=search.decision")
    assert "search.decision" in visit.text() and "confirmed" in visit.text()
    visit.shot("auditor-log")
    visit.get("/console/audit/verify")
    assert browser.find_element(By.ID, "verdict").text.startswith("Intact")
    visit.shot("auditor-verify")
    visit.get("/console/report")
    assert "Releases" in visit.text() and browser.find_elements(By.CSS_SELECTOR, "svg rect")
    visit.shot("auditor-report")
    visit.get("/console/operating-point")
    assert "within the" in browser.find_element(By.ID, "gallery-verdict").text
    checks = browser.find_element(By.ID, "checks").text  # the miss rate per photo condition
    assert "lfw-held-out" in checks and "celeba" in checks
    visit.shot("auditor-operating-point")
    visit.sign_out()

    # The records clerk answers the hotline; then the session, left idle, locks.
    visit.sign_in("rita.records")
    visit.get(f"/console/disclosures?license_number={person['license_number']}")
    assert "Olympia Police Department" in browser.find_element(By.ID, "disclosures").text
    visit.shot("clerk-disclosures")
    with sqlite3.connect(settings.sqlalchemy_url.removeprefix("sqlite:///")) as database:
        idle = (datetime.now(UTC) - timedelta(minutes=31)).strftime("%Y-%m-%d %H:%M:%S.%f")
        database.execute(
            "UPDATE console_sessions SET last_seen_at = ? WHERE ended_at IS NULL", (idle,)
        )
    visit.get("/console/disclosures")
    assert browser.current_url.startswith(f"{base}/console/sign-in")
    assert "Your session locked" in visit.text()

    # Nowhere a name, date of birth or licence number of anyone but the person released,
    # and no page with a script or a style of its own.
    for label, source in visit.sources:
        for row in rows[1:]:
            full_name = f"{row['first_name']} {row['last_name']}"
            for value in (row["license_number"], row["date_of_birth"], full_name):
                assert value not in source, (label, value)
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), label
        assert " style=" not in source, label
    with httpx.Client(base_url=base) as plain:
        headers = plain.get("/console/sign-in").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"
