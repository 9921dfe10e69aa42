"""The audit log as auditors read it, and its verification."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    field_validator,
)


class AuditVerification(BaseModel):
    intact: bool
    entries: int
    first_bad_seq: int | None
    problem: str | None
    # The newest anchor (outside the database) the log matched: entries up to it are as
    # they were when anchored.
    anchored_seq: int | None


class AuditEntryView(BaseModel):
    seq: int
    at: datetime
    component: str
    event_type: str
    actor: str
    outcome: str
    object_id: str | None
    details: dict[str, Any]
    # The HTTP request that wrote it, as its X-Request-ID header and its log lines say.
    request_id: str | None
    hash: str

    @field_validator("details", mode="before")
    @classmethod
    def _stored_as_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value
