"""Why a photo cannot be searched or enrolled: a stable code and a sentence for a person."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Box:
    """A face box in pixels of the full-resolution, EXIF-oriented image."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def iou(self, other: Box) -> float:
        """Intersection over union: how well two boxes describe the same face."""
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / (self.width * self.height + other.width * other.height - inter)


# code -> whether the photo was too large (413) rather than unusable (422)
REFUSAL_CODES = {
    "unsupported_image": False,
    "image_too_large": True,
    "no_face": False,
    "multiple_faces": False,
    "face_too_small": False,
    "face_cut_off": False,
    "face_blurred": False,
    "face_turned": False,
}


@dataclass
class FaceRefusal(Exception):
    """A photo the matcher will not turn into a template, with the reason."""

    code: str
    message: str
    faces: list[Box] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {self.code!r}")
        super().__init__(self.message)

    def __reduce__(self) -> tuple[type[FaceRefusal], tuple[str, str, list[Box]]]:
        # Refusals cross from the encoder processes to the service whole, not as bare text.
        return FaceRefusal, (self.code, self.message, self.faces)

    @property
    def too_large(self) -> bool:
        return REFUSAL_CODES[self.code]
