"""CORS on, off and per origin: checked at the header level and in a real headless Chromium."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from _asgi_support import free_port, serve
from _processes import spawn, stop

PAGE = """<!doctype html>
<html><body><div id="out">pending</div>
<script>
fetch("{target}/invoke/total", {{
  method: "POST",
  headers: {{"Content-Type": "application/json"}},
  body: JSON.stringify({{prices: [1, 2]}})
}})
  .then(response => response.json())
  .then(body => {{ document.getElementById("out").textContent = "allowed:" + body.result; }})
  .catch(error => {{ document.getElementById("out").textContent = "blocked:" + error.name; }});
</script></body></html>
"""


def preflight(base: str, origin: str) -> httpx.Response:
    return httpx.options(
        f"{base}/invoke/total",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )


def test_cors_with_origins(tmp_path: Path) -> None:
    with serve(tmp_path, CORS="https://myapp.com,https://localhost:3000") as (url, _):
        allowed = preflight(url, "https://myapp.com")
        denied = preflight(url, "https://evil.example")
        simple = httpx.post(
            f"{url}/invoke/total", json={"prices": [1]}, headers={"Origin": "https://myapp.com"}
        )
        other = httpx.post(
            f"{url}/invoke/total", json={"prices": [1]}, headers={"Origin": "https://evil.example"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://myapp.com"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    assert simple.headers["access-control-allow-origin"] == "https://myapp.com"
    assert "access-control-allow-origin" not in other.headers


def test_cors_for_all_origins_and_off(tmp_path: Path) -> None:
    with serve(tmp_path, CORS="*") as (url, _):
        everyone = httpx.post(
            f"{url}/invoke/total", json={"prices": [1]}, headers={"Origin": "https://any.example"}
        )
    with serve(tmp_path) as (url, _):
        off = httpx.post(
            f"{url}/invoke/total", json={"prices": [1]}, headers={"Origin": "https://any.example"}
        )
    assert everyone.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in off.headers


@pytest.mark.asyncio
async def test_enable_then_disable_cors_in_process() -> None:
    from agnt5 import Worker

    app = Worker("cors-toggle", runtime="asgi")
    app.enable_cors(origins=["https://myapp.com"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        enabled = await client.get("/health", headers={"Origin": "https://myapp.com"})
        app.disable_cors()
        disabled = await client.get("/health", headers={"Origin": "https://myapp.com"})
    assert enabled.headers["access-control-allow-origin"] == "https://myapp.com"
    assert "access-control-allow-origin" not in disabled.headers


@contextmanager
def page_server(directory: Path) -> Iterator[str]:
    """A static server for ``directory`` on its own 127.0.0.1 origin."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def browser_outcome(page_url: str, profile: Path) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser is not None
    process = spawn(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            f"{page_url}/page.html",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:  # the outcome is read from the DOM; stderr goes into the failure message
        out, err = (stream.decode(errors="replace") for stream in process.communicate(timeout=60))
    finally:
        stop(process, grace=0)  # and the browser's helper processes with it
    match = re.search(r'<div id="out">([^<]*)</div>', out)
    assert match, f"no outcome in the page:\n{out}\n{err[-2000:]}"
    return match.group(1)


@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="headless Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)
def test_a_real_browser_honours_the_allowed_origins(tmp_path: Path) -> None:
    allowed_dir, denied_dir = tmp_path / "allowed", tmp_path / "denied"
    allowed_dir.mkdir()
    denied_dir.mkdir()
    with (
        page_server(allowed_dir) as allowed_origin,
        page_server(denied_dir) as denied_origin,
        serve(tmp_path, CORS=allowed_origin) as (url, _),
    ):
        for directory in (allowed_dir, denied_dir):
            (directory / "page.html").write_text(PAGE.format(target=url))
        allowed = browser_outcome(allowed_origin, tmp_path / "profile-a")
        denied = browser_outcome(denied_origin, tmp_path / "profile-b")
    assert allowed == "allowed:3.0" or allowed == "allowed:3"
    assert denied == "blocked:TypeError"


CROSS_SITE_PAGE = """<!doctype html>
<html><body><div id="out">pending</div>
<script>
const input = JSON.stringify({{path: {marks}}});
const post = body => fetch("{target}/invoke/mark", {{method: "POST", mode: "no-cors", body}});
post(input)  // a string: sent as text/plain, no preflight
  .then(() => post(new Blob([input])))  // a Blob without a type: no content type, no preflight
  .then(() => {{ document.getElementById("out").textContent = "sent"; }})
  .catch(error => {{ document.getElementById("out").textContent = "failed:" + error.name; }});
</script></body></html>
"""


@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="headless Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)
def test_a_page_on_another_site_cannot_invoke_a_function(tmp_path: Path) -> None:
    """The requests a page may send anywhere without asking (no CORS preflight) are refused
    before the handler runs, since none of them can say its body is JSON."""
    page_dir = tmp_path / "page"
    page_dir.mkdir()
    marks = tmp_path / "marks"
    with page_server(page_dir) as origin, serve(tmp_path) as (url, _):
        page = CROSS_SITE_PAGE.format(target=url, marks=json.dumps(str(marks)))
        (page_dir / "page.html").write_text(page)
        outcome = browser_outcome(origin, tmp_path / "profile")
    assert outcome == "sent"
    assert not marks.exists(), marks.read_text()
