"""Turn untrusted photo bytes into an RGB pixel array, or refuse.

The format is read from the bytes themselves (never a file name or a content type), the
file must end where the image ends (no polyglot: a JPEG with a ZIP archive behind it is
refused), the pixel count is checked from the header before any pixel is decoded, and
Pillow's decompression-bomb guard stays on.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from matcher.refusals import FaceRefusal

_SIGNATURES = {
    "JPEG": b"\xff\xd8\xff",
    "PNG": b"\x89PNG\r\n\x1a\n",
}
_EXIF_ORIENTATION = 0x0112
# 1-8 are the EXIF orientations; 0 is written by some software for "not set".
_ORIENTATIONS = range(9)


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000


def sniff_format(data: bytes) -> str | None:
    for name, signature in _SIGNATURES.items():
        if data.startswith(signature):
            return name
    return None


def check_photo(data: bytes, limits: DecodeLimits) -> None:
    """Every check that needs no pixel decoded: the size, the format by its bytes, the header
    (the pixel count; a JPEG's EXIF orientation) and the file's end. Cheap enough to run
    where the photo arrives, so a file that is no photo is refused before a worker is
    needed. (A PNG's EXIF may follow its pixels: Pillow decodes them to find it, so its
    orientation is checked where it is decoded.)"""
    with _refusals():
        image = _opened(data, limits)
        if image.format == "JPEG":
            _check_orientation(image)


def decode_image(data: bytes, limits: DecodeLimits) -> np.ndarray:
    """Return an H x W x 3 uint8 RGB array, oriented as the camera's EXIF says."""
    with _refusals():
        image = _opened(data, limits)
        _check_orientation(image)
        image.load()
        oriented: Image.Image = ImageOps.exif_transpose(image)
    return _to_rgb(oriented)


def _opened(data: bytes, limits: DecodeLimits) -> Image.Image:
    """The photo with its header and structure checked, its pixels not yet decoded."""
    if len(data) > limits.max_bytes:
        raise FaceRefusal(
            "image_too_large",
            f"The photo is larger than the limit of {limits.max_bytes} bytes.",
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise FaceRefusal("unsupported_image", "The photo is not a JPEG or PNG image.")
    image = Image.open(io.BytesIO(data), formats=[fmt])
    width, height = image.size
    if width * height > limits.max_pixels:
        raise FaceRefusal(
            "image_too_large",
            f"The photo is {width}x{height} pixels; the limit is {limits.max_pixels} pixels.",
        )
    _check_ends_with_image(data, fmt)
    return image


def _check_orientation(image: Image.Image) -> None:
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    if orientation not in _ORIENTATIONS:
        raise FaceRefusal(
            "unsupported_image",
            f"The photo's EXIF orientation ({orientation}) is not one of the eight "
            "that exist, so which way up it is cannot be known.",
        )


@contextmanager
def _refusals() -> Iterator[None]:
    """Pillow's many failures as the refusals they mean; its decompression-bomb warning,
    given below its hard limit, as the refusal it is."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FaceRefusal(
            "image_too_large", "The photo decompresses to more pixels than allowed."
        ) from None
    except FaceRefusal:
        raise
    except Exception:  # Pillow raises many types for damaged files; all mean the same here.
        raise FaceRefusal(
            "unsupported_image", "The photo is damaged or truncated and cannot be decoded."
        ) from None


def _check_ends_with_image(data: bytes, fmt: str) -> None:
    end = image_end(data, fmt)
    if end is None:
        raise FaceRefusal(
            "unsupported_image", "The photo is damaged or truncated: the image never ends."
        )
    if data[end:].strip(b"\0"):
        raise FaceRefusal(
            "unsupported_image",
            f"The file holds {len(data) - end} more bytes after the end of the image; "
            "send the photo alone.",
        )


def image_end(data: bytes, fmt: str) -> int | None:
    """The offset just past the image's last byte (JPEG's end-of-image marker, PNG's IEND
    chunk), found by walking its structure; None if the structure never reaches an end."""
    return _png_end(data) if fmt == "PNG" else _jpeg_end(data)


def _png_end(data: bytes) -> int | None:
    at = len(_SIGNATURES["PNG"])
    while at + 12 <= len(data):
        length, kind = int.from_bytes(data[at : at + 4]), data[at + 4 : at + 8]
        at += 12 + length  # length, type, body, CRC
        if kind == b"IEND":
            return at if at <= len(data) else None
    return None


def _jpeg_end(data: bytes) -> int | None:
    at = 2  # past the start-of-image marker
    while at < len(data) and data[at] == 0xFF:
        while at < len(data) and data[at] == 0xFF:  # fill bytes
            at += 1
        if at >= len(data):
            return None
        marker = data[at]
        at += 1
        if marker == 0xD9:  # end of image
            return at
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        at += int.from_bytes(data[at : at + 2])
        if marker == 0xDA:  # start of scan: skip the entropy-coded data to the next marker
            while True:
                at = data.find(b"\xff", at)
                if at < 0 or at + 1 >= len(data):
                    return None
                following = data[at + 1]
                if following != 0 and not 0xD0 <= following <= 0xD7:
                    break
                at += 2
    return None


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Convert any JPEG/PNG pixel mode (grey, palette, alpha, 16-bit, CMYK) to 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image, dtype=np.float64)
        grey = np.clip(wide / 257.0, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if image.mode == "P" or image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
