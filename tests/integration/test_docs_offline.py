"""/docs and /redoc render their operations with no network beyond loopback.

A real ``pushpop serve`` in headless Chromium (Playwright): every request beyond loopback,
or refused by the pages' Content-Security-Policy, is recorded and aborted. The pages must
show the push operation's summary with none tried; a probe fetch to a CDN proves the
recorder works. Screenshots land in the test's tmp folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, sync_playwright

from supervise.server import ServerProcess

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/setup.sh test)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
RECORD_CSP = """window.__refused = [];
document.addEventListener("securitypolicyviolation", e => window.__refused.push(e.blockedURI));
"""
PUSH_SUMMARY = "Push one item or up to 1000 items (atomic, durable)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("docs")
    with ServerProcess(sqlite_path=tmp / "docs.sqlite3", log_path=tmp / "server.log") as s:
        yield s


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[Page, list[str]]]:
    """A Chromium page whose non-loopback requests are aborted and listed."""
    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and (
            urlsplit(url).hostname not in LOOPBACK
        ):
            blocked.append(url)
            route.abort()
        else:
            route.continue_()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 1600})
        context.route("**/*", only_loopback)
        context.add_init_script(RECORD_CSP)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg, blocked
        assert not errors, errors
        assert pg.evaluate("window.__refused") == [], "the page tried what its CSP refused"
        browser.close()


def test_swagger_ui_renders_offline(
    server: ServerProcess, page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    pg, blocked = page
    pg.goto(server.url + "/docs")
    push = pg.get_by_text(PUSH_SUMMARY, exact=True)
    push.wait_for(state="visible", timeout=20_000)
    operations = pg.locator(".opblock").count()
    spec = httpx.get(server.url + "/openapi.json").json()
    served = sum(len(ops) for ops in spec["paths"].values())
    assert operations == served, (operations, served)
    pg.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
    push.click()  # the operation opens: its request body schema comes from the document
    pg.get_by_text("Request body").first.wait_for(state="visible", timeout=10_000)
    pg.screenshot(path=str(tmp_path / "docs-push.png"))
    assert blocked == [], f"/docs tried the network: {blocked}"
    # both recorders work: a fetch the page's CSP refuses, a navigation the route aborts
    probe = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"
    pg.evaluate("url => fetch(url).catch(() => null)", probe)
    assert pg.evaluate("window.__refused") == [probe]
    pg.evaluate("window.__refused = []")
    with pytest.raises(PlaywrightError):
        pg.context.new_page().goto(probe)
    assert blocked == [probe]


def test_redoc_renders_offline(
    server: ServerProcess, page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    pg, blocked = page
    pg.goto(server.url + "/redoc")
    pg.get_by_text(PUSH_SUMMARY).first.wait_for(state="visible", timeout=30_000)
    pg.screenshot(path=str(tmp_path / "redoc.png"))
    assert blocked == [], f"/redoc tried the network: {blocked}"


def test_index_says_where_things_are(
    server: ServerProcess, page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    r = httpx.get(server.url + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    index = r.json()
    for name in ("docs", "redoc", "openapi", "dashboard", "health", "ready", "metrics"):
        assert index[name].startswith("/"), index
    for name in ("docs", "redoc", "openapi", "health", "ready", "metrics"):
        assert httpx.get(server.url + index[name]).status_code == 200, name
    pg, blocked = page
    pg.goto(server.url + "/")  # a browser asks for HTML: a page of links
    pg.get_by_role("link", name="/docs").click()
    pg.get_by_text(PUSH_SUMMARY, exact=True).wait_for(state="visible", timeout=20_000)
    pg.screenshot(path=str(tmp_path / "index-to-docs.png"))
    assert blocked == [], json.dumps(blocked)
