"""One trace from a caller's span through the coordinator to the worker's handler.

The program below runs a coordinator, a standalone worker and the clients in one process with
the OpenTelemetry SDK's in-memory exporter as the global tracer provider (so it runs in a
subprocess: the global provider can be set once per process), and prints the spans it made.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from _coordinator_support import PYTHON, agnt5_env

PROGRAM = textwrap.dedent(
    """
    import asyncio, json, sys

    import httpx
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from agnt5 import AsyncClient, Client, Worker, function
    from agnt5.coordinator import Coordinator


    @function()
    async def greet(name: str) -> str:
        return f"Hello, {name}!"


    @function()
    def shout(name: str) -> str:
        return name.upper()


    async def main() -> None:
        tracer = trace.get_tracer("caller")
        async with Coordinator(port=0, http_port=0) as coordinator:
            worker = Worker("traced", coordinator_endpoint=coordinator.endpoint, log_level="WARNING")
            running = asyncio.create_task(worker.run())
            async with AsyncClient(coordinator.endpoint) as client:
                for _ in range(200):  # bounded: 10 s for the worker to register
                    if any(s["workers"] for s in await client.list_services()):
                        break
                    await asyncio.sleep(0.05)
                with tracer.start_as_current_span("async caller"):
                    assert await client.invoke("traced", "greet", "Ada") == "Hello, Ada!"
                with tracer.start_as_current_span("batch caller"):
                    results = [r async for r in client.invoke_many("traced", "shout", ["a", "b"])]
                    assert sorted(r.result() for r in results) == ["A", "B"]
                assert await client.invoke("traced", "greet", "nobody") == "Hello, nobody!"

            def blocking() -> None:
                with Client(coordinator.endpoint) as client:
                    with tracer.start_as_current_span("sync caller"):
                        assert client.invoke("traced", "shout", "x") == "X"

            await asyncio.to_thread(blocking)
            with tracer.start_as_current_span("http caller") as span:
                context = span.get_span_context()
                traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
                async with httpx.AsyncClient() as http:
                    response = await http.post(
                        f"http://127.0.0.1:{coordinator.http_port}/v1/services/traced/functions/greet/invoke",
                        json="web",
                        headers={"traceparent": traceparent},
                    )
                    assert response.status_code == 200, response.text
            worker.stop()
            await running
        provider.force_flush()
        spans = [
            {
                "name": span.name,
                "trace": span.context.trace_id,
                "id": span.context.span_id,
                "parent": span.parent.span_id if span.parent else None,
                "attributes": dict(span.attributes),
            }
            for span in exporter.get_finished_spans()
        ]
        print(json.dumps(spans))


    asyncio.run(main())
    """
)


def _spans(tmp_path: Path) -> list[dict[str, Any]]:
    script = tmp_path / "traced.py"
    script.write_text(PROGRAM)
    done = subprocess.run(
        [*PYTHON, str(script)], capture_output=True, timeout=120, env=agnt5_env(), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr.decode()
    return list(json.loads(done.stdout.decode().splitlines()[-1]))


def _children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in spans if s["parent"] == parent["id"] and s["trace"] == parent["trace"]]


def test_one_trace_runs_from_the_caller_through_the_coordinator_to_the_worker(
    tmp_path: Path,
) -> None:
    spans = _spans(tmp_path)
    by_name = {span["name"]: span for span in spans if "caller" in span["name"]}
    for caller, function, count in (
        ("async caller", "greet", 1),
        ("batch caller", "shout", 2),  # invoke_many: each item carries the context
        ("sync caller", "shout", 1),
        ("http caller", "greet", 1),  # the gateway reads the traceparent header
    ):
        coordinated = _children(spans, by_name[caller])
        assert [s["name"] for s in coordinated] == [f"invocation traced/{function}"] * count
        for span in coordinated:
            assert span["attributes"]["agnt5.outcome"] == "success"
            (handled,) = _children(spans, span)
            assert handled["name"] == f"invoke {function}"
            assert (
                handled["attributes"]["agnt5.invocation_id"]
                == span["attributes"]["agnt5.invocation_id"]
            )
    # a call made outside any span starts its own trace at the coordinator
    roots = [s for s in spans if s["parent"] is None and s["name"].startswith("invocation ")]
    assert len(roots) == 1 and len(_children(spans, roots[0])) == 1
