"""A search's human review as the tests send it: a conclusion on every candidate."""

from __future__ import annotations

from typing import Any

import httpx

BASIS = "face shape, eyes, nose, mouth and ears compared"


def conclusions(found: dict[str, Any], identify: int | None = 1) -> dict[str, Any]:
    """An examination of every candidate of `found` (a search as the API showed it): the one
    at rank `identify` an identification, the others exclusions."""
    return {
        "conclusions": [
            {
                "candidate": candidate["ref"],
                "conclusion": "identification" if candidate["rank"] == identify else "exclusion",
                "basis": BASIS,
            }
            for candidate in found["candidates"]
        ]
    }


def examine(
    client: httpx.Client,
    headers: dict[str, str],
    found: dict[str, Any],
    identify: int | None = 1,
) -> httpx.Response:
    return client.post(
        f"/v1/searches/{found['search_id']}/examination",
        headers=headers,
        json=conclusions(found, identify),
    )
