"""The browser-test harness shared by tests/test_app_browser*.py: Debian's chromium driven by
Playwright, a module-scoped browser and a page that records console errors and failed requests.

Modules use it as ``pytestmark = BROWSER_MARKS`` and ``from browser_support import browser, page``
(pytest finds fixtures imported into a test module).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]


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
    """A page that records console errors and failed requests."""

    def __init__(self, browser, width=1600, height=900, ready_timeout=20000, full_page_shots=False):
        self.ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        self.page = self.ctx.new_page()
        self.ready_timeout = ready_timeout
        self.full_page_shots = full_page_shots
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
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
