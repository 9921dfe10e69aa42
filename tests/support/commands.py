"""The `facematch` command as an administrator runs it: in process through typer's runner
(`invoke`, `enrol`, `reenroll`), or as a process of its own (`facematch`, with the
environment `service_environment` makes for a test's settings)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from typer.testing import CliRunner, Result

from app.cli import cli
from app.core.settings import Settings
from tests.support.data import DATASETS, LFW
from tests.support.keys import TEST_ANCHOR_KEY, TEST_AUDIT_KEY, TEST_KEY, TEST_TEMPLATE_KEY

FACEMATCH = [str(Path(sys.executable).with_name("facematch"))]

runner = CliRunner()


def invoke(
    settings: Settings,
    *args: str,
    typed: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Result:
    """Run a command in process; `typed` is what the person types at its prompts, `env`
    FACEMATCH_* settings beyond the test's own (None: unset)."""
    environment: dict[str, str | None] = {
        "FACEMATCH_DATA_DIR": str(settings.data_dir),
        "FACEMATCH_DATABASE_URL": settings.sqlalchemy_url,
        "FACEMATCH_ENGINE": settings.engine,
        "FACEMATCH_TEMPLATE_KEY": TEST_TEMPLATE_KEY,
        "FACEMATCH_AUDIT_SIGNING_KEY": TEST_AUDIT_KEY,
    }
    return runner.invoke(cli, list(args), input=typed, env={**environment, **(env or {})})


def enrol(settings: Settings, manifest: Path, *options: str) -> Result:
    """Enrol a manifest of the datasets' photos with one worker (centred faces)."""
    return _encoding(settings, "enroll", str(manifest), *options)


def reenroll(settings: Settings, model: str, rejects: Path) -> Result:
    return _encoding(settings, "reenroll", "--model", model, "--rejects", str(rejects))


def _encoding(settings: Settings, *args: str) -> Result:
    options = ("--images", str(DATASETS), "--face", "central", "--workers", "1")
    return invoke(settings, *args, *options)


def service_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `facematch` command for these settings, and `extra` FACEMATCH_*
    variables (given without the prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEMATCH_")}
    env.update(
        FACEMATCH_DATA_DIR=str(settings.data_dir),
        FACEMATCH_DATABASE_URL=settings.sqlalchemy_url,
        FACEMATCH_JWT_KEY=TEST_KEY,
        FACEMATCH_TEMPLATE_KEY=TEST_TEMPLATE_KEY,
        FACEMATCH_AUDIT_SIGNING_KEY=TEST_AUDIT_KEY,
        FACEMATCH_AUDIT_ANCHOR_KEY=TEST_ANCHOR_KEY,
        FACEMATCH_ENGINE=settings.engine,
    )
    env.update({f"FACEMATCH_{name.upper()}": value for name, value in extra.items()})
    return env


def facematch(environment: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run a command as a process; what it printed. It must succeed."""
    done = subprocess.run(
        [*FACEMATCH, *args], env=environment, input=stdin, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def enrol_demo_args(manifest: Path, rejects: Path) -> list[str]:
    """`facematch enroll` of an LFW demo manifest, as the README runs it."""
    images = str(LFW / "images")
    return [
        "enroll",
        str(manifest),
        "--images",
        images,
        "--face",
        "central",
        "--rejects",
        str(rejects),
    ]
