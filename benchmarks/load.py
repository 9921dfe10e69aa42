"""The service under load, over real HTTP on loopback: a gallery enrolled from LFW with the
`facematch` command, the service started with `facematch serve`, staff and an approved request
set up through the API as the README walkthrough does; then 640×480 probes searched one at a
time on an idle machine, and by N concurrent clients for a bounded time. Then, the service
stopped, the ceiling: the probe pool alone, as the service builds it, encoding the same probes
for the same clients. Throughput is reported as a share of that ceiling, measured in the same
run, so a figure from a busy or slower machine still says what the service loses between the
socket and the matcher.

Every search is the whole route: the probe decoded, its face found and described in the
service's worker processes, the index searched, the search recorded and audited.

    .venv/bin/python benchmarks/load.py [--gallery 10000] [--clients 16] [--seconds 60]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyotp
from PIL import Image
from public_sets import DATASETS
from runner import ROOT, machine, write

from app.audit.keys import new_signing_key
from app.core.composition import encoder
from app.core.settings import Settings
from app.enrolment.demo import DEMO_COLUMNS, demo_request, lfw_demo_rows
from app.requests.rules import required_levels
from auth import LEVEL_ROLE, Role
from index import new_key
from matcher import (
    FaceRefusal,
    PipelineBusy,
    PipelineStarting,
    PipelineTimeout,
    ProbeEncoder,
)

LFW, SAMPLES = DATASETS / "lfw", DATASETS / "samples"

FACEMATCH = str(Path(sys.executable).with_name("facematch"))
# Photos of one face each, fitted whole into a 640×480 frame, as a probe from a camera still.
PROBES = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "alex-lacamoire.png"]


def probe_photos() -> list[bytes]:
    photos = []
    for name in PROBES:
        photo = Image.open(SAMPLES / name).convert("RGB")
        photo.thumbnail((640, 480))
        image = Image.new("RGB", (640, 480), (128, 128, 128))
        image.paste(photo, ((640 - photo.width) // 2, (480 - photo.height) // 2))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        photos.append(buffer.getvalue())
    return photos


def gallery_manifest(path: Path, templates: int) -> None:
    """Every LFW photo of each person under one invented licence, until `templates` rows."""
    rows = 0
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=DEMO_COLUMNS)
        writer.writeheader()
        for row in lfw_demo_rows(LFW / "images"):
            person = row["photo"].split("/")[0]
            for photo in sorted((LFW / "images" / person).glob("*.jpg")):
                if rows == templates:
                    return
                writer.writerow({**row, "photo": f"{person}/{photo.name}"})
                rows += 1


class Service:
    """`facematch serve` in its own process, on a fresh data folder."""

    def __init__(self, data_dir: Path, engine: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FACEMATCH_")}
        self.env.update(
            FACEMATCH_DATA_DIR=str(data_dir),
            FACEMATCH_JWT_KEY=secrets.token_urlsafe(48),
            FACEMATCH_TEMPLATE_KEY=new_key(),
            FACEMATCH_AUDIT_ANCHOR_KEY=new_signing_key(),
            FACEMATCH_ENGINE=engine,
            FACEMATCH_AUTHORISED_SEARCHES="1000000",
            # Every client searches as one operator: the load, not the per-account limit.
            FACEMATCH_SEARCH_RATE_LIMIT="1000000/minute",
        )
        with socket.socket() as sock:  # a free port
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def run(self, *args: str, stdin: str | None = None) -> str:
        """A `facematch` command against this service's data; what it printed."""
        done = subprocess.run(
            [FACEMATCH, *args], env=self.env, input=stdin, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return done.stdout

    def start(self) -> float:
        """Start serving; the seconds until it answers."""
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [FACEMATCH, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while True:
            try:
                if httpx.get(f"{self.base}/v1/health").status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Agency:
    """The few accounts one approved request needs, set up through the service's own command
    line and API as the README walkthrough does: the first administrator on the command
    line, the second proposed by the first and approved there; the review system, a reviewer
    for each level and a trained operator each asked for by Ada and approved by Ben; each
    person sets their own password and second factor. Usernames are the roles'."""

    PASSWORD = "lilac orbit fennel 57"

    def __init__(self, client: httpx.Client, service: Service) -> None:
        self.client = client
        self.headers: dict[str, dict[str, str]] = {}
        self.operator_id = 0
        self.join("ada", printed_code(service.run("accounts", "first-admin", "ada")))
        asked = self.call("/v1/accounts", {"username": "ben", "role": "admin"}, "ada")
        approved = service.run("accounts", "approve", str(asked["pending_change"]["id"]))
        self.join("ben", f"{asked['credentials']['activation_code']}-{printed_code(approved)}")
        secret = self.made(Role.review_system)["client_secret"]
        system = {"client_id": name(Role.review_system), "client_secret": secret}
        token = self.call("/v1/auth/token", system)["access_token"]
        self.headers[name(Role.review_system)] = bearer(token)
        for role in [*(LEVEL_ROLE[level] for level in required_levels(False)), Role.operator]:
            self.join(name(role), self.made(role)["activation_code"])
        today = date.today()
        course = {
            "course": "facial-recognition-operator",
            "completed_on": str(today),
            "expires_on": str(today + timedelta(days=365)),
        }
        training = f"/v1/accounts/{self.operator_id}/training"
        self.approved(self.call(training, course, "ada"))

    def call(self, path: str, body: dict[str, Any] | None = None, who: str = "") -> Any:
        """POST as `who` (nobody: no token); the answer's body, which must be a success."""
        response = self.client.post(path, json=body, headers=self.headers.get(who))
        if response.is_error:
            raise RuntimeError(f"{path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def approved(self, asked: dict[str, Any]) -> dict[str, Any]:
        """Ben approves the change Ada asked for."""
        change = asked["pending_change"]["id"]
        return dict(self.call(f"/v1/account-changes/{change}/approve", who="ben"))

    def made(self, role: Role) -> dict[str, str]:
        """The account of `role`, asked for by Ada and approved by Ben; its credentials, a
        person's activation code whole (Ada's half, then Ben's)."""
        asked = self.call("/v1/accounts", {"username": name(role), "role": role.value}, "ada")
        outcome = self.approved(asked)
        if role is Role.operator:
            self.operator_id = int(outcome["account"]["id"])
        credentials: dict[str, str] = outcome["credentials"]
        if role is not Role.review_system:
            first = asked["credentials"]["activation_code"]
            credentials["activation_code"] = f"{first}-{credentials['activation_code']}"
        return credentials

    def join(self, username: str, code: str) -> None:
        """A person's own password with their activation code, their own second factor, then
        a sign-in with it."""
        person = {"username": username, "password": self.PASSWORD}
        activated = self.call("/v1/auth/activate", person | {"activation_code": code})
        self.headers[username] = bearer(activated["access_token"])
        uri = self.call("/v1/auth/totp", who=username)["otpauth_uri"]
        totp = pyotp.TOTP(pyotp.parse_uri(uri).secret)
        self.call("/v1/auth/totp/confirm", {"code": totp.now()}, username)
        later = totp.at(datetime.now(UTC) + timedelta(seconds=30))  # each code is good once
        signed_in = self.call("/v1/auth/login", person | {"totp_code": later})
        self.headers[username] = bearer(signed_in["access_token"])


def printed_code(output: str) -> str:
    """The activation code a `facematch accounts` command printed, last."""
    return output.rsplit(": ", 1)[1].strip()


def name(role: Role) -> str:
    """The username of the benchmark's one account of `role`."""
    return role.value.replace("_", "-")


def approved_request(client: httpx.Client, service: Service) -> tuple[int, dict[str, str]]:
    """An approved request the review system submitted (a local narcotics case), and the
    operator's headers."""
    agency = Agency(client, service)
    system = name(Role.review_system)
    request_id = agency.call("/v1/requests", demo_request(), system)["id"]
    for level in required_levels(False):
        role = LEVEL_ROLE[level]
        decision: dict[str, Any] = {"decision": "approve", "reason": "a specific crime"}
        if role is Role.unit_administrator:
            decision["operators"] = [name(Role.operator)]
        agency.call(f"/v1/requests/{request_id}/reviews", decision, name(role))
    return request_id, agency.headers[name(Role.operator)]


# One client's way to search: a probe in, its outcome out ("201", a refusal code, an error).
Searcher = Callable[[bytes], str]


@contextmanager
def over_http(base: str, path: str, headers: dict) -> Iterator[Searcher]:
    """A client of the service: each search the whole route."""
    with httpx.Client(base_url=base, timeout=60) as client:

        def search(photo: bytes) -> str:
            try:
                response = client.post(path, headers=headers, files={"probe": ("probe.jpg", photo)})
            except httpx.HTTPError as error:
                return type(error).__name__
            return "201" if response.status_code == 201 else response.json().get("code", "?")

        yield search


def in_pool(probes: ProbeEncoder) -> Callable[[], AbstractContextManager[Searcher]]:
    """A client of the probe pool alone, as the service builds it: the ceiling the service
    would reach with nothing between the socket and the matcher."""

    @contextmanager
    def client() -> Iterator[Searcher]:
        def search(photo: bytes) -> str:
            try:
                probes.encode(photo, None)
            except FaceRefusal as refusal:
                return refusal.code
            except (PipelineBusy, PipelineStarting, PipelineTimeout) as error:
                return type(error).__name__
            return "201"

        yield search

    return client


def summary(times: list[float], outcomes: Counter, seconds: float) -> dict:
    p50, p99 = np.percentile(times, [50, 99]) * 1e3 if times else (0.0, 0.0)
    return {
        "searches": len(times),
        "per_second": round(len(times) / seconds, 2),
        "p50_ms": round(float(p50), 1),
        "p99_ms": round(float(p99), 1),
        "outcomes": dict(outcomes),
        "errors": sum(n for outcome, n in outcomes.items() if outcome != "201"),
    }


def idle(
    client: Callable[[], AbstractContextManager[Searcher]], photos: list[bytes], count: int
) -> dict:
    """One client, one search at a time: latency on an otherwise idle machine."""
    times: list[float] = []
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()
    with client() as search:
        for i in range(count):
            start = time.perf_counter()
            outcomes[search(photos[i % len(photos)])] += 1
            times.append(time.perf_counter() - start)
    return summary(times, outcomes, time.perf_counter() - started)


def loaded(
    client: Callable[[], AbstractContextManager[Searcher]],
    photos: list[bytes],
    clients: int,
    seconds: float,
) -> dict:
    """`clients` threads searching back to back until `seconds` have passed."""
    times: list[float] = []
    outcomes: Counter = Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client_loop(n: int) -> None:
        with client() as search:
            i = n
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                outcome = search(photos[i % len(photos)])
                with lock:
                    times.append(time.perf_counter() - start)
                    outcomes[outcome] += 1
                i += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"clients": clients, **summary(times, outcomes, time.perf_counter() - started)}


def ceiling(engine: str, photos: list[bytes], clients: int, seconds: float, count: int) -> dict:
    """The probe pool alone, built from the service's default settings and warmed, searched
    as the service was: its idle latency and its throughput under the same clients."""
    settings = Settings(engine=engine)
    probes = ProbeEncoder(encoder(settings), settings.search_workers, settings.probe_timeout_s)
    try:
        probes.warm()
        client = in_pool(probes)
        idle(client, photos, len(photos))
        return {
            "idle": idle(client, photos, count),
            "load": loaded(client, photos, clients, seconds),
        }
    finally:
        probes.close()


def table(result: dict) -> str:
    lines = [
        "| run | clients | searches | per second | of the ceiling | p50 ms | ceiling p50 ms "
        "| p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("idle", "load"):
        run, bound = result[name], result["ceiling"][name]
        lines.append(
            f"| {name} | {run.get('clients', 1)} | {run['searches']} | {run['per_second']} "
            f"| {result['of_ceiling'][name]:.2f} | {run['p50_ms']} | {bound['p50_ms']} "
            f"| {run['p99_ms']} | {run['errors']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sface", "dlib"], default="sface")
    parser.add_argument("--gallery", type=int, default=10_000, help="templates enrolled")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--idle-searches", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "load.json")
    args = parser.parse_args()
    photos = probe_photos()
    with tempfile.TemporaryDirectory() as directory:
        service = Service(Path(directory) / "var", args.engine)
        manifest = Path(directory) / "gallery.csv"
        gallery_manifest(manifest, args.gallery)
        print(f"enrolling {args.gallery:,} LFW photos", flush=True)
        rejects = Path(directory) / "rejects.csv"
        service.run(
            "enroll",
            str(manifest),
            "--images",
            str(LFW / "images"),
            "--face",
            "central",
            "--rejects",
            str(rejects),
        )
        start_s = service.start()
        try:
            with httpx.Client(base_url=service.base, timeout=60) as client:
                request_id, headers = approved_request(client, service)
                templates = client.get("/v1/health").json()
            path = f"/v1/requests/{request_id}/searches"
            served = partial(over_http, service.base, path, headers)
            idle(served, photos, len(photos))  # the workers warm up
            print("searching on an idle machine", flush=True)
            quiet = idle(served, photos, args.idle_searches)
            print(f"{args.clients} clients for {args.seconds:g} s", flush=True)
            busy = loaded(served, photos, args.clients, args.seconds)
        finally:
            service.stop()
    print("the ceiling: the probe pool alone, the same probes and clients", flush=True)
    bound = ceiling(args.engine, photos, args.clients, args.seconds, args.idle_searches)
    result = {
        "benchmark": "load",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "engine": args.engine,
        "gallery": templates,
        "probe": "640×480 JPEG",
        "start_up_s": round(start_s, 2),
        "idle": quiet,
        "load": busy,
        "ceiling": bound,
        # Searches per second as a share of the pool's own: what the service keeps of what
        # the matcher could do on this machine, whatever else the machine was doing.
        "of_ceiling": {
            name: round(run["per_second"] / bound[name]["per_second"], 3)
            for name, run in (("idle", quiet), ("load", busy))
        },
    }
    write(result, table, args.out)


if __name__ == "__main__":
    main()
