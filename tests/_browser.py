"""Headless Chromium (Debian's package) driven over the DevTools protocol, for the browser tests.

The protocol runs on a pipe (``--remote-debugging-pipe``: commands on the browser's fd 3,
answers on its fd 4, each message JSON ended by a NUL byte), so no port is opened and no
library is needed. `Browser` starts one browser with a private profile; `Browser.page` opens a
tab, a `Page`, which navigates, waits for a condition in the page, clicks and types with real
input events, and takes screenshots. Errors the page's scripts raise are collected and fail
the test (`Page.check_no_errors`).
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from _processes import spawn, stop

__all__ = ["BROWSER", "Browser", "Page", "needs_browser"]

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

needs_browser = pytest.mark.skipif(
    BROWSER is None,
    reason="headless Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)

_TIMEOUT = 30.0  # seconds for one protocol command
_WINDOW = (1280, 860)


class BrowserError(AssertionError):
    """The browser answered a command with an error, or did not answer."""


class Browser:
    """One headless Chromium, stopped (with its helper processes) by `close`, which also removes
    the temporary files it made."""

    def __init__(self, profile: Path) -> None:
        assert BROWSER is not None
        # Its own temporary directory (Chromium leaves its singleton socket's there), with a short
        # path: a socket's path has at most 107 bytes.
        self._temporary = tempfile.mkdtemp(prefix="chromium-")
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()
        # Ends above 9, so putting them on fd 3 and 4 cannot overwrite one with the other.
        commands_read, answers_write = (_above_nine(fd) for fd in (commands_read, answers_write))
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            f"--window-size={_WINDOW[0]},{_WINDOW[1]}",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # bash puts the pipe ends where the browser expects them (fd 3 and 4), then execs it.
        command = " ".join(["exec", '"$0"', '"$@"', f"3<&{commands_read}", f"4>&{answers_write}"])
        self._process = spawn(
            ["bash", "-c", command, BROWSER, *flags],
            pass_fds=(commands_read, answers_write),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": self._temporary},
        )
        os.close(commands_read)
        os.close(answers_write)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, name="chromium-devtools", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:  # until the browser closes its end
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                waiting = self._waiting.pop(message["id"], None) if "id" in message else None
                if waiting is not None:
                    waiting[1].append(message)
                    waiting[0].set()
                else:
                    self.events.append(message)
        for event, _ in list(self._waiting.values()):
            event.set()

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> Any:
        """Run one protocol command and return its result."""
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        done: tuple[threading.Event, list[dict[str, Any]]] = (threading.Event(), [])
        self._waiting[message["id"]] = done
        with self._lock:
            os.write(self._commands, json.dumps(message).encode() + b"\0")
        if not done[0].wait(_TIMEOUT) or not done[1]:
            raise BrowserError(f"no answer to {method} within {_TIMEOUT:g} s")
        answer = done[1][0]
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def page(self) -> Page:
        """A new tab."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            page.send(domain)
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (BrowserError, OSError):
            pass
        stop(self._process, grace=5)
        os.close(self._commands)
        self._reader.join(10)
        os.close(self._answers)
        shutil.rmtree(self._temporary, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _above_nine(fd: int) -> int:
    """``fd`` moved to a descriptor numbered 10 or more."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Page:
    """One tab: navigate, wait, click, type, read and screenshot."""

    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self._browser.send(method, params, self._session)

    def goto(self, url: str) -> None:
        """Open ``url`` and wait until it has loaded."""
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'", f"{url} to load")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression!r} raised: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 20.0) -> None:
        """Wait until ``expression`` is truthy in the page."""
        deadline = time.monotonic() + timeout
        while True:  # bounded by the timeout
            if self.evaluate(f"Boolean({expression})"):
                return
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(
                    f"waited {timeout:g} s for {what} ({expression}); the page shows:\n"
                    f"{(text or '')[:3000]}\nerrors: {self.errors()}"
                )
            time.sleep(0.05)

    def visible(self, selector: str) -> str:
        """A JavaScript test that an element matching ``selector`` is shown."""
        found = f"document.querySelector({json.dumps(selector)})"
        return f"(() => {{ const e = {found}; return !!(e && e.getClientRects().length); }})()"

    def click(self, selector: str) -> None:
        """Click the element matching ``selector`` (once shown) with the mouse."""
        self.wait_for(self.visible(selector), f"{selector} to show")
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def type(self, selector: str, text: str) -> None:
        """Replace the text of the field matching ``selector`` by typing ``text``."""
        self.click(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        self.send("Input.insertText", {"text": text})

    def choose(self, selector: str, value: str) -> None:
        """Choose ``value`` in the select matching ``selector`` (as a person picking it)."""
        self.wait_for(self.visible(selector), f"{selector} to show")
        self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            f" e.value = {json.dumps(value)}; e.dispatchEvent(new Event('change', {{bubbles: true}}));"
            " })()"
        )

    def text(self, selector: str) -> str:
        return str(self.evaluate(f"document.querySelector({json.dumps(selector)}).innerText"))

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page at ``path``."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {
            "x": 0,
            "y": 0,
            "width": max(_WINDOW[0], size["width"]),
            "height": max(_WINDOW[1], min(size["height"], 6000)),
            "scale": 1,
        }
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def errors(self) -> list[str]:
        """What the page's scripts raised or logged as errors so far, and what the browser
        refused for its security (such as its content security policy)."""
        found = []
        for event in self._browser.events:
            if event.get("sessionId") != self._session:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(details.get("exception", {}).get("description") or details["text"])
            elif event["method"] == "Log.entryAdded" and params["entry"]["source"] == "security":
                found.append(params["entry"]["text"])  # e.g. the content security policy refused
            elif event["method"] == "Runtime.consoleAPICalled" and params["type"] == "error":
                found.append(
                    " ".join(
                        str(arg.get("value", arg.get("description"))) for arg in params["args"]
                    )
                )
        return found

    def check_no_errors(self) -> None:
        errors = self.errors()
        assert not errors, f"the page's scripts failed: {errors}"
