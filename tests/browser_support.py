"""The browser-test harness shared by tests/test_app_browser*.py: Debian's chromium driven by
Playwright, a module-scoped browser and a page that records console errors and failed requests.

Modules use it as ``pytestmark = BROWSER_MARKS`` (or ``@browser_test`` on the browser tests of a
module that has others) and ``from browser_support import browser, page`` (pytest finds fixtures
imported into a test module); ``wait_until`` polls the page from Python.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]


def browser_test(fn):
    """A test that drives chromium, in a module whose other tests do not (marked `browser`; skipped without chromium)."""
    for mark in BROWSER_MARKS:
        fn = mark(fn)
    return fn


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


class Page:
    """A page that records console errors and failed requests (`failed_requests=False` leaves an
    aborted request to the test)."""

    def __init__(self, browser, width=1600, height=900, ready_timeout=20000, full_page_shots=False,
                 failed_requests=True):
        self.ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        self.page = self.ctx.new_page()
        self.ready_timeout = ready_timeout
        self.full_page_shots = full_page_shots
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        if failed_requests:
            self.page.on("requestfailed", lambda r: self.errors.append(f"requestfailed: {r.url}"))

    def open(self, url):
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=self.ready_timeout)
        return self.page

    def shot(self, name):
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"app-{name}.png"), full_page=self.full_page_shots)

    def close(self):
        self.ctx.close()


@pytest.fixture
def page(browser):
    p = Page(browser)
    yield p
    p.close()


def wait_until(pg, js: str, arg=None, timeout: float = 60.0) -> None:
    """Poll a JS expression or function source (called with `arg`) from Python until it is truthy:
    wait_for_function's polling needs eval, which the app's CSP forbids. The timeout only bounds a failure."""
    end = time.monotonic() + timeout
    while not pg.evaluate(js, arg):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {js}")
        time.sleep(0.05)
