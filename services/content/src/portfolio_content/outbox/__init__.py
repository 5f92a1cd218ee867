"""Transactional outbox: events written with each change, relayed to JetStream until acknowledged."""

__all__: list[str] = []
