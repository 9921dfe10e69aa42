"""The engines by name: what configuration chooses from."""

from __future__ import annotations

from matcher.dlib_engine import DlibEngine
from matcher.engine import Engine, EngineName, EngineSpec
from matcher.sface_engine import SFaceEngine

ENGINES: dict[EngineName, type[DlibEngine] | type[SFaceEngine]] = {
    "dlib": DlibEngine,
    "sface": SFaceEngine,
}


def engine_spec(name: EngineName) -> EngineSpec:
    return ENGINES[name].spec


def load_engine(name: EngineName, detect_max_side: int = 640) -> Engine:
    """Load an engine's models (seconds): once per process."""
    return ENGINES[name](detect_max_side)
