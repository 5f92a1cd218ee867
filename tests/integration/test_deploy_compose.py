"""The compose file and the image, checked without a Docker engine.

The compose file must match the Compose specification's JSON schema, pass each
service only variables that service reads, and set every variable a service
needs. The Dockerfile must build with the lock, run as a non-root user and
declare a health check. Each container's command and health check run here as
plain processes against loopback servers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from compose_file import (
    COMPOSE_FILE,
    DEPLOY_DIR,
    DOCKERFILE,
    ENV_EXAMPLE,
    REPOSITORY,
    SERVICE_KINDS,
    dockerfile_instruction,
    interpolate,
    load_compose,
    referenced_variables,
    service_variables,
)
from portfolio_shared.devstack.processes import spawn, stop_group
from portfolio_shared.testing.servers import ManagedServer, free_port
from stack import ManagedProcess, http_get

REQUIRED_IN_PRODUCTION = {
    "content": {"NATS_URL", "TURSO_DATABASE_URL"},
    "chat": {"NATS_URL", "REDIS_URL", "LLM_BASE_URL", "LLM_API_KEY", "CHAT_DATABASE_URL"},
    "health": {"NATS_URL"},
    "gateway": {"NATS_URL", "REDIS_URL", "ADMIN_API_KEY", "IP_HASH_SALT", "GATEWAY_HOST"},
}
"""Variables without which a service would run with a development default in production."""

EXAMPLE_VALUES = {
    "ADMIN_API_KEY": "k" * 40,
    "IP_HASH_SALT": "test-salt",
    "LLM_API_KEY": "sk-test-compose",
}
"""Values a test gives the variables ``deploy/.env.example`` leaves empty."""


def _compose_schema() -> dict[str, Any]:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert isinstance(schema, dict)
    return schema


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def _environment(kind: str) -> dict[str, str]:
    """The environment compose would give ``kind``'s container with the example env file."""
    environ = {**_env_example(), **EXAMPLE_VALUES}
    raw = load_compose()["services"][kind].get("environment", {})
    return {name: interpolate(str(value), environ) for name, value in raw.items()}


def _schema_errors(document: dict[str, Any]) -> list[str]:
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    return [f"{list(error.path)}: {error.message}" for error in errors]


def test_compose_file_matches_the_compose_specification() -> None:
    assert _schema_errors(load_compose()) == []


def test_compose_schema_rejects_an_unknown_service_key() -> None:
    document = load_compose()
    document["services"]["gateway"]["replica_count"] = 2

    assert _schema_errors(document) != []


@pytest.mark.parametrize("kind", SERVICE_KINDS)
def test_compose_passes_only_variables_the_service_reads(kind: str) -> None:
    passed = set(load_compose()["services"][kind].get("environment", {}))

    unread = passed - set(service_variables(kind))

    assert unread == set()


@pytest.mark.parametrize("kind", SERVICE_KINDS)
def test_compose_sets_every_required_variable(kind: str) -> None:
    required = {name for name, needed in service_variables(kind).items() if needed}
    required |= REQUIRED_IN_PRODUCTION[kind]

    missing = required - set(load_compose()["services"][kind].get("environment", {}))

    assert missing == set()


def test_env_example_names_every_variable_compose_interpolates() -> None:
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    documented = {
        line.lstrip("# ").split("=", 1)[0] for line in example.splitlines() if "=" in line
    }

    undocumented = referenced_variables(COMPOSE_FILE.read_text(encoding="utf-8")) - documented

    assert undocumented == set()


def test_compose_refuses_to_start_without_the_admin_key() -> None:
    environ = {**_env_example(), **EXAMPLE_VALUES, "ADMIN_API_KEY": ""}
    raw = load_compose()["services"]["gateway"]["environment"]["ADMIN_API_KEY"]

    with pytest.raises(KeyError, match="ADMIN_API_KEY"):
        interpolate(raw, environ)


@pytest.mark.parametrize("kind", ["content", "chat"])
def test_compose_runs_replicated_services_twice(kind: str) -> None:
    assert load_compose()["services"][kind]["deploy"]["replicas"] == 2


def test_compose_mounts_files_that_exist() -> None:
    missing = []
    for service in load_compose()["services"].values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith(".") and not (DEPLOY_DIR / source).exists():
                missing.append(source)

    assert missing == []


def test_compose_gateway_waits_for_healthy_services() -> None:
    depends = load_compose()["services"]["gateway"]["depends_on"]

    conditions = {name: depends[name]["condition"] for name in ("content", "chat", "health")}

    assert set(conditions.values()) == {"service_healthy"}


def test_dockerfile_builds_in_stages_from_the_lock() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")

    stages = [line for line in text.splitlines() if line.startswith("FROM ")]

    assert len(stages) >= 2
    assert "uv sync --frozen --no-dev" in text
    assert "COPY pyproject.toml uv.lock" in text


def test_dockerfile_copies_every_workspace_member() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    members = sorted(REPOSITORY.glob("services/*/pyproject.toml"))

    forgotten = [
        str(path.relative_to(REPOSITORY))
        for path in members
        if str(path.relative_to(REPOSITORY)) not in text
    ]

    assert forgotten == []


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [
        line.split()[1]
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("USER ")
    ]

    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_declares_a_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")

    assert "HEALTHCHECK" in text
    assert "portfolio_shared.devstack.probe" in text


def _dockerfile_web_root() -> str:
    """Return the ``WEB_ROOT`` that the image's ``ENV`` instruction sets."""
    found = re.search(r"\bWEB_ROOT=(\S+)", DOCKERFILE.read_text(encoding="utf-8"))
    assert found is not None, "deploy/Dockerfile sets no WEB_ROOT"
    return found.group(1)


def _dockerfile_web_copy() -> str:
    """Return the destination of the Dockerfile's ``COPY web/ ...`` instruction."""
    found = re.search(r"^COPY web/ (\S+)$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert found is not None, "deploy/Dockerfile does not copy web/"
    return found.group(1)


def test_dockerfile_sets_web_root_to_the_copied_page() -> None:
    assert _dockerfile_web_copy().rstrip("/") == _dockerfile_web_root()


def test_docker_build_context_keeps_the_web_page() -> None:
    ignored = (DEPLOY_DIR / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()

    excluding = [line for line in ignored if line.strip().rstrip("/") in {"web", "web/*", "**/web"}]

    assert excluding == []


def _prometheus_mounts() -> dict[str, Path]:
    """Map each file the prometheus service mounts, by its path in the container, to its source."""
    mounts = {}
    for volume in load_compose()["services"]["prometheus"]["volumes"]:
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            mounts[target] = DEPLOY_DIR / source
    return mounts


def _prometheus_config_path() -> str:
    """Return the ``--config.file`` the prometheus service's command names."""
    for argument in load_compose()["services"]["prometheus"]["command"]:
        if str(argument).startswith("--config.file="):
            return str(argument).split("=", 1)[1]
    raise LookupError("the prometheus service names no --config.file")


def test_prometheus_mounts_the_checked_config() -> None:
    mounted = _prometheus_mounts()[_prometheus_config_path()]

    assert mounted.resolve() == (DEPLOY_DIR / "prometheus" / "prometheus.yml").resolve()


def test_prometheus_mounts_the_alert_rules() -> None:
    sources = {path.resolve() for path in _prometheus_mounts().values()}

    assert (DEPLOY_DIR / "prometheus" / "alerts.yml").resolve() in sources


def test_deploy_keeps_one_prometheus_config() -> None:
    configs = sorted(path.relative_to(DEPLOY_DIR) for path in DEPLOY_DIR.rglob("prometheus.yml"))

    assert configs == [Path("prometheus/prometheus.yml")]


def test_prometheus_config_loads_the_alert_rules_as_mounted(tmp_path: Path) -> None:
    # Lay the mounted files out as the container sees them, under tmp_path.
    for target, source in _prometheus_mounts().items():
        placed = tmp_path / target.lstrip("/")
        placed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, placed)
    config = tmp_path / _prometheus_config_path().lstrip("/")

    result = subprocess.run(
        ["promtool", "check", "config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout + result.stderr


def test_prometheus_scrapes_the_gateway_service() -> None:
    config = yaml.safe_load((DEPLOY_DIR / "prometheus" / "prometheus.yml").read_text())
    gateway = load_compose()["services"]["gateway"]
    port = gateway["environment"]["GATEWAY_PORT"]

    targets = [
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]

    assert targets == [f"gateway:{port}"]
    assert any(str(mapping).endswith(f":{port}") for mapping in gateway["ports"])


def test_prometheus_scrapes_the_metrics_path() -> None:
    config = yaml.safe_load((DEPLOY_DIR / "prometheus" / "prometheus.yml").read_text())

    paths = {job["metrics_path"] for job in config["scrape_configs"]}

    assert paths == {"/api/metrics"}


# Containers as plain processes


def _container_argv(kind: str) -> list[str]:
    """The container's command line (ENTRYPOINT + compose command) with this interpreter."""
    entrypoint = dockerfile_instruction("ENTRYPOINT")
    command = [str(part) for part in load_compose()["services"][kind]["command"]]
    argv = entrypoint + command
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def _healthcheck_argv(kind: str) -> list[str]:
    test = [str(part) for part in load_compose()["services"][kind]["healthcheck"]["test"]]
    assert test[0] == "CMD"
    assert test[1] == "python"
    return [sys.executable, *test[2:]]


def _loopback_environment(
    kind: str, nats_url: str, namespace: str, data_dir: Path, gateway_port: int
) -> dict[str, str]:
    """The compose environment with the compose network's hosts replaced by loopback ones."""
    env = _environment(kind)
    replacements = {
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": namespace,
        # Redis is shared with other tests, so the container stays on memory here.
        "REDIS_URL": "",
        "TURSO_DATABASE_URL": f"file:{data_dir / 'portfolio.db'}",
        "CHAT_DATABASE_URL": f"file:{data_dir / 'chat.db'}",
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(gateway_port),
    }
    env.update({name: value for name, value in replacements.items() if name in env})
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(data_dir),
            "DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _run_until_ok(
    argv: list[str], env: dict[str, str], timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = subprocess.run(
            argv, env=env, capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_container_commands_run_and_pass_their_healthchecks(
    nats_server: ManagedServer, namespace: str, tmp_path: Path
) -> None:
    gateway_port = free_port()
    # The page as the image holds it: a copy of web/ at WEB_ROOT, marked to tell it apart.
    web_root = tmp_path / "web-copy"
    shutil.copytree(REPOSITORY / "web", web_root)
    index = web_root / "index.html"
    index.write_bytes(index.read_bytes() + b"<!-- image copy -->\n")
    processes: list[ManagedProcess] = []
    try:
        for kind in SERVICE_KINDS:
            env = _loopback_environment(kind, nats_server.url, namespace, tmp_path, gateway_port)
            if kind == "gateway":
                env["WEB_ROOT"] = str(web_root)
            log_path = tmp_path / f"{kind}.log"
            log_file = log_path.open("wb")
            process = spawn(_container_argv(kind), env=env, stdout=log_file, cwd=tmp_path)
            processes.append(ManagedProcess(kind, 0, log_path, process, log_file))

        results = {
            kind: _run_until_ok(
                _healthcheck_argv(kind),
                _loopback_environment(kind, nats_server.url, namespace, tmp_path, gateway_port),
            )
            for kind in SERVICE_KINDS
        }
        ready_status, _ = http_get(f"http://127.0.0.1:{gateway_port}/api/health/ready")
        page_status, page = http_get(f"http://127.0.0.1:{gateway_port}/app/")
    finally:
        for managed in processes:
            assert managed.process is not None
            stop_group(managed.process, timeout_s=15)
            assert managed.log_file is not None
            managed.log_file.close()

    logs = {
        managed.kind: managed.log_path.read_text(errors="replace")[-2000:] for managed in processes
    }
    for kind, result in results.items():
        assert result.returncode == 0, f"{kind}: {result.stdout}{result.stderr}\n{logs[kind]}"
    assert ready_status == 200
    assert page_status == 200
    assert page == index.read_bytes()
