"""Searches as the tests send them: an operator at work on an approved request, and a
search's human review, a conclusion on every candidate."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from auth import Role
from tests.support.requests import approved_request
from tests.support.staff import Staff

BASIS = "face shape, eyes, nose, mouth and ears compared"


class Desk:
    """An operator at work on one approved request that allows plenty of searches."""

    def __init__(self, client: TestClient, staff: Staff) -> None:
        self.client = client
        staff.add("rita.records", Role.records_clerk)
        staff.add("olga.operator", Role.operator)
        staff.add_reviewers()
        self.request_id = approved_request(client, staff, "rita.records")
        self.headers = staff.headers("olga.operator")

    def search(self, data: bytes, **form: str) -> httpx.Response:
        return self.client.post(
            f"/v1/requests/{self.request_id}/searches",
            headers=self.headers,
            files={"probe": ("probe", data)},
            data=form,
        )


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
