"""Photos made for the tests from real ones: other encodings, and hostile files."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image

from tests.support.data import sample


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int, ended: bool = False) -> bytes:
    """A PNG whose header claims a size, followed by a token amount of data (and, `ended`,
    its end chunk: a file whole in its structure, its pixels missing)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + (_png_chunk(b"IEND", b"") if ended else b"")
    )


def decompression_bomb(side: int = 20_000) -> bytes:
    """A complete, valid greyscale PNG of side × side black pixels: a few hundred kilobytes
    that decode to side² bytes (400 MB at the default)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte, then the pixels
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def with_zip_appended(photo: bytes) -> bytes:
    """A JPEG-ZIP polyglot: the photo, then an archive that unzip reads from the same file."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("payload.sh", "#!/bin/sh\necho hidden\n")
    return photo + archive.getvalue()


def slow_photo() -> bytes:
    """A 4000-pixel-wide photo: seconds of detection when detection runs at full size."""
    image = Image.open(io.BytesIO(sample("obama-1080p.jpg"))).resize((4000, 2250))
    return encoded(image, "JPEG", quality=90)


def with_orientation(photo: bytes, orientation: int) -> bytes:
    image = Image.open(io.BytesIO(photo))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(image, "JPEG", exif=exif.tobytes())


def sixteen_bit_png(photo: bytes) -> bytes:
    grey = np.asarray(Image.open(io.BytesIO(photo)).convert("L"), np.uint16)
    return encoded(Image.fromarray(grey * 257), "PNG")


PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
SVG = b"<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'><circle r='4'/></svg>"
