"""The ASGI app's /docs page in a real headless Chromium: it renders offline from the files in
the package, lists every function, and invokes one through the form its schema generates."""

from __future__ import annotations

from pathlib import Path

from _asgi_support import serve
from _browser import Browser, needs_browser


@needs_browser
def test_the_docs_page_renders_and_invokes_a_function(tmp_path: Path) -> None:
    with serve(tmp_path) as (url, _), Browser(tmp_path / "profile") as browser:
        page = browser.page()
        page.goto(f"{url}/docs")
        page.wait_for(page.visible("#invoke_total"), "the operation of 'total'")
        assert page.text("h1").startswith("web-service")
        page.click("#invoke_total > summary")
        page.click("#invoke_total button[name='prices.__add']")
        page.type("#invoke_total input[name='prices.0']", "1.5")
        page.click("#invoke_total button[name='prices.__add']")
        page.type("#invoke_total input[name='prices.1']", "2")
        page.click("#invoke_total .try > button.primary")
        page.wait_for(page.visible("#invoke_total .response pre"), "the response to show")
        assert page.text("#invoke_total .response .status") == "200"
        assert '"result": 3.5' in page.text("#invoke_total .response pre")
        page.screenshot(tmp_path / "docs.png")
        page.check_no_errors()
    assert (tmp_path / "docs.png").stat().st_size > 10_000
