"""Photos as an examiner is shown them: pixels only (no EXIF, comment or XMP a capture system
may have written a name into), and a face cut out and scaled the way a licence photo frames
one, so that the probe and a candidate's enrolled photo are seen at the same scale."""

from __future__ import annotations

import cv2
import numpy as np

from matcher.decode import DecodeLimits, decode_image
from matcher.refusals import Box

# The share of a licence-style photo's width the face box takes (LFW's 250-pixel crops hold
# faces the detectors box at about 105 pixels).
FACE_SHARE = 0.42


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    assert ok, "OpenCV encodes any 8-bit RGB image as JPEG"
    return encoded.tobytes()


def pixels_only(data: bytes, limits: DecodeLimits | None = None) -> bytes:
    """The photo as a JPEG of its pixels, turned as its EXIF orientation says, and nothing
    else of the file."""
    return _jpeg(decode_image(data, limits or DecodeLimits()))


def framed_face(
    data: bytes, box: Box, size: int = 320, limits: DecodeLimits | None = None
) -> bytes:
    """The face at `box` in the photo `data`, centred in a square `size` pixels wide with
    the face at FACE_SHARE of it (black where the photo ends), as a JPEG."""
    rgb = decode_image(data, limits or DecodeLimits())
    side = max(1, round(max(box.width, box.height) / FACE_SHARE))
    left = round((box.left + box.right) / 2 - side / 2)
    top = round((box.top + box.bottom) / 2 - side / 2)
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    height, width = rgb.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + side, width), min(top + side, height)
    if x1 > x0 and y1 > y0:
        canvas[y0 - top : y1 - top, x0 - left : x1 - left] = rgb[y0:y1, x0:x1]
    return _jpeg(cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA))
