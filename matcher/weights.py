"""Model weight files, found inside the packages that ship them without importing those
packages, and each checked against a recorded SHA-256: every template and every search can
be traced to exact weights, and a file that is not the one measured is refused."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path


class ModelFileError(RuntimeError):
    """A weight file is missing or is not the file the project was measured with."""


def package_dir(package: str) -> Path:
    """The folder of an installed package; find_spec locates it without running its code."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"the {package} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def verified_file(path: Path, sha256: str) -> str:
    if not path.is_file():
        raise ModelFileError(f"weight file {path} is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ModelFileError(f"weight file {path} has SHA-256 {digest}, expected {sha256}")
    return str(path)
