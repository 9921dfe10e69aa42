"""Operator certification: a search needs a current training record for the required course."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Protocol


class TrainingRecord(Protocol):
    course: str
    completed_on: date
    expires_on: date


def certification_current(records: Iterable[TrainingRecord], course: str, today: date) -> bool:
    return any(r.course == course and r.completed_on <= today <= r.expires_on for r in records)
