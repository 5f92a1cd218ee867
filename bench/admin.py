"""A small synchronous HTTP client of the gateway for setting up and timing benchmarks.

Admin calls carry the run's ``X-Admin-Key``; every call has a timeout, and a
non-2xx response raises ``RuntimeError`` with the status and body.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["GatewayClient"]

TIMEOUT_S = 10.0
"""Timeout of one setup call, in seconds."""


class GatewayClient:
    """Keep-alive client of one gateway replica."""

    def __init__(self, base_url: str, admin_key: str) -> None:
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url, timeout=TIMEOUT_S, headers={"X-Admin-Key": admin_key}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._http.get(path, headers=headers)

    def get_data(self, path: str) -> Any:
        return self._checked(self._http.get(path))["data"]

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self._checked(
            self._http.post("/api/v1/admin/content", json=body)
        )["data"]
        return created

    def update(self, content_id: str, body: dict[str, Any]) -> dict[str, Any]:
        updated: dict[str, Any] = self._checked(
            self._http.put(f"/api/v1/admin/content/{content_id}", json=body)
        )["data"]
        return updated

    def delete(self, content_id: str, *, hard: bool = False) -> None:
        """Delete an item: soft (it leaves every public read) or, with ``hard``, for good."""
        params = {"hard": "true"} if hard else None
        self._checked(self._http.delete(f"/api/v1/admin/content/{content_id}", params=params))

    def published_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get_data("/api/v1/content")
        return items

    @staticmethod
    def _checked(response: httpx.Response) -> dict[str, Any]:
        if not 200 <= response.status_code < 300:
            raise RuntimeError(
                f"{response.request.method} {response.request.url.path} returned "
                f"{response.status_code}: {response.text[:300]}"
            )
        body: dict[str, Any] = response.json()
        return body
