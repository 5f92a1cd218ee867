"""Stored replies of idempotent admin writes (``Idempotency-Key``)."""

__all__: list[str] = []
