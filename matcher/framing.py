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


def faces_marked(
    data: bytes, boxes: list[Box], width: int = 800, limits: DecodeLimits | None = None
) -> bytes:
    """The whole photo, at most `width` pixels wide, each face boxed and numbered from 1 in
    the order given: for picking the one to search with."""
    rgb = decode_image(data, limits or DecodeLimits()).copy()
    scale = min(1.0, width / rgb.shape[1])
    if scale < 1:
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    thickness = max(2, round(rgb.shape[1] / 300))
    for number, box in enumerate(boxes, start=1):
        corner = (round(box.left * scale), round(box.top * scale))
        far = (round(box.right * scale), round(box.bottom * scale))
        cv2.rectangle(rgb, corner, far, (255, 210, 0), thickness)
        label = (corner[0], max(corner[1] - 2 * thickness, 12 * thickness))
        cv2.putText(
            rgb,
            str(number),
            label,
            cv2.FONT_HERSHEY_SIMPLEX,
            thickness / 2,
            (255, 210, 0),
            thickness,
        )
    return _jpeg(rgb)


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
