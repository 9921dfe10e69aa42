"""Turn untrusted photo bytes into an RGB pixel array, or refuse.

The format is read from the bytes themselves (never a file name or a content type), the
pixel count is checked from the header before any pixel is decoded, and Pillow's
decompression-bomb guard stays on.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from matcher.refusals import FaceRefusal

_SIGNATURES = {
    "JPEG": b"\xff\xd8\xff",
    "PNG": b"\x89PNG\r\n\x1a\n",
}


@dataclass(frozen=True)
class DecodeLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000


def sniff_format(data: bytes) -> str | None:
    for name, signature in _SIGNATURES.items():
        if data.startswith(signature):
            return name
    return None


def decode_image(data: bytes, limits: DecodeLimits) -> np.ndarray:
    """Return an H x W x 3 uint8 RGB array, oriented as the camera's EXIF says."""
    if len(data) > limits.max_bytes:
        raise FaceRefusal(
            "image_too_large",
            f"The photo is larger than the limit of {limits.max_bytes} bytes.",
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise FaceRefusal("unsupported_image", "The photo is not a JPEG or PNG image.")
    try:
        with warnings.catch_warnings():
            # Pillow warns below its hard bomb limit; treat the warning as the refusal it is.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            if width * height > limits.max_pixels:
                raise FaceRefusal(
                    "image_too_large",
                    f"The photo is {width}x{height} pixels; the limit is "
                    f"{limits.max_pixels} pixels.",
                )
            image.load()
            image = ImageOps.exif_transpose(image)
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
    return _to_rgb(image)


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
