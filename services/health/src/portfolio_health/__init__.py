"""The health service: one readiness report and one metrics exposition for the whole system.

It discovers every running instance through NATS micro discovery, asks each
for its own checks and metrics with a deadline of its own, and aggregates them
(``portfolio_health.readiness``, ``portfolio_health.collection``).
"""

__all__: list[str] = []
