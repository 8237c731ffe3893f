"""`agnt5 coordinator` answers /health, /ready and /metrics on its gateway port: every metric
with its labels, at zero before anything happens, and counting as invocations run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from _coordinator_support import FakeWorker, blocker, coordinator_process, echo, unique
from _metrics import check_with_promtool, samples

pytestmark = pytest.mark.asyncio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset((f"agnt5_{key}", value) for key, value in labels.items())


async def _scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    check_with_promtool(response.text)
    return samples(response.text)


async def test_probes_and_metrics_follow_the_invocations(tmp_path: Path) -> None:
    service = unique()
    release = asyncio.Event()
    with coordinator_process("--data-dir", str(tmp_path / "data")) as coordinator:
        async with httpx.AsyncClient(base_url=coordinator.http_url, timeout=10) as http:
            assert (await http.get("/health")).json() == {"status": "healthy"}
            assert (await http.get("/ready")).json() == {"status": "ready"}
            empty = await _scrape(http)
            for reason in ("auth", "quota", "validation", "not_found", "unavailable", "other"):
                assert empty["agnt5_coordinator_rejected_total", _labels(reason=reason)] == 0
            assert any(name == "target_info" for name, _ in empty)
            assert any(name == "agnt5_build_info" for name, _ in empty)
            assert ("process_resident_memory_bytes", frozenset()) in empty

            handlers = {"f": echo, "hold": blocker(release)}
            async with FakeWorker(coordinator.endpoint, service, handlers, max_concurrency=1):
                registered = await _scrape(http)
                f = _labels(service=service, function="f")
                assert registered["agnt5_coordinator_invocations_accepted_total", f] == 0
                assert (
                    registered[
                        "agnt5_coordinator_invocations_total", f | _labels(outcome="success")
                    ]
                    == 0
                )
                assert registered["agnt5_coordinator_retries_total", f] == 0
                assert registered["agnt5_coordinator_redeliveries_total", f] == 0
                assert registered["agnt5_coordinator_workers", _labels(service=service)] == 1
                assert registered["agnt5_coordinator_queue_depth", _labels(service=service)] == 0

                path = f"/v1/services/{service}/functions"
                assert (await http.post(f"{path}/f/invoke", json=1)).status_code == 200
                held = await http.post(f"{path}/hold/submit", json={})
                queued = [await http.post(f"{path}/f/submit", json=n) for n in range(2)]
                assert held.status_code == 202 and [r.status_code for r in queued] == [202, 202]
                bad = await http.post(f"{path}/f/invoke?timeout=-1", json=1)
                missing = await http.post("/v1/services/nobody/functions/f/invoke", json=1)
                # (a journaled coordinator answers an unknown service UNAVAILABLE at first)
                assert (bad.status_code, missing.status_code) == (400, 503)
                await asyncio.sleep(0.2)
                busy = await _scrape(http)
                service_only = _labels(service=service)
                assert busy["agnt5_coordinator_queue_depth", service_only] == 2
                assert busy["agnt5_coordinator_queue_bytes", service_only] == 2
                assert busy["agnt5_coordinator_queue_oldest_age_seconds", service_only] > 0.1
                assert busy["agnt5_coordinator_invocations_in_flight", service_only] == 1
                assert busy["agnt5_coordinator_workflow_timers_pending", service_only] == 0
                assert busy["agnt5_coordinator_invocations_accepted_total", f] == 3
                assert busy["agnt5_coordinator_rejected_total", _labels(reason="validation")] == 1
                assert busy["agnt5_coordinator_rejected_total", _labels(reason="unavailable")] == 1
                assert (
                    busy["agnt5_coordinator_journal_commit_duration_seconds_count", frozenset()] > 0
                )
                assert busy["agnt5_coordinator_journal_commit_size_sum", frozenset()] >= 4

                release.set()
                for response in queued:
                    invocation = response.json()["invocation_id"]
                    assert (await http.get(f"/v1/invocations/{invocation}?wait=10")).json()[
                        "state"
                    ] == "SUCCEEDED"
                done = await _scrape(http)
                assert (
                    done["agnt5_coordinator_invocations_total", f | _labels(outcome="success")] == 3
                )
                assert done["agnt5_coordinator_queue_depth", service_only] == 0
                assert done["agnt5_coordinator_queue_oldest_age_seconds", service_only] == 0
            for _ in range(100):  # bounded: the coordinator sees the stream end within 5 s
                gone = await _scrape(http)
                if gone["agnt5_coordinator_workers", _labels(service=service)] == 0:
                    break
                await asyncio.sleep(0.05)
            assert gone["agnt5_coordinator_workers", _labels(service=service)] == 0


async def test_a_lost_workers_work_counts_as_redelivered() -> None:
    service = unique()
    with coordinator_process() as coordinator:
        async with httpx.AsyncClient(base_url=coordinator.http_url, timeout=10) as http:
            never = asyncio.Event()
            first = await FakeWorker(coordinator.endpoint, service, {"f": blocker(never)}).start()
            submitted = await http.post(f"/v1/services/{service}/functions/f/submit", json=1)
            await first.wait_for_invokes(1)
            async with FakeWorker(coordinator.endpoint, service, {"f": echo}):
                await first.disconnect()
                invocation = submitted.json()["invocation_id"]
                assert (await http.get(f"/v1/invocations/{invocation}?wait=10")).json()[
                    "attempt"
                ] == 2
                found = await _scrape(http)
    assert (
        found["agnt5_coordinator_redeliveries_total", _labels(service=service, function="f")] == 1
    )


async def test_metrics_need_an_unscoped_client_key_once_keys_are_set(tmp_path: Path) -> None:
    with coordinator_process("--client-key", "all-services", "--client-key", "some svc-a") as c:
        async with httpx.AsyncClient(base_url=c.http_url, timeout=10) as http:
            assert (await http.get("/health")).status_code == 200  # probes stay open
            assert (await http.get("/ready")).status_code == 200
            assert (await http.get("/metrics")).status_code == 401
            scoped = await http.get("/metrics", headers={"authorization": "Bearer some"})
            assert (
                scoped.status_code == 401 and "limited to some services" in scoped.json()["error"]
            )
            allowed = await http.get("/metrics", headers={"authorization": "Bearer all-services"})
            assert allowed.status_code == 200
            found = samples(allowed.text)
    assert found["agnt5_coordinator_rejected_total", _labels(reason="auth")] == 2
