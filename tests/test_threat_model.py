"""The threat model names a test for every control it claims: each must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"`(tests/test_\w+\.py)::(test_\w+)`")


def test_every_test_the_threat_model_names_exists() -> None:
    named = NAMED.findall((ROOT / "docs" / "threat-model.md").read_text())
    assert len(named) >= 30
    missing = []
    for module, name in named:
        tree = ast.parse((ROOT / module).read_text())
        tests = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        if name not in tests:
            missing.append(f"{module}::{name}")
    assert not missing, missing
