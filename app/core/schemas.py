"""What every request body is: no unknown fields, and no text a database cannot store."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    model_validator,
)


class Input(BaseModel):
    """Every request body: no unknown fields, and no text a database cannot store."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: object) -> object:
        _refuse_unstorable(data)
        return data


def _refuse_unstorable(value: object) -> None:
    """NUL characters (PostgreSQL's text cannot hold them) and unpaired surrogates (no UTF-8
    form) are refused as invalid, anywhere in a body."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode") from None
    elif isinstance(value, dict):
        for item in (*value.keys(), *value.values()):
            _refuse_unstorable(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_unstorable(item)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


Username = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9._-]{2,63}$")]


Sha256 = Annotated[str, StringConstraints(to_lower=True, pattern=r"^[0-9a-fA-F]{64}$")]
