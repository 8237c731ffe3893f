"""Workflows under the ASGI runtime (a real uvicorn process): in-process, no journal, no coordinator."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from _asgi_support import serve


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("asgi-workflows")) as (url, _):
        yield url


def test_a_workflow_runs_its_steps_sleeps_and_values_in_the_request(base: str) -> None:
    response = httpx.post(f"{base}/invoke/local_order", json={"order_id": "o-1"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {
        "order_id": "o-1",
        "total": 42,
        "pair": ["a", "b"],
        "after_2000": True,
    }


@pytest.mark.parametrize("call", ["task", "signal"])
def test_task_and_signal_answer_409_saying_they_need_a_coordinator(base: str, call: str) -> None:
    response = httpx.post(
        f"{base}/invoke/needs_coordinator",
        json={"call": call},
        headers={"X-Invocation-Id": "w-1"},
        timeout=10,
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "FAILED_PRECONDITION" and body["invocation_id"] == "w-1"
    assert body["error"].startswith(f"ctx.{call} needs a coordinator: workflow needs_coordinator")


def test_workflows_are_listed_as_workflows(base: str) -> None:
    functions = httpx.get(f"{base}/functions", timeout=10).json()["functions"]
    kinds = {entry["name"]: entry["kind"] for entry in functions}
    assert kinds["local_order"] == kinds["needs_coordinator"] == "workflow"
