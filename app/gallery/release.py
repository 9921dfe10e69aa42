"""The five identity fields that are all a match may release: the one whitelist, which
enrolment parses licence rows with too."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    field_validator,
)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


LicenseNumber = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9*-]+$",
    ),
]


class Release(BaseModel):
    """The only identity fields that ever leave the service: a whitelist, extra fields refused.

    Enrolment parses manifest rows into this model too, so the database never holds more.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, from_attributes=True)

    first_name: Name
    middle_name: Name | None = None
    last_name: Name
    date_of_birth: date
    license_number: LicenseNumber

    @field_validator("middle_name", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("date_of_birth")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if not date(1900, 1, 1) <= value <= date.today():
            raise ValueError("date of birth must be between 1900-01-01 and today")
        return value


RELEASED_FIELDS = tuple(Release.model_fields)
