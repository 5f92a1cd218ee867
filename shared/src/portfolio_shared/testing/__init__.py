"""Test support shared by every service's tests and the integration tests.

``servers`` finds or starts real NATS and Redis servers; ``plugin`` exposes them
as pytest fixtures (loaded through the root ``conftest.py``).
"""
