"""The service served: `facematch serve` on a free port reached over real HTTP, the
application served from a thread of the test's own process, and calls sent at once."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from app.api.main import server_config
from tests.support.commands import FACEMATCH

# Where an in-process client calls from: a loopback address, inside the allowed networks.
LOOPBACK = ("127.0.0.1", 50000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(
    environment: dict[str, str],
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
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
