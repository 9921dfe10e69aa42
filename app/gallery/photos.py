"""The agency's photo store: licence photos stay where they are, known to the database by a
path relative to the store and the SHA-256 they had when enrolled."""

from __future__ import annotations

import hashlib
from pathlib import Path

from app.core.refusals import Code, Refusal
from app.gallery.models import Photo


def locate_photo(images: Path, ref: str) -> Path | str:
    """The photo's file under `images` (resolved), or the reject reason."""
    path = (images / ref).resolve()
    if not path.is_relative_to(images.resolve()):
        return "photo_outside_images"
    if not path.is_file():
        return "photo_not_found"
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_enrolled(store: Path | None, photo: Photo) -> bytes:
    """The enrolled photo's bytes from the store, only if they are the bytes enrolled: a
    missing or changed file is refused, never shown as if it were that person's face."""
    if store is None:
        raise Refusal(
            Code.no_photo_store,
            "The service has no photo store configured (FACEMATCH_PHOTO_STORE), so it cannot "
            "show enrolled photos.",
        )
    located = locate_photo(store, photo.source_ref)
    if isinstance(located, str):
        raise Refusal(Code.photo_missing, "The enrolled photo is not in the photo store.")
    data = located.read_bytes()
    if hashlib.sha256(data).hexdigest() != photo.sha256:
        raise Refusal(
            Code.photo_changed,
            "The photo store's file is not the photo enrolled (its SHA-256 differs); it is not "
            "shown.",
        )
    return data
