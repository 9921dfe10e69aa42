"""Hostile photos and bodies sent to the real service over HTTP.

Every hostile file is refused with a 4xx and its code, never a 500; lawful but unusual
encodings (16-bit and palette PNG, CMYK JPEG) are searched; and the service's memory, its
probe workers included, stays bounded while it refuses them all.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import psutil
import pytest
from PIL import Image

from app.core.settings import Settings
from tests.support.commands import service_environment
from tests.support.data import sample
from tests.support.images import (
    PDF,
    SVG,
    decompression_bomb,
    encoded,
    png_header_only,
    sixteen_bit_png,
    with_orientation,
    with_zip_appended,
)
from tests.support.requests import approved_request
from tests.support.service import serving
from tests.support.staff import Staff

# Growth of the service's memory (its own process and its probe workers) allowed while it
# takes the whole corpus: far below what decoding any of the large files would take (the
# bomb alone decodes to 400 MB, the 30000 × 30000 header to 2.7 GB).
MEMORY_BOUND = 200 * 2**20
OCTET = "application/octet-stream"


@dataclass(frozen=True)
class Probe:
    name: str
    data: bytes
    content_type: str
    expected: str  # "status code", or "201" for a search that ran


def corpus() -> list[Probe]:
    face = sample("obama_small.jpg")
    photo = Image.open(io.BytesIO(face))
    return [
        Probe("truncated JPEG", face[: len(face) // 2], "image/jpeg", "422 unsupported_image"),
        Probe("zero bytes", b"", "image/jpeg", "422 unsupported_image"),
        Probe("decompression bomb", decompression_bomb(), "image/png", "413 image_too_large"),
        Probe("30000x30000 header", png_header_only(30000, 30000), OCTET, "413 image_too_large"),
        Probe("GIF", encoded(photo, "GIF"), OCTET, "422 unsupported_image"),
        Probe("WebP", encoded(photo, "WEBP"), OCTET, "422 unsupported_image"),
        Probe("TIFF", encoded(photo, "TIFF"), OCTET, "422 unsupported_image"),
        Probe("SVG", SVG, OCTET, "422 unsupported_image"),
        Probe("PDF", PDF, OCTET, "422 unsupported_image"),
        Probe(
            "GIF declared as such", encoded(photo, "GIF"), "image/gif", "415 unsupported_media_type"
        ),
        Probe("JPEG-ZIP polyglot", with_zip_appended(face), "image/jpeg", "422 unsupported_image"),
        Probe("JPEG declared as PNG", face, "image/png", "415 content_type_mismatch"),
        Probe("JPEG declared as HTML", face, "text/html", "415 unsupported_media_type"),
        Probe(
            "EXIF orientation 65535", with_orientation(face, 65535), OCTET, "422 unsupported_image"
        ),
        Probe("16-bit PNG", sixteen_bit_png(face), "image/png", "201"),
        Probe("palette PNG", encoded(photo.convert("P"), "PNG"), "image/png", "201"),
        Probe("CMYK JPEG", encoded(photo.convert("CMYK"), "JPEG"), "image/jpeg", "201"),
    ]


def answer(response: httpx.Response) -> str:
    if response.status_code == 201:
        return "201"
    return f"{response.status_code} {response.json().get('code')}"


class PeakMemory:
    """The highest total resident memory of a process and its children, sampled while the
    block runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()

    def now(self) -> int:
        total = 0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.now())

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def huge_multipart(size: int) -> Iterator[bytes]:
    """A multipart body of `size` bytes of photo, sent in chunks with no declared length."""
    yield b'--x\r\nContent-Disposition: form-data; name="probe"; filename="a.jpg"\r\n\r\n'
    chunk = b"\xff" * 2**20
    for _ in range(size // len(chunk)):
        yield chunk
    yield b"\r\n--x--\r\n"


@pytest.fixture
def service(settings: Settings) -> Iterator[tuple[httpx.Client, int, str, dict[str, str]]]:
    """The service, an approved request with searches enough for the corpus, and its
    operator's headers."""
    environment = service_environment(
        settings, authorised_searches="100", search_rate_limit="1000/minute"
    )
    with serving(environment) as (client, process):
        staff = Staff.over_http(client, environment)
        staff.add_agency()
        request_id = approved_request(client, staff)
        yield (
            client,
            process.pid,
            f"/v1/requests/{request_id}/searches",
            staff.headers("olga.operator"),
        )


# Probes are refused before anything reaches the database, so one database serves.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hostile_probes_are_refused_with_their_codes_in_bounded_memory(
    service: tuple[httpx.Client, int, str, dict[str, str]],
    report_figure: Callable[[str], None],
) -> None:
    client, pid, path, operator = service
    # A first, ordinary search starts the probe workers and loads their models.
    warm = client.post(path, headers=operator, files={"probe": ("a.jpg", sample("obama.jpg"))})
    assert warm.status_code == 201, warm.json()
    probes = corpus()
    memory = PeakMemory(pid)
    baseline = memory.now()
    with memory:
        answers = {
            probe.name: answer(
                client.post(
                    path,
                    headers=operator,
                    files={"probe": ("probe", probe.data, probe.content_type)},
                )
            )
            for probe in probes
        }
        declared = client.post(
            path,
            headers=operator | {"Content-Type": "multipart/form-data; boundary=x"},
            content=b"\0" * (64 * 2**20),
        )
        chunked = client.post(
            path,
            headers=operator | {"Content-Type": "multipart/form-data; boundary=x"},
            content=huge_multipart(32 * 2**20),
        )
    assert answers == {probe.name: probe.expected for probe in probes}
    assert answer(declared) == "413 request_too_large"
    assert answer(chunked) == "413 request_too_large"
    growth = f"{(memory.peak - baseline) / 2**20:.0f} MiB"
    report_figure(f"hostile corpus: the service's memory grew by {growth} at its peak")
    assert memory.peak - baseline < MEMORY_BOUND, f"memory grew by {growth}"
    # The service is still serving searches afterwards.
    after = client.post(path, headers=operator, files={"probe": ("a.jpg", sample("obama.jpg"))})
    assert after.status_code == 201
