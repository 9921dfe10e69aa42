"""Safe decoding of untrusted photo bytes, on real photos and variants made from them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from matcher import Box, DecodeLimits, FaceRefusal
from matcher.decode import check_photo, decode_image
from matcher.framing import framed_face, pixels_only
from tests.support.data import sample
from tests.support.images import (
    decompression_bomb,
    encoded,
    png_header_only,
    with_orientation,
    with_zip_appended,
)

LIMITS = DecodeLimits()


def refusal(data: bytes, limits: DecodeLimits = LIMITS) -> str:
    with pytest.raises(FaceRefusal) as caught:
        decode_image(data, limits)
    return caught.value.code


def test_jpeg_and_png_decode_to_rgb() -> None:
    jpeg = decode_image(sample("obama.jpg"), LIMITS)
    assert jpeg.dtype == np.uint8 and jpeg.shape == (1137, 910, 3)
    rgba = decode_image(sample("32bit.png"), LIMITS)
    assert rgba.shape == (1200, 626, 3)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF", "BMP"])
def test_other_formats_are_refused_from_their_bytes(fmt: str) -> None:
    image = Image.open(io.BytesIO(sample("obama_small.jpg"))).convert("RGB")
    assert refusal(encoded(image, fmt)) == "unsupported_image"


def test_format_is_read_from_bytes_not_trusted_from_names() -> None:
    assert refusal(b"%PDF-1.7 not an image") == "unsupported_image"
    assert refusal(b"") == "unsupported_image"
    assert refusal(b"<svg xmlns='http://www.w3.org/2000/svg'/>") == "unsupported_image"


def test_truncated_jpeg_is_refused() -> None:
    data = sample("obama.jpg")
    assert refusal(data[: len(data) // 3]) == "unsupported_image"


def test_byte_limit() -> None:
    data = sample("obama.jpg")
    assert refusal(data, DecodeLimits(max_bytes=len(data) - 1)) == "image_too_large"


def test_pixel_limit_is_checked_before_decoding() -> None:
    assert refusal(png_header_only(30000, 30000)) == "image_too_large"
    assert refusal(sample("obama.jpg"), DecodeLimits(max_pixels=1000 * 1000)) == "image_too_large"


def test_exif_orientation_is_applied() -> None:
    upright = Image.open(io.BytesIO(sample("obama_small.jpg")))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    rgb = decode_image(encoded(stored, "JPEG", exif=exif.tobytes()), LIMITS)
    assert rgb.shape[:2] == (upright.height, upright.width)


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    grey = np.asarray(Image.open(io.BytesIO(sample("obama_small.jpg"))).convert("L"), np.uint16)
    wide = Image.fromarray(grey * 257)
    rgb = decode_image(encoded(wide, "PNG"), LIMITS)
    assert rgb.shape == (*grey.shape, 3)
    assert np.abs(rgb[:, :, 0].astype(int) - grey).max() <= 1


def test_cmyk_palette_and_alpha_become_rgb() -> None:
    photo = Image.open(io.BytesIO(sample("obama_small.jpg")))
    for image, fmt in [
        (photo.convert("CMYK"), "JPEG"),
        (photo.convert("P"), "PNG"),
        (photo.convert("LA"), "PNG"),
        (photo.convert("L"), "JPEG"),
    ]:
        rgb = decode_image(encoded(image, fmt), LIMITS)
        assert rgb.shape == (photo.height, photo.width, 3) and rgb.dtype == np.uint8


def test_transparent_pixels_become_white() -> None:
    image = Image.open(io.BytesIO(sample("32bit.png")))
    image.putpixel((0, 0), (10, 20, 30, 0))
    assert tuple(decode_image(encoded(image, "PNG"), LIMITS)[0, 0]) == (255, 255, 255)


def test_a_file_that_goes_on_after_the_image_is_refused() -> None:
    photo = sample("obama_small.jpg")
    assert refusal(with_zip_appended(photo)) == "unsupported_image"
    png = encoded(Image.open(io.BytesIO(photo)), "PNG")
    assert refusal(with_zip_appended(png)) == "unsupported_image"
    # Zero padding after the end, as some encoders write, is not a second file.
    assert decode_image(photo + b"\0" * 512, LIMITS).shape == (240, 320, 3)


@pytest.mark.parametrize("orientation", [9, 255, 65535])
def test_an_exif_orientation_that_does_not_exist_is_refused(orientation: int) -> None:
    assert refusal(with_orientation(sample("obama_small.jpg"), orientation)) == "unsupported_image"


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    assert refusal(decompression_bomb()) == "image_too_large"


def test_a_face_is_framed_centred_at_the_share_licence_photos_give_it() -> None:
    data = sample("obama.jpg")
    height, width = decode_image(data, DecodeLimits()).shape[:2]
    box = Box(width // 2 - 40, height // 2 - 40, width // 2 + 40, height // 2 + 40)
    framed = decode_image(framed_face(data, box, size=200), DecodeLimits())
    assert framed.shape == (200, 200, 3)
    # A face at the photo's corner: the frame is padded black where the photo ends.
    corner = decode_image(framed_face(data, Box(0, 0, 60, 60), size=200), DecodeLimits())
    assert corner[:40, :40].max() < 16 and corner[150:, 150:].mean() > 16


def test_a_photo_is_shown_as_its_pixels_and_nothing_else_of_its_file() -> None:
    """A capture system may write a name into a licence photo's EXIF or comment."""
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "Jane Q. Holder WDL0000001"  # ImageDescription
    Image.open(io.BytesIO(sample("obama.jpg"))).save(
        buffer, "JPEG", exif=exif, comment=b"Jane Q. Holder"
    )
    tagged = buffer.getvalue()
    assert b"Jane Q. Holder" in tagged
    shown = pixels_only(tagged)
    assert b"Jane" not in shown and Image.open(io.BytesIO(shown)).size == (910, 1137)


def test_where_a_photo_arrives_its_pixels_are_not_decoded() -> None:
    """check_photo reads a PNG's structure, not its pixels (which Pillow would decode to look
    for EXIF): a file whole in its structure with its pixels missing passes it, and is
    refused as damaged where it is decoded, in a worker."""
    photo = png_header_only(3000, 3000, ended=True)
    check_photo(photo, DecodeLimits())
    with pytest.raises(FaceRefusal) as refused:
        decode_image(photo, DecodeLimits())
    assert refused.value.code == "unsupported_image"
