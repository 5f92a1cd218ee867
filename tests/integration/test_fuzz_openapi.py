"""Fuzz the gateway from its own OpenAPI document with schemathesis.

One stack serves every operation of the document. For each operation a
bounded number of generated requests (valid ones, then invalid ones) is sent
over loopback, admin operations with the right key so the fuzzing reaches
past authentication. A response passes when it is not a 5xx (every dependency
of this stack is up, so even a documented 503 is a defect) and its status,
content type, headers and body match what the document declares for that
operation. Security parameters are not generated: admin requests always
carry the right key, and the security tests cover missing and wrong keys.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from stack import Stack, StackOptions

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from portfolio_shared.testing.servers import ManagedServer
    from schemathesis import APIOperation, Case

    Operation = APIOperation[Any, Any, Any, Any]

OPENAPI_PATH = "/api/openapi.json"

EXAMPLES_PER_OPERATION = 25
"""Generated requests per operation and generation mode."""

NO_RATE_LIMIT = "1000000"
"""A bucket capacity no fuzz run can empty, so every request reaches its handler."""

CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_stack(
    nats_server: ManagedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Start one stack for the whole module; its LLM address refuses connections, so chat returns 502."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    options = StackOptions(
        nats_url=nats_server.url,
        data_dir=data_dir,
        env={
            "RATE_LIMIT_CAPACITY": NO_RATE_LIMIT,
            "CONTENT_RATE_LIMIT_CAPACITY": NO_RATE_LIMIT,
            "ADMIN_AUTH_RATE_LIMIT_CAPACITY": NO_RATE_LIMIT,
            "LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "LLM_MAX_RETRIES": "0",
            "LLM_REQUEST_TIMEOUT_MS": "500",
        },
    )
    with Stack(options) as stack:
        stack.start_all()
        yield stack


@pytest.fixture(scope="module")
def operations(fuzz_stack: Stack) -> list[Operation]:
    document = httpx.get(fuzz_stack.gateway_url + OPENAPI_PATH, timeout=10).json()
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_dict(document, config=config)
    return [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]


def _failures_of(
    operation: Operation,
    mode: GenerationMode,
    base_url: str,
    admin_key: str,
    statuses: Counter[str],
) -> list[str]:
    """Send generated requests for ``operation``, counting statuses by operation in ``statuses``;
    return one line per failed check."""
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case[Any]) -> None:
        admin = operation.path.startswith("/api/v1/admin")
        headers = {"X-Admin-Key": admin_key} if admin else None
        response = case.call(base_url=base_url, headers=headers, timeout=15)
        statuses[f"{operation.label} {response.status_code}"] += 1
        if response.status_code >= 500:
            failures.append(
                f"{operation.label} [{mode.value}] -> {response.status_code}: "
                f"{response.text[:300]} ({case.as_curl_command()})"
            )
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as error:  # schemathesis raises a group of check failures
            failures.append(f"{operation.label} [{mode.value}]: {str(error)[:600]}")

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters or body has no invalid request to generate.
        if mode is not GenerationMode.NEGATIVE:
            raise
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_documented_responses(
    fuzz_stack: Stack, operations: list[Operation], mode: GenerationMode
) -> None:
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    for operation in operations:
        failures.extend(
            _failures_of(operation, mode, fuzz_stack.gateway_url, fuzz_stack.admin_key, statuses)
        )
    reached = {key.rsplit(" ", 1)[0] for key in statuses}

    assert failures == []
    assert mode is GenerationMode.NEGATIVE or reached == {op.label for op in operations}


def test_admin_operations_declare_key_scheme(
    operations: list[Operation],
) -> None:
    unsecured = [
        operation.label
        for operation in operations
        if operation.path.startswith("/api/v1/admin")
        and not _declares_admin_key(operation.definition.raw)
    ]

    assert unsecured == []


def _declares_admin_key(definition: dict[str, Any]) -> bool:
    return any("adminKey" in requirement for requirement in definition.get("security", []))
