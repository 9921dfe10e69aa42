"""The face pipeline on real photos: one usable face, or a refusal with a stable code."""

from __future__ import annotations

import io

import dlib
import numpy as np
import pytest
from PIL import Image, ImageFilter

from matcher import Box, FaceRefusal, Matcher, ModelFileError, dlib_engine
from matcher.decode import decode_image
from tests.conftest import lfw_photo, sample


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def refusal(matcher: Matcher, data: bytes, **options: object) -> FaceRefusal:
    with pytest.raises(FaceRefusal) as caught:
        matcher.encode(data, **options)  # type: ignore[arg-type]
    return caught.value


def test_one_face_gives_a_128_d_template_with_its_quality(matcher: Matcher) -> None:
    template = matcher.encode(sample("obama.jpg"))
    assert template.model_id == "dlib-resnet-v1-mirror"
    assert template.descriptor.shape == (128,) and template.descriptor.dtype == np.float32
    q = template.quality
    assert q.inter_eye_px > 80 and q.in_frame == 1.0 and q.yaw_deg < 15 and q.sharpness > 100


def test_descriptor_averages_the_reference_descriptors_of_the_chip_and_its_mirror(
    matcher: Matcher,
) -> None:
    """Same weights, same 5-point alignment, same chip as face_recognition; then the mirror."""
    rgb = decode_image(sample("biden.jpg"), matcher.limits)
    face = matcher.engine.detect(rgb)[0]
    box = face.box
    shape = dlib.shape_predictor(
        dlib_engine.verified_weight("shape_predictor_5_face_landmarks.dat")
    )(rgb, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
    network = dlib.face_recognition_model_v1(
        dlib_engine.verified_weight("dlib_face_recognition_resnet_model_v1.dat")
    )
    _, chip = matcher.engine.align(rgb, face)
    reference = np.asarray(network.compute_face_descriptor(rgb, shape, 1))
    assert np.allclose(np.asarray(network.compute_face_descriptor(chip)), reference, atol=1e-6)
    mirrored = np.asarray(network.compute_face_descriptor(np.ascontiguousarray(chip[:, ::-1])))
    ours = matcher.encode(sample("biden.jpg")).descriptor
    assert np.allclose(ours, (reference + mirrored) / 2, atol=1e-5)


def test_same_person_is_near_and_different_people_are_far(matcher: Matcher) -> None:
    obama = matcher.encode(sample("obama.jpg")).descriptor
    obama2 = matcher.encode(sample("obama2.jpg")).descriptor
    biden = matcher.encode(sample("biden.jpg")).descriptor
    assert np.linalg.norm(obama - obama2) < 0.6 < np.linalg.norm(obama - biden)


def test_large_photo_is_detected_on_a_copy_and_boxed_at_full_size(matcher: Matcher) -> None:
    template = matcher.encode(sample("obama-1080p.jpg"))
    assert template.box.left > 640 or template.box.right > 640  # beyond the working copy
    assert template.box.width > 200


def test_several_faces_are_refused_with_their_boxes(matcher: Matcher) -> None:
    refused = refusal(matcher, sample("two_people.jpg"))
    assert refused.code == "multiple_faces" and len(refused.faces) == 2
    chosen = [matcher.encode(sample("two_people.jpg"), box=box) for box in refused.faces]
    assert chosen[0].box == refused.faces[0] and chosen[1].box == refused.faces[1]
    assert np.linalg.norm(chosen[0].descriptor - chosen[1].descriptor) > 0.6


def test_a_box_with_no_face_in_it_is_refused(matcher: Matcher) -> None:
    assert refusal(matcher, sample("two_people.jpg"), box=Box(0, 500, 100, 600)).code == "no_face"


def test_central_choice_takes_the_face_nearest_the_centre(matcher: Matcher) -> None:
    image = Image.open(io.BytesIO(sample("two_people.jpg")))
    boxes = refusal(matcher, sample("two_people.jpg")).faces
    cx = image.width / 2
    nearest = min(boxes, key=lambda b: abs((b.left + b.right) / 2 - cx))
    assert matcher.encode(sample("two_people.jpg"), choice="central").box == nearest


def test_no_face(matcher: Matcher) -> None:
    background = Image.open(io.BytesIO(sample("obama-1080p.jpg"))).crop((0, 600, 500, 1080))
    assert refusal(matcher, jpeg(background)).code == "no_face"


def test_face_cut_off_by_the_edge(matcher: Matcher) -> None:
    assert refusal(matcher, sample("obama_partial_face.jpg")).code == "face_cut_off"


def test_face_too_small(matcher: Matcher) -> None:
    tiny = Image.open(lfw_photo("Aaron_Peirsol", 1)).resize((100, 100))
    assert refusal(matcher, jpeg(tiny), choice="central").code == "face_too_small"


def test_face_blurred(matcher: Matcher) -> None:
    blurred = Image.open(io.BytesIO(sample("obama.jpg"))).filter(ImageFilter.GaussianBlur(8))
    assert refusal(matcher, jpeg(blurred)).code == "face_blurred"


def test_face_turned(matcher: Matcher) -> None:
    """John Sununu, in the middle of the frame, has his head turned about 45 degrees."""
    photo = lfw_photo("John_Sununu", 1).read_bytes()
    assert refusal(matcher, photo, choice="central").code == "face_turned"


def test_small_low_resolution_photo_is_still_usable(matcher: Matcher) -> None:
    assert matcher.encode(sample("obama_small.jpg")).quality.inter_eye_px >= 20


def test_weights_that_do_not_match_their_recorded_hash_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "shape_predictor_5_face_landmarks.dat"
    monkeypatch.setitem(dlib_engine.WEIGHTS, name, "0" * 64)
    with pytest.raises(ModelFileError, match="SHA-256"):
        dlib_engine.DlibEngine()
