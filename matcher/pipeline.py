"""From photo bytes to one face template: decode, detect, choose the face, check it, describe it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from matcher.decode import DecodeLimits, decode_image
from matcher.engine import Detection, Engine
from matcher.quality import Quality, QualityPolicy, assess, check
from matcher.refusals import Box, FaceRefusal

# "only": exactly one face, or a refusal (probes: the operator chooses among several).
# "central": the face nearest the centre (centred crops such as LFW's, whose backgrounds
# often hold other people).
FaceChoice = Literal["only", "central"]

_MIN_BOX_OVERLAP = 0.5


@dataclass(frozen=True)
class FaceTemplate:
    model_id: str
    descriptor: np.ndarray
    box: Box
    quality: Quality


class Matcher:
    """One engine with its decoding limits and quality policy."""

    def __init__(
        self,
        engine: Engine,
        limits: DecodeLimits = DecodeLimits(),
        policy: QualityPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.limits = limits
        # Quality measures depend on the engine's landmarks and crop: its own limits by default.
        self.policy = policy or engine.spec.quality

    @property
    def model_id(self) -> str:
        return self.engine.spec.model_id

    def encode(
        self, data: bytes, box: Box | None = None, choice: FaceChoice = "only"
    ) -> FaceTemplate:
        """The template of the one usable face in the photo, or a FaceRefusal saying why not.

        `box`, when given, names the face to use among several (as returned with a
        `multiple_faces` refusal); it must overlap a detected face.
        """
        rgb = decode_image(data, self.limits)
        face = self.choose(rgb, self.engine.detect(rgb), box, choice)
        landmarks, chip = self.engine.align(rgb, face)
        quality = assess(face.box, rgb.shape[:2], landmarks, chip)
        check(quality, self.policy)
        return FaceTemplate(self.model_id, self.engine.describe(chip), face.box, quality)

    @staticmethod
    def choose(
        rgb: np.ndarray, faces: list[Detection], box: Box | None, choice: FaceChoice
    ) -> Detection:
        boxes = [face.box for face in faces]
        if not faces:
            raise FaceRefusal("no_face", "No face was found in the photo.")
        if box is not None:
            best = max(faces, key=lambda face: box.iou(face.box))
            if box.iou(best.box) < _MIN_BOX_OVERLAP:
                raise FaceRefusal("no_face", "No face was found inside the box given.", boxes)
            return best
        if len(faces) == 1:
            return faces[0]
        if choice == "central":
            cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
            return min(
                faces,
                key=lambda f: (
                    ((f.box.left + f.box.right) / 2 - cx) ** 2
                    + ((f.box.top + f.box.bottom) / 2 - cy) ** 2
                ),
            )
        raise FaceRefusal(
            "multiple_faces",
            f"The photo shows {len(faces)} faces; send the box of the face to search with.",
            boxes,
        )
