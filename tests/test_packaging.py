"""The package as the image installs it: built from exactly what the Dockerfile copies, into
a clean virtual environment from the service's lock file. No Docker engine runs here, so the
same steps run outside one."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copied_by_the_dockerfile() -> list[str]:
    """The sources of the Dockerfile's COPY lines."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    return [
        source
        for line in lines
        if (found := re.match(r"COPY\s+(.+)\s+\S+$", line))
        for source in found.group(1).split()
        if not source.startswith("--")  # --chown=… and the like
    ]


def installed_packages() -> set[str]:
    """The packages pyproject.toml puts in the wheel."""
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {pattern.rstrip("*") for pattern in found["packages"]["find"]["include"]}


def test_the_dockerfile_copies_every_package_pyproject_installs() -> None:
    assert installed_packages() <= set(copied_by_the_dockerfile())
    assert "requirements/service.txt" in copied_by_the_dockerfile()


def test_the_wheel_installs_from_the_lock_and_its_commands_start(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for name in copied_by_the_dockerfile():
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    wheels = tmp_path / "wheels"

    def run(*command: str | Path) -> str:
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    # The wheel, built with the lock's setuptools (this environment has it from the lock).
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", wheels, source)  # fmt: skip
    (wheel,) = wheels.glob("facematch-*.whl")
    clean = tmp_path / "venv"
    venv.create(clean, with_pip=True)
    pip = clean / "bin" / "pip"
    run(pip, "install", "--quiet", "--require-hashes", "-r", source / "requirements/service.txt")
    run(pip, "install", "--quiet", "--no-deps", wheel)
    facematch = clean / "bin" / "facematch"
    assert "serve" in run(facematch, "--help")
    assert "--photos" in run(facematch, "calibrate", "--help")
    # Some commands import a package only when they run (calibration's SciPy is slow to
    # load), and the migrations are data beside the code: both must be in the wheel.
    run(clean / "bin" / "python", "-c", "import calibration.calibrate")
    # The console's templates, script and style sheet are data too: a page drawn from the
    # installed package finds them.
    page = (
        "from app.console.render import STATIC, templates;"
        "templates.get_template('review.html');"
        "print(sorted(p.name for p in STATIC.iterdir()))"
    )
    assert "console.js" in run(clean / "bin" / "python", "-c", page)
    database = f"sqlite:///{tmp_path / 'facematch.db'}"
    upgraded = subprocess.run(
        [facematch, "db", "upgrade"],
        env={"FACEMATCH_DATABASE_URL": database, "FACEMATCH_DATA_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade 0007 -> 0008" in upgraded.stderr, upgraded.stderr
