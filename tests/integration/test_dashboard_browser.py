"""``GET /dashboard`` in a real browser: headless Chromium (Playwright) against ``pushpop serve``.

What an operator does, checked through the public API: the queues table, a queue's items
by priority and peek, a redrive, purge asking first, and with API keys the page asking
for one and sending it as a header only. Screenshots of each step land in ``tmp_path``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from supervise.server import ServerProcess

CHROMIUM = "/usr/bin/chromium"
ADMIN_KEY = "dashboard-admin-key-42"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def server(tmp_path: Path, **env: str) -> ServerProcess:
    return ServerProcess(
        store="sqlite",
        sqlite_path=tmp_path / "state.sqlite3",
        log_path=tmp_path / "server.log",
        env=env,
    )


def api(base: str, method: str, path: str, key: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    r = httpx.request(method, base + path, headers=headers, timeout=10, **kw)
    assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def test_queues_queue_view_redrive_and_purge(browser: Browser, tmp_path: Path) -> None:
    with server(tmp_path) as srv:
        base = srv.url
        items = [{"item": {"job": n, "kind": "resize"}, "priority": n % 2 * 2} for n in range(5)]
        api(base, "POST", "/queue/jobs/push", json={"items": items})
        api(base, "POST", "/queue/mail/push", json={"item": {"to": "ops@example.com"}})
        lock = api(base, "POST", "/queue/jobs/pop", params={"depth": 2, "require_ack": "true"})
        api(base, "POST", "/queue/jobs/dead-letter", json={"lock_id": lock["lock_id"]})
        assert api(base, "GET", "/queue/jobs-deadletter")["depth"] == 2

        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/dashboard")
        table = page.locator("#queues tbody")
        expect(table.locator("tr")).to_have_count(3)
        expect(table.locator("tr td:first-child")).to_have_text(["jobs", "jobs-deadletter", "mail"])
        expect(table.locator("tr").first.locator("td").nth(1)).to_have_text("3")
        depth_header = page.locator("th[data-key=depth] button")
        depth_header.click()  # sortable: deepest first, then the other way round
        depth_header.click()
        expect(table.locator("tr td:first-child")).to_have_text(["mail", "jobs-deadletter", "jobs"])
        page.locator("th[data-key=queue_id] button").click()
        page.fill("#prefix", "jobs-")
        expect(table.locator("tr td:first-child")).to_have_text(["jobs-deadletter"])
        page.fill("#prefix", "")
        expect(table.locator("tr")).to_have_count(3)
        page.screenshot(path=tmp_path / "queues.png", full_page=True)

        table.get_by_role("link", name="jobs", exact=True).click()
        expect(page.locator("#q-title")).to_have_text("jobs")
        expect(page.locator("#q-depth")).to_have_text("3")
        by_priority = page.locator("#by-priority tbody tr")
        expect(by_priority).to_have_text([_row("0", "1"), _row("2", "2")])
        peeked = page.locator("#peek li pre")
        expect(peeked).to_have_count(3)
        first = json.loads(peeked.first.inner_text())
        # jobs 0 and 2 were dead-lettered: job 4 (priority 0) is next, then 1 and 3
        assert first == {"job": 4, "kind": "resize"}
        assert [json.loads(t)["job"] for t in peeked.all_inner_texts()] == [4, 1, 3]
        expect(page.locator("#dlq-depth")).to_have_text("2")
        page.screenshot(path=tmp_path / "queue.png", full_page=True)
        assert api(base, "GET", "/queue/jobs")["depth"] == 3  # peek took nothing

        dialogs: list[str] = []

        def answer(accept: bool) -> Any:
            def handler(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.accept() if accept else dialog.dismiss()

            return handler

        page.once("dialog", answer(True))
        page.click("#redrive")
        expect(page.locator("#redrive-status")).to_have_text("moved 2 item(s)")
        assert "jobs-deadletter" in dialogs[-1]
        assert api(base, "GET", "/queue/jobs-deadletter")["depth"] == 0
        assert api(base, "GET", "/queue/jobs")["depth"] == 5
        expect(page.locator("#q-depth")).to_have_text("5")

        page.once("dialog", answer(False))
        page.click("#purge")
        assert "Purge jobs?" in dialogs[-1]
        assert api(base, "GET", "/queue/jobs")["depth"] == 5  # dismissed: nothing purged
        page.once("dialog", answer(True))
        page.click("#purge")
        expect(page.locator("#q-depth")).to_have_text("0")
        assert api(base, "GET", "/queue/jobs")["depth"] == 0
        page.screenshot(path=tmp_path / "purged.png", full_page=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto(base + "/dashboard")
        expect(phone.locator("#queues tbody tr")).to_have_count(1)  # mail only
        wide = phone.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"the page is {wide}px wide on a 390px phone"
        phone.screenshot(path=tmp_path / "phone.png", full_page=True)


def _row(*cells: str) -> str:
    return "".join(cells)


def test_admin_key_prompt_wrong_key_and_header_only(browser: Browser, tmp_path: Path) -> None:
    keys = json.dumps([{"key": ADMIN_KEY, "prefixes": [""], "operations": ["push", "admin"]}])
    with server(tmp_path, PUSHPOP_API_KEYS=keys) as srv:
        api(srv.url, "POST", "/queue/secret-jobs/push", key=ADMIN_KEY, json={"item": {}})
        page: Page = browser.new_page()
        urls: list[str] = []
        auth: list[str | None] = []
        page.on("request", lambda r: urls.append(r.url))
        page.on(
            "request",
            lambda r: auth.append(r.headers.get("authorization")) if "/queues" in r.url else None,
        )
        page.goto(srv.url + "/dashboard")
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()  # 401 without a key: the prompt
        expect(page.locator("#key-error")).to_be_hidden()
        page.screenshot(path=tmp_path / "key-prompt.png")

        page.fill("#key-input", "not-the-right-key")
        page.click("#key-save")
        expect(dialog).to_be_visible()
        expect(page.locator("#key-error")).to_contain_text("refused")
        expect(page.locator("#key-error")).to_contain_text("not valid")
        page.screenshot(path=tmp_path / "wrong-key.png")

        page.fill("#key-input", ADMIN_KEY)
        page.click("#key-save")
        expect(dialog).to_be_hidden()
        expect(page.locator("#queues tbody tr td:first-child")).to_have_text(["secret-jobs"])
        assert page.evaluate("sessionStorage.getItem('pushpop-admin-key')") == ADMIN_KEY
        assert f"Bearer {ADMIN_KEY}" in auth
        assert not any(ADMIN_KEY in u or "not-the-right-key" in u for u in urls), urls
