"""How usable a detected face is, measured, and the policy that refuses the unusable.

A search on a face that is too small, blurred or turned away still returns the nearest
gallery templates, and those are the false matches that name innocent people: such probes are
refused with a reason instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from matcher.refusals import Box, FaceRefusal

# Depth of the nose base in front of the eyes, as a fraction of the distance between the eye
# centres (adult anthropometry, roughly 0.5-0.7). It turns the nose's sideways offset into an
# angle; the estimate is coarse and meant only to catch faces turned well away.
_NOSE_DEPTH_RATIO = 0.6


@dataclass(frozen=True, eq=False)
class Landmarks:
    """Eye centres and nose, in image pixels: what the quality measures need of an engine."""

    eyes: tuple[np.ndarray, np.ndarray]
    nose: np.ndarray


@dataclass(frozen=True)
class Quality:
    face_width_px: int
    face_height_px: int
    inter_eye_px: float
    in_frame: float
    sharpness: float
    yaw_deg: float


@dataclass(frozen=True)
class QualityPolicy:
    min_inter_eye_px: float = 20.0
    min_in_frame: float = 0.9
    min_sharpness: float = 5.0
    max_yaw_deg: float = 45.0


def assess(
    box: Box, image_size: tuple[int, int], landmarks: Landmarks, chip: np.ndarray
) -> Quality:
    """Measure one face from its box, the image's (height, width), its eye centres and nose,
    and its aligned chip.

    Sharpness is the variance of the Laplacian of the aligned chip's grey levels, so it is
    measured at the scale the descriptor sees.
    """
    eye_a, eye_b = landmarks.eyes
    nose = landmarks.nose
    extent = _extent(eye_a, eye_b, nose)
    axis = eye_b - eye_a
    inter_eye = float(np.hypot(*axis))
    if inter_eye > 0:
        offset = float(np.dot(nose - (eye_a + eye_b) / 2, axis / inter_eye)) / inter_eye
        yaw = math.degrees(math.atan(abs(offset) / _NOSE_DEPTH_RATIO))
    else:
        yaw = 90.0
    return Quality(
        face_width_px=box.width,
        face_height_px=box.height,
        inter_eye_px=round(inter_eye, 1),
        in_frame=round(min(_in_frame(box, image_size), _in_frame(extent, image_size)), 3),
        sharpness=round(_laplacian_variance(chip), 1),
        yaw_deg=round(yaw, 1),
    )


def check(quality: Quality, policy: QualityPolicy) -> None:
    """Raise the refusal for the first quality rule the face breaks."""
    if quality.inter_eye_px < policy.min_inter_eye_px:
        raise FaceRefusal(
            "face_too_small",
            f"The face is too small to search with: {quality.inter_eye_px:.0f} px between the "
            f"eyes, at least {policy.min_inter_eye_px:.0f} px needed.",
        )
    if quality.in_frame < policy.min_in_frame:
        raise FaceRefusal(
            "face_cut_off",
            f"The face is cut off by the edge of the photo: {quality.in_frame:.0%} of it is "
            f"inside, at least {policy.min_in_frame:.0%} needed.",
        )
    if quality.sharpness < policy.min_sharpness:
        raise FaceRefusal(
            "face_blurred",
            "The face is too blurred to search with: sharpness "
            f"{quality.sharpness:.0f}, at least {policy.min_sharpness:.0f} needed.",
        )
    if quality.yaw_deg > policy.max_yaw_deg:
        raise FaceRefusal(
            "face_turned",
            f"The face is turned too far from the camera to search with: about "
            f"{quality.yaw_deg:.0f} degrees, at most {policy.max_yaw_deg:.0f} allowed.",
        )


def _extent(eye_a: np.ndarray, eye_b: np.ndarray, nose: np.ndarray) -> Box:
    """A conservative face box from the landmarks alone: a square 2.2 eye distances wide,
    centred between the eyes' midpoint and the nose. A detector may clip its own box at the
    photo's edge (YuNet does); this one reaches past it as the face does."""
    centre = ((eye_a + eye_b) / 2 + nose) / 2
    half = 1.1 * float(np.hypot(*(eye_b - eye_a)))
    return Box(
        round(centre[0] - half),
        round(centre[1] - half),
        round(centre[0] + half),
        round(centre[1] + half),
    )


def _in_frame(box: Box, image_size: tuple[int, int]) -> float:
    height, width = image_size
    inside = Box(max(box.left, 0), max(box.top, 0), min(box.right, width), min(box.bottom, height))
    if inside.width <= 0 or inside.height <= 0:
        return 0.0
    return inside.width * inside.height / (box.width * box.height)


def _laplacian_variance(chip: np.ndarray) -> float:
    grey = chip.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    lap = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())
