"""Real-Chromium browser tests: a live uvicorn server per test, one headless Chromium per session, axe-core.

Every test in this folder is marked ``browser``. Chromium comes from Debian (``apt-get install chromium``);
without it the tests are skipped locally and fail in CI (``CI`` set), so CI cannot go green by skipping.

Pages get a fresh browser context each (German locale). Console errors and uncaught page errors are
collected per page and fail the test; ``check_a11y(page)`` runs the vendored axe-core and fails on
violations of impact "serious" or "critical". The usual contexts bypass the app's strict CSP so that
axe can be injected; ``tests/browser/test_flows.py`` also loads pages with the real CSP.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.main import create_app
from tests.conftest import free_port, make_settings

HERE = Path(__file__).resolve().parent
AXE_JS = HERE / "vendor" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test below this folder ``browser`` (the hook sees the whole session's items)."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


# --- Chromium and Playwright ------------------------------------------------------------------------------


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "Chromium not found, but CI is set: browser tests must run in CI (apt-get install chromium)"
            )
        pytest.skip("Chromium not found: apt-get install chromium")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


# --- the live server --------------------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    settings: object
    app: object


@pytest.fixture
def live_server(db, smtp_settings) -> Iterator[LiveServer]:
    """The app served by uvicorn on 127.0.0.1 in a background thread, on a clean database."""
    import uvicorn

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(db, base_url=url, **smtp_settings)
    app = create_app(settings, engine=db.engine)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # startup takes a few milliseconds; there is no callback to wait on
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail(f"the live server did not start on {url}")
        time.sleep(0.005)
    yield LiveServer(url=url, settings=settings, app=app)
    server.should_exit = True
    thread.join(timeout=10)


# --- pages, console errors, axe ---------------------------------------------------------------------------


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of one page. ``allow`` expects a message (substring)."""

    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def on_console(self, msg) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if url.endswith("/favicon.ico"):
            return
        self.errors.append(f"console.error: {msg.text} ({url})")

    def on_pageerror(self, exc) -> None:
        self.errors.append(f"pageerror: {exc}")

    def allow(self, substring: str) -> None:
        self.allowed.append(substring)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


_LOGS: dict[int, ConsoleLog] = {}


def console_log(page) -> ConsoleLog:
    return _LOGS[id(page)]


def assert_no_console_errors(page) -> None:
    errors = console_log(page).unexpected()
    if errors:
        pytest.fail("console errors on the page:\n  " + "\n  ".join(errors), pytrace=False)


def check_a11y(page, context: str | None = None) -> None:
    """Run axe-core on the current page; fail on "serious" and "critical" violations."""
    assert_no_console_errors(page)
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    blocking = [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        lines = []
        for v in blocking:
            lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v.get('helpUrl', '')})")
            for node in v["nodes"]:
                lines.append(f"    {' '.join(map(str, node['target']))}: {node.get('failureSummary', '')}")
        where = context or page.url
        pytest.fail(f"accessibility violations on {where}:\n" + "\n".join(lines), pytrace=False)


@pytest.fixture
def new_page(browser, live_server) -> Iterator[Callable[..., object]]:
    """Factory: ``new_page(**context_options)`` opens a page in a fresh context (German, CSP bypassed
    unless ``bypass_csp=False``) whose relative URLs go to the live server. Console errors fail the test."""
    contexts = []
    pages = []

    def make(**options):
        options = {"locale": "de-DE", "bypass_csp": True, "base_url": live_server.url, **options}
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        log = ConsoleLog()
        _LOGS[id(page)] = log
        page.on("console", log.on_console)
        page.on("pageerror", log.on_pageerror)
        pages.append(page)
        return page

    yield make
    errors = []
    for page in pages:
        errors += console_log(page).unexpected()
        _LOGS.pop(id(page), None)
    for context in contexts:
        context.close()
    if errors:
        pytest.fail("console errors during the test:\n  " + "\n  ".join(errors), pytrace=False)


@pytest.fixture
def page(new_page):
    """A page in a new German context with the CSP bypassed (for axe)."""
    return new_page()
