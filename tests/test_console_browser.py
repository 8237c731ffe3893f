"""The console in a real headless Chromium, against a real coordinator and worker (processes).

A person's paths: the overview shows the service and its worker; a function's form (generated
from its input schema) invokes it and the invocation page turns to SUCCEEDED live; a failed
invocation shows its error; an invocation is re-submitted; a workflow waiting for a signal shows
its timeline, is sent the signal from its page and completes; with a client key the console asks
for it and keeps it out of URLs and cookies. A screenshot of each page is written to the test's
directory.
"""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from _browser import Browser, Page, needs_browser
from _coordinator_support import PYTHON, agnt5_env, coordinator_process, read_line
from _processes import spawn, stop

from agnt5.coordinator import SqliteStore
from agnt5.coordinator.store import Invocation, InvocationState, RetryPolicy
from agnt5.errors import InvocationTimeoutError

pytestmark = [needs_browser, pytest.mark.slow]

APP = textwrap.dedent(
    '''
    import asyncio
    import dataclasses
    import os

    from agnt5 import function, workflow


    @dataclasses.dataclass
    class Order:
        item: str
        quantity: int
        gift: bool = False


    @function
    def place(order: Order, note: str | None = None) -> dict:
        """Place an order: the total is 2 per item."""
        return {"item": order.item, "total": 2 * order.quantity, "gift": order.gift}


    @function(retries=0)
    def explode(reason: str) -> None:
        raise ValueError(f"exploded: {reason}")


    @function
    async def linger(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds


    @workflow
    async def approve(ctx, order: str) -> dict:
        """Check an order, then wait for a person's decision."""
        checked = await ctx.step("check", str.upper, order)
        await ctx.sleep(0.05)
        decision = await ctx.signal("decision")
        return {"order": checked, "decision": decision}


    @function
    async def hold(release: str) -> str:
        for _ in range(3000):  # bounded: 30 s
            if os.path.exists(release):
                return "released"
            await asyncio.sleep(0.01)
        return "timed out"
    '''
)
CLIENT_KEY = "console-test-key"
HELLO = Path(__file__).resolve().parent.parent / "examples" / "hello.py"


@dataclass
class Cluster:
    http: str
    directory: Path

    @property
    def console(self) -> str:
        return f"{self.http}/console"

    def page_of(self, invocation_id: str) -> str:
        """The console's page of an invocation."""
        return f"{self.console}#/invocations/{invocation_id}"

    def submit(self, function: str, value: object, key: str | None = None) -> str:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        response = httpx.post(
            f"{self.http}/v1/services/shop/functions/{function}/submit",
            json=value,
            headers=headers,
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["invocation_id"])


@contextmanager
def cluster(directory: Path, *coordinator_args: str, worker_key: str = "") -> Iterator[Cluster]:
    """A coordinator and a worker of service 'shop' serving APP."""
    (directory / "shop.py").write_text(APP)
    key = ("--api-key", worker_key) if worker_key else ()
    with coordinator_process(*coordinator_args) as coordinator:
        worker = spawn(
            [*PYTHON, "-m", "agnt5", "worker", str(directory / "shop.py"), "--service", "shop",
             "--endpoint", coordinator.endpoint, *key],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=agnt5_env(),
        )  # fmt: skip
        try:
            yield Cluster(f"http://{coordinator.http_address}", directory)
        finally:
            stop(worker)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("shop")) as running:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # bounded: until the worker registered
            services = httpx.get(f"{running.http}/v1/services", timeout=10).json()["services"]
            if services and services[0]["workers"]:
                break
            time.sleep(0.1)
        yield running


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A browser per test: its helper processes start as it works, so a test's own check that
    it leaves no process behind covers them."""
    with Browser(tmp_path / "profile") as running:
        yield running


def wait_for_state(page: Page, state: str) -> None:
    """Wait until the page of the invocation in the URL shows ``state``."""
    shown = "'#/invocations/' + document.querySelector('#invocation-id')?.innerText"
    state_shown = f"document.querySelector('#state')?.innerText === '{state}'"
    page.wait_for(f"location.hash === {shown} && {state_shown}", state)


def open_held(shop: Cluster, browser: Browser, release: Path) -> Page:
    """The page of an invocation of 'hold', shown RUNNING until ``release`` exists."""
    invocation_id = shop.submit("hold", {"release": str(release)})
    page = open_console(browser, shop.page_of(invocation_id))
    wait_for_state(page, "RUNNING")
    return page


def open_console(browser: Browser, url: str) -> Page:
    page = browser.page()
    page.goto(url)
    page.wait_for("document.querySelector('#live.on')", "the event stream to connect")
    return page


def test_overview_shows_services_functions_and_workers(
    shop: Cluster, browser: Browser, tmp_path: Path
) -> None:
    page = open_console(browser, shop.console)
    card = "section.service[data-service='shop']"
    page.wait_for(page.visible(f"{card} table.workers"), "the worker of 'shop'")
    text = page.text(card)
    for expected in ("place", "explode", "linger", "Place an order: the total is 2 per item."):
        assert expected in text
    assert "/ 100" in page.text(f"{card} table.workers")  # in flight / capacity
    assert "0 queued" in text
    page.screenshot(tmp_path / "overview.png")
    page.check_no_errors()


def test_invoke_from_the_form_and_watch_it_succeed(
    shop: Cluster, browser: Browser, tmp_path: Path
) -> None:
    page = open_console(browser, shop.console)
    page.click("a.function-link[href='#/services/shop/place']")
    page.wait_for(page.visible("#invoke-form input[name='order.item']"), "the form of 'place'")
    page.screenshot(tmp_path / "function.png")
    page.type("#invoke-form input[name='order.item']", "book")
    page.type("#invoke-form input[name='order.quantity']", "3")
    page.click("#invoke-form input[name='order.gift']")
    page.click("#invoke")
    page.wait_for("location.hash.startsWith('#/invocations/')", "the invocation's page")
    wait_for_state(page, "SUCCEEDED")
    output = page.text("#output")
    assert '"total": 6' in output and '"gift": true' in output
    assert '"quantity": 3' in page.text("#input")
    page.screenshot(tmp_path / "invocation.png")
    page.check_no_errors()


def test_a_failed_invocation_shows_its_error(
    shop: Cluster, browser: Browser, tmp_path: Path
) -> None:
    invocation_id = shop.submit("explode", {"reason": "on purpose"})
    page = open_console(browser, shop.page_of(invocation_id))
    wait_for_state(page, "FAILED")
    assert page.text("#error-code") == "FUNCTION_FAILED"
    assert "exploded: on purpose" in page.text("#error-message")
    page.screenshot(tmp_path / "failed.png")
    page.check_no_errors()


def test_the_invocation_page_follows_a_running_invocation_live(
    shop: Cluster, browser: Browser, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    page = open_held(shop, browser, release)
    release.touch()
    wait_for_state(page, "SUCCEEDED")
    assert page.text("#output") == '"released"'
    page.check_no_errors()


def test_invocations_are_listed_filtered_paged_and_added_live(
    shop: Cluster, browser: Browser, tmp_path: Path
) -> None:
    page = open_console(browser, f"{shop.console}#/invocations")
    page.choose("form.filters select[name='service']", "shop")
    page.type("form.filters input[name='function']", "linger")
    page.click("form.filters button[type='submit']")
    page.wait_for("location.hash.includes('function=linger')", "the filtered list")
    rows = "table.invocations tbody tr"
    count = f"document.querySelectorAll({rows!r}).length"
    live = [shop.submit("linger", {"seconds": 0}) for _ in range(3)]  # while the page is open
    for invocation_id in live:
        shown = page.visible(f"{rows}[data-id='{invocation_id}'][data-state='SUCCEEDED']")
        page.wait_for(shown, f"{invocation_id} listed as it succeeds")
    for invocation_id in live:  # each once, whether the filtered read came before or after it
        # (a count taken right after the filter could precede that read: CI, 1 run in 4)
        listed = f"document.querySelectorAll(\"{rows}[data-id='{invocation_id}']\").length"
        assert page.evaluate(listed) == 1
    before = page.evaluate(count) - len(live)
    texts = page.evaluate(f"[...document.querySelectorAll({rows!r})].map(r => r.innerText)")
    assert all("shop / linger" in text for text in texts)
    page.screenshot(tmp_path / "invocations.png")
    for _ in range(55):  # more than a page (50) of them, read from the journal
        shop.submit("linger", {"seconds": 0})
    page.goto(f"{shop.console}#/invocations?function=linger")
    page.wait_for(f"{count} === 50", "the first page")
    page.click("#more")
    page.wait_for(f"{count} >= {before + 58}", "the next page")
    page.choose("form.filters select[name='state']", "FAILED")
    page.click("form.filters button[type='submit']")
    none = "document.querySelector('#list-status')?.innerText === 'No invocations match.'"
    page.wait_for(none, "no failed invocation of linger")
    page.check_no_errors()


def test_a_running_invocation_is_cancelled_from_its_page(
    shop: Cluster, browser: Browser, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    page = open_held(shop, browser, release)
    page.click("#cancel")
    wait_for_state(page, "FAILED")
    assert page.text("#error-code") == "CANCELLED"
    assert "cancelled from the console" in page.text("#error-message")
    page.screenshot(tmp_path / "cancelled.png")
    release.touch()
    page.check_no_errors()


def test_an_invocation_is_resubmitted_with_its_input(
    shop: Cluster, browser: Browser, tmp_path: Path
) -> None:
    first = shop.submit("place", {"order": {"item": "pen", "quantity": 4}})
    page = open_console(browser, shop.page_of(first))
    wait_for_state(page, "SUCCEEDED")
    page.click("#resubmit")
    page.wait_for(f"!location.hash.endsWith('{first}')", "the new invocation's page")
    wait_for_state(page, "SUCCEEDED")
    assert '"item": "pen"' in page.text("#input") and '"total": 8' in page.text("#output")
    page.check_no_errors()


def test_a_waiting_workflow_is_sent_a_signal_and_completes(
    shop: Cluster, browser: Browser, tmp_path: Path
) -> None:
    invocation_id = shop.submit("approve", {"order": "o-7"})
    page = open_console(browser, shop.page_of(invocation_id))
    wait_for_state(page, "SUSPENDED")  # it waits for the signal holding no worker
    signal = "#timeline tr[data-kind='signal']"
    page.wait_for(page.visible(f"{signal}[data-state='pending']"), "the pending signal wait")
    assert page.evaluate(
        "[...document.querySelectorAll('#timeline tr[data-kind]')].map(r => r.dataset.kind)"
    ) == ["step", "sleep", "signal"]
    page.screenshot(tmp_path / "workflow-waiting.png")
    page.type("#signal-form input[name='signal-name']", "decision")
    page.type("#signal-form textarea[name='signal-payload']", '{"approved": true}')
    page.click("#send-signal")
    wait_for_state(page, "SUCCEEDED")
    page.wait_for(page.visible(f"{signal}[data-state='completed']"), "the signal received")
    output = page.text("#output")
    assert '"order": "O-7"' in output and '"approved": true' in output
    page.screenshot(tmp_path / "workflow.png")
    page.check_no_errors()


def test_agnt5_dev_prints_the_console_url_where_its_function_is_invoked(
    browser: Browser, tmp_path: Path
) -> None:
    command = [*PYTHON, "-m", "agnt5", "dev", str(HELLO), "--port", "0", "--http-port", "0"]
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL, "bufsize": 0}
    dev = spawn(command, env=agnt5_env(), **output)  # unbuffered: read_line waits on the pipe
    try:
        lines = [read_line(dev, 30) for _ in range(2)]
        assert lines[0].startswith("agnt5 coordinator: grpc="), lines
        assert lines[1].startswith("agnt5 console: http://127.0.0.1:"), lines
        console = lines[1].removeprefix("agnt5 console: ")
        page = open_console(browser, console)
        page.wait_for(page.visible("section.service[data-service='hello'] table.workers"),
                      "the worker of 'hello'")  # fmt: skip
        page.click("a.function-link[href='#/services/hello/hello']")
        page.type("#invoke-form input[name='name']", "Ada")
        page.click("#invoke")
        wait_for_state(page, "SUCCEEDED")
        assert page.text("#output") == '"Hello, Ada!"'
        page.screenshot(tmp_path / "dev.png")
        page.check_no_errors()
    finally:
        stop(dev)


async def journal_finished(data: Path, count: int, failed: int) -> None:
    """A journal in ``data`` of ``count`` invocations of bulk/work, one created each millisecond
    until now, all succeeded but number ``failed`` (TIMEOUT)."""
    store = SqliteStore(data)
    now = int(time.time() * 1000)
    try:
        for number in range(count):
            invocation = Invocation(
                f"bulk-{number:05d}", "bulk", "work", b"", {}, RetryPolicy(),
                created_unix_ms=now - count + number,
            )  # fmt: skip
            store.add(invocation)
            if number == failed:
                invocation.state = InvocationState.FAILED
                invocation.error = InvocationTimeoutError("late").to_dict()
            else:
                invocation.state, invocation.output = InvocationState.SUCCEEDED, b"1"
            store.save(invocation)
    finally:
        store.close()  # commits them all


def test_ten_thousand_invocations_in_the_journal_are_read_a_page_at_a_time(
    browser: Browser, tmp_path: Path
) -> None:
    """A journal of 10,000 finished invocations: the list shows the newest page and the next
    one on request; filtered by state, it finds the one failure 8,000 back."""
    data = tmp_path / "data"
    asyncio.run(journal_finished(data, 10_000, failed=1999))
    with coordinator_process("--data-dir", str(data)) as coordinator:
        page = open_console(browser, f"{coordinator.http_url}/console#/invocations")
        rows = "document.querySelectorAll('table.invocations tbody tr')"
        page.wait_for(f"{rows}.length === 50", "the newest page")
        assert page.evaluate(f"{rows}[0].dataset.id") == "bulk-09999"
        page.click("#more")
        page.wait_for(f"{rows}.length === 100", "the next page")
        assert page.evaluate(f"{rows}[99].dataset.id") == "bulk-09900"
        page.choose("form.filters select[name='state']", "FAILED")
        page.click("form.filters button[type='submit']")
        page.wait_for(f"{rows}.length === 1", "the one failure")
        assert page.evaluate(f"{rows}[0].dataset.id") == "bulk-01999"
        assert "TIMEOUT" in page.evaluate(f"{rows}[0].innerText")
        page.screenshot(tmp_path / "ten-thousand.png")
        page.check_no_errors()


def test_with_a_client_key_the_console_asks_for_it_and_keeps_it_in_the_tab(
    browser: Browser, tmp_path: Path
) -> None:
    args = ("--client-key", CLIENT_KEY, "--worker-key", "worker-key")
    with cluster(tmp_path, *args, worker_key="worker-key") as keyed:
        page = browser.page()
        page.goto(keyed.console)
        page.wait_for(page.visible("dialog.key-dialog input[name='key']"), "the key dialog")
        page.screenshot(tmp_path / "key.png")
        page.type("dialog.key-dialog input[name='key']", CLIENT_KEY)
        page.click("dialog.key-dialog button[type='submit']")
        page.wait_for("document.querySelector('#live.on')", "the event stream to connect")
        page.wait_for(page.visible("section.service[data-service='shop']"), "the service")
        assert page.evaluate("document.cookie") == ""
        assert CLIENT_KEY not in page.evaluate("location.href")
        assert page.evaluate("sessionStorage.getItem('agnt5.key')") == CLIENT_KEY
        assert page.evaluate("localStorage.length") == 0
        page.check_no_errors()


def test_the_gateway_docs_page_lists_the_functions_and_tries_one(
    shop: Cluster, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page()
    page.goto(f"{shop.http}/docs")
    operation = "[id='submit_shop.linger']"
    page.wait_for(page.visible(operation), "the submit operation of shop/linger")
    assert page.text("h1").startswith("agnt5 coordinator")
    page.click(f"{operation} > summary")
    page.type(f"{operation} .try input[name='seconds']", "0")
    page.click(f"{operation} .try > button.primary")
    page.wait_for(page.visible(f"{operation} .response pre"), "the response")
    assert page.text(f"{operation} .response .status") == "202"
    assert '"invocation_id"' in page.text(f"{operation} .response pre")
    page.screenshot(tmp_path / "docs.png")
    page.check_no_errors()
