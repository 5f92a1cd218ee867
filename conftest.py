"""Fixtures every test folder shares: real NATS and Redis servers, unique namespaces."""

pytest_plugins = ["portfolio_shared.testing.plugin"]
