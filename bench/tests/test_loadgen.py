"""The wrk runner: its generated script, its loopback guard, and a real bounded run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.loadgen import LoadSpec, _script, run_load
from bench.system import BenchSystem


def test_load_spec_rejects_a_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoadSpec("http://192.0.2.10:8000/")


def test_script_rotates_paths_and_bodies() -> None:
    script = _script(
        LoadSpec("http://127.0.0.1:1/x", method="POST", paths=("/a", "/b"), bodies=('{"n":1}',))
    )
    assert 'local paths = {"/a", "/b"}' in script
    assert 'local bodies = {"{\\"n\\":1}"}' in script
    assert 'wrk.method = "POST"' in script


def test_script_sends_headers() -> None:
    script = _script(LoadSpec("http://127.0.0.1:1/", headers=(("If-None-Match", '"v1"'),)))
    assert 'wrk.headers["If-None-Match"] = "\\"v1\\""' in script


def test_both_baselines_serve_their_body_under_wrk(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"data": {"project": []}}))
    with BenchSystem(tmp_path / "run") as system:
        urls = [system.start_bare_baseline(body), system.start_nats_baseline(body)]
        results = [
            run_load(LoadSpec(url + "/baseline"), duration_s=1, connections=4) for url in urls
        ]
    assert all(result.requests > 0 for result in results)
    assert all(result.errors == 0 for result in results)
