"""Two content service processes sharing one SQLite file: concurrent writers of one
version, concurrent duplicate idempotent requests, readiness, clean SIGTERM exit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from portfolio_shared.contract import CheckReport, HttpReply, Subjects
from portfolio_shared.errors import ConflictError, PreconditionFailedError
from portfolio_shared.nats_client import connect_nats

from .conftest import ContentClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from portfolio_shared.nats_client import NatsClient
    from portfolio_shared.testing.servers import ManagedServer

pytestmark = pytest.mark.timeout(90)

REPLICAS = 2


def _start(nats_url: str, namespace: str, data_dir: Path, index: int) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": namespace,
        "DATA_DIR": str(data_dir),
        "SEED_SAMPLE_CONTENT": "false",
        "LOG_FORMAT": "json",
        "INSTANCE_ID": f"content-{index}",
    }
    log = open(data_dir / f"content-{index}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "portfolio_content"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def _instances(client: NatsClient, subjects: Subjects) -> list[dict[str, Any]]:
    """Collect the instances that reply to micro discovery within a short window."""
    inbox = client.new_inbox()
    replies: list[dict[str, Any]] = []
    subscription = await client.subscribe(inbox)
    await client.publish(f"$SRV.PING.{subjects.service_name('content')}", b"", reply=inbox)
    deadline = asyncio.get_running_loop().time() + 0.5
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = await subscription.next_msg(timeout=left)
        except Exception:
            break
        if message.data:  # an empty message is the server's "no responders" notice
            replies.append(msgspec.json.decode(message.data))
    await subscription.unsubscribe()
    return replies


@pytest.fixture(scope="module")
def replica_namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def processes(
    tmp_path_factory: pytest.TempPathFactory, nats_server: ManagedServer, replica_namespace: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Replicas shared by this module's tests (each test works on its own items)."""
    data_dir = tmp_path_factory.mktemp("replicas")
    started = [
        _start(nats_server.url, replica_namespace, data_dir, index) for index in range(REPLICAS)
    ]
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
async def replicas(
    processes: list[subprocess.Popen[bytes]], nats_server: ManagedServer, replica_namespace: str
) -> AsyncIterator[ContentClient]:
    client = await connect_nats(nats_server.url, name="replica-test")
    subjects = Subjects(replica_namespace)
    deadline = asyncio.get_running_loop().time() + 30
    while len(await _instances(client, subjects)) < REPLICAS:
        assert asyncio.get_running_loop().time() < deadline, "content replicas did not start"
        await asyncio.sleep(0.1)
    try:
        yield ContentClient(client, subjects)
    finally:
        await client.drain()


async def _outcomes(calls: list[Any]) -> list[Any]:
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_concurrent_updates_of_one_body_version_let_exactly_one_win(
    replicas: ContentClient,
) -> None:
    item = await replicas.create({"type": "project", "data": {"title": "Race"}})
    outcomes = await _outcomes(
        [replicas.update(item["id"], {"data": {"n": n}, "version": 1}) for n in range(12)]
    )
    assert sum(isinstance(outcome, HttpReply) for outcome in outcomes) == 1
    assert sum(isinstance(outcome, ConflictError) for outcome in outcomes) == 11


async def test_concurrent_updates_with_one_if_match_let_exactly_one_win(
    replicas: ContentClient,
) -> None:
    item = await replicas.create({"type": "project", "data": {"title": "Race"}})
    outcomes = await _outcomes(
        [replicas.update(item["id"], {"data": {"n": n}}, if_match='"v1"') for n in range(12)]
    )
    assert sum(isinstance(outcome, HttpReply) for outcome in outcomes) == 1
    assert sum(isinstance(outcome, PreconditionFailedError) for outcome in outcomes) == 11


async def test_version_after_the_race_is_two(replicas: ContentClient) -> None:
    item = await replicas.create({"type": "project", "data": {"title": "Race"}})
    await _outcomes(
        [replicas.update(item["id"], {"data": {"n": n}, "version": 1}) for n in range(12)]
    )
    assert [entry["version"] for entry in await replicas.history(item["id"])] == [2, 1]


async def test_concurrent_duplicate_creates_execute_once_across_replicas(
    replicas: ContentClient,
) -> None:
    body = {"type": "project", "data": {"title": "Once"}}
    key = uuid.uuid4().hex
    outcomes = await _outcomes(
        [
            replicas.http(replicas.subjects.content_admin_create, body=body, idempotency_key=key)
            for _ in range(12)
        ]
    )
    assert {outcome.body["data"]["id"] for outcome in outcomes} == {outcomes[0].body["data"]["id"]}
    assert sum(not outcome.replayed for outcome in outcomes) == 1


async def test_concurrent_creates_with_one_title_get_distinct_slugs(
    replicas: ContentClient,
) -> None:
    title = f"Same {uuid.uuid4().hex[:8]}"
    outcomes = await _outcomes(
        [replicas.create({"type": "post", "data": {"title": title}}) for _ in range(8)]
    )
    assert len({outcome["slug"] for outcome in outcomes}) == 8


async def test_every_replica_reports_its_database_check_ok(replicas: ContentClient) -> None:
    reports = []
    for instance in await _instances(replicas.nats, replicas.subjects):
        reply = await replicas.nats.request(
            replicas.subjects.instance_checks(instance["id"]), b"", timeout=5
        )
        reports.append(CheckReport.decode(reply.data).checks["database"].status)
    assert reports == ["ok"] * REPLICAS


# Runs last: it stops the module's replicas.
async def test_sigterm_stops_each_replica_with_exit_status_zero(
    replicas: ContentClient, processes: list[subprocess.Popen[bytes]]
) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    statuses = [await asyncio.to_thread(process.wait, 20) for process in processes]
    assert statuses == [0] * REPLICAS
