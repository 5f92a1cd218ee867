"""Gateway settings: defaults, list parsing, strict booleans, and errors that name the variable."""

from __future__ import annotations

import pytest
from portfolio_gateway.settings import GatewaySettings
from portfolio_shared.settings import load_settings

LONG_KEY = "x" * 32


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ADMIN_API_KEY", "ADMIN_API_KEYS", "CORS_ORIGINS", "TRUSTED_PROXIES", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_runbook() -> None:
    settings = GatewaySettings()

    assert (settings.gateway_host, settings.gateway_port) == ("127.0.0.1", 8000)
    assert (settings.rate_limit_capacity, settings.rate_limit_refill_rate) == (5, 0.333)
    assert settings.max_body_bytes == 102_400
    assert (settings.request_timeout_ms, settings.chat_request_timeout_ms) == (30_000, 60_000)


def test_comma_lists_are_split_and_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", " https://a.example , https://b.example,")

    assert GatewaySettings().cors_origins == ("https://a.example", "https://b.example")


def test_every_admin_key_is_accepted_primary_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", "a" * 32)
    monkeypatch.setenv("ADMIN_API_KEYS", f"{'b' * 40},{'a' * 32}")

    assert GatewaySettings().accepted_admin_keys == ("a" * 32, "b" * 40)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADMIN_API_KEY", "short"),
        ("ADMIN_API_KEYS", f"{LONG_KEY},short"),
        ("FEATURE_AI_CHAT", "yes"),
        ("RATE_LIMITING", "off"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,not-a-network"),
        ("GATEWAY_PORT", "eighty"),
    ],
)
def test_invalid_value_stops_startup_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SystemExit):
        load_settings(GatewaySettings)

    assert variable in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("FALSE", False), ("1", True), ("0", False)]
)
def test_feature_flags_accept_true_false_one_zero(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("FEATURE_ADMIN_API", value)

    assert GatewaySettings().feature_admin_api is expected


def test_rate_limiting_can_be_turned_off_by_either_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_RATE_LIMITING", "false")

    assert GatewaySettings().rate_limiting_enabled is False
