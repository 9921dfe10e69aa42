"""The shapes of the HTTP layer itself: refusals, path ids, health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    BaseModel,
    ConfigDict,
)


class FaceBox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    left: int
    top: int
    right: int
    bottom: int


class Problem(BaseModel):
    """Every refusal: a stable machine-readable code and a sentence for a person."""

    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    faces: list[FaceBox] | None = None


# A row's id in a path, or an audit entry's number in a query: 64-bit database numbers, so
# one past that range is refused as invalid rather than reaching the database.
MAX_ROW_ID = 2**63 - 1


RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The refusals a router documents, each a Problem (every status it can answer)."""
    return {status: {"model": Problem} for status in statuses}


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    model_id: str
    templates: int
    index_revision: int
