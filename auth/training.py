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


def training_problem(
    completed_on: date, expires_on: date, today: date, max_validity_days: int
) -> str | None:
    """Why a training record cannot be true, or None: a course not yet completed, or a
    certificate said to last longer than any course certifies for."""
    if completed_on > today:
        return "the course's completion date is in the future"
    if expires_on < completed_on:
        return "the certificate expires before the course was completed"
    if (expires_on - completed_on).days > max_validity_days:
        return f"a certificate is valid for at most {max_validity_days} days after the course"
    return None
