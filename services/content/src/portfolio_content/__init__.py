"""The content service: portfolio content over NATS, with history, idempotency and outbox events."""

__all__: list[str] = []
