"""The whole system on one machine: ``python -m portfolio_shared.devstack``.

``processes`` spawns and stops process groups that die with their parent;
``runner`` starts NATS (when ``NATS_URL`` is unset) and the four services, and
stops everything it started on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

__all__: list[str] = []
