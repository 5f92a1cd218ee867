"""Every NATS subject, stream and micro service name the system uses.

All names start with the namespace (``NATS_NAMESPACE``, default ``portfolio``)
so that independent stacks can share one NATS server.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SERVICE_KINDS", "Subjects"]

SERVICE_KINDS = ("gateway", "content", "chat", "health")
"""The kinds of service that register with NATS micro discovery."""


@dataclass(frozen=True)
class Subjects:
    """Subject names for one namespace."""

    namespace: str = "portfolio"

    def _name(self, *parts: str) -> str:
        return ".".join((self.namespace, *parts))

    # Micro service names and per-instance operations

    def service_name(self, kind: str) -> str:
        """Name under which a service kind registers for ``$SRV.PING``/``INFO``/``STATS``."""
        return f"{self.namespace}-{kind}"

    def instance_checks(self, instance_id: str) -> str:
        """Subject one instance answers with its own readiness checks."""
        return self._name("ops", "v1", "checks", instance_id)

    def instance_metrics(self, instance_id: str) -> str:
        """Subject one instance answers with its Prometheus text exposition."""
        return self._name("ops", "v1", "metrics", instance_id)

    # Content service

    @property
    def content_public_list(self) -> str:
        return self._name("content", "v1", "public", "list")

    @property
    def content_public_item(self) -> str:
        return self._name("content", "v1", "public", "item")

    @property
    def content_public_bundle(self) -> str:
        return self._name("content", "v1", "public", "bundle")

    @property
    def content_admin_list(self) -> str:
        return self._name("content", "v1", "admin", "list")

    @property
    def content_admin_get(self) -> str:
        return self._name("content", "v1", "admin", "get")

    @property
    def content_admin_create(self) -> str:
        return self._name("content", "v1", "admin", "create")

    @property
    def content_admin_update(self) -> str:
        return self._name("content", "v1", "admin", "update")

    @property
    def content_admin_delete(self) -> str:
        return self._name("content", "v1", "admin", "delete")

    @property
    def content_admin_history(self) -> str:
        return self._name("content", "v1", "admin", "history")

    @property
    def content_admin_restore(self) -> str:
        return self._name("content", "v1", "admin", "restore")

    @property
    def content_search(self) -> str:
        """Full-text search over published content, used by the chat tools."""
        return self._name("content", "v1", "search")

    @property
    def content_types(self) -> str:
        """Published content types with their item counts, used by the chat tools."""
        return self._name("content", "v1", "types")

    # Chat service

    @property
    def chat_send(self) -> str:
        """One chat turn answered as a single JSON reply."""
        return self._name("chat", "v1", "send")

    @property
    def chat_stream(self) -> str:
        """One chat turn streamed: tokens are published to the subject named in the
        request's ``streamTo`` field, ending with a done or an error message."""
        return self._name("chat", "v1", "stream")

    @property
    def chat_stream_cancel(self) -> str:
        """Broadcast by the gateway when a streaming client disconnects."""
        return self._name("chat", "v1", "stream", "cancel")

    @property
    def chat_admin_sessions_list(self) -> str:
        return self._name("chat", "v1", "admin", "sessions", "list")

    @property
    def chat_admin_sessions_get(self) -> str:
        return self._name("chat", "v1", "admin", "sessions", "get")

    @property
    def chat_admin_sessions_end(self) -> str:
        return self._name("chat", "v1", "admin", "sessions", "end")

    # Health service

    @property
    def health_ready(self) -> str:
        """Aggregated readiness of every instance of every service."""
        return self._name("health", "v1", "ready")

    @property
    def health_metrics(self) -> str:
        """Merged Prometheus exposition of every instance except the asking gateway."""
        return self._name("health", "v1", "metrics")

    # Events (JetStream)

    @property
    def events_stream(self) -> str:
        """JetStream stream that keeps every event for replay."""
        return f"{self.namespace.upper().replace('-', '_')}_EVENTS"

    @property
    def events_all(self) -> str:
        return self._name("events", ">")

    @property
    def content_changed(self) -> str:
        return self._name("events", "content", "changed")

    @property
    def cache_flushed(self) -> str:
        """Broadcast asking every gateway replica to drop its whole content cache."""
        return self._name("events", "cache", "flush")
