#!/usr/bin/env python3
"""The dashboard in headless Chromium (docs/dashboard.md), driven by Playwright against the release binary:
sign in by keyboard; a hold-policy CAUGHT handoff waits in the queue with claimed next to actual; "Send back"
fails it; its evaluation marks the mismatching value in the evidence body; a reader sees no respond form; a
packet created through the API appears in the open list without a reload; every page is under 200 KB, asks
nothing of other hosts, names every control, and fits a 400-pixel window.

    scripts/check-dashboard.py target/release/handoffrail SCREENSHOT_DIR

Screenshots of each page go to SCREENSHOT_DIR (CI keeps them; docs/dashboard/ holds a committed set)."""
import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import local_server  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PAGE_BUDGET = 200_000

binary, shots = sys.argv[1], Path(sys.argv[2])
shots.mkdir(parents=True, exist_ok=True)
server, port, _, admin = local_server.start(binary)
base = f"http://127.0.0.1:{port}"


def api(method, path, body=None, key=admin):
    request = urllib.request.Request(f"{base}/api/v1{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"X-API-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or "null")


def key(role):
    return api("POST", "/keys", {"name": f"{role} (browser test)", "role": role})["key"]


def held_handoff(summary):
    """A handoff whose sender claims the order's total is 99.00 (the record says 89.5), held for a human."""
    document = {"order": {"id": 7, "status": "shipped", "total": 89.5}}
    har = {"log": {"version": "1.2", "creator": {"name": "browser-test", "version": "1"}, "entries": [{
        "startedDateTime": "2026-12-07T10:00:00Z", "time": 12,
        "request": {"method": "GET", "url": "https://api.example.com/v1/orders/7"},
        "response": {"status": 200, "content": {"mimeType": "application/json", "text": json.dumps(document)}},
        "_handoffrail": {"run_id": "run-browser", "agent_id": "researcher", "action": "get_order"}}]}}
    record = api("POST", "/records", har)["ids"][0]
    packet = api("POST", "/packets", {
        "metadata": {"source_agent": {"id": "researcher", "name": "Researcher"},
                     "target_agent": {"id": "writer", "name": "Writer"}},
        "context": {"summary": summary},
        "verification": {"run_id": "run-browser", "agent_id": "researcher", "claims": [
            {"action_name": "get_order", "verification_mode": "field_extraction", "json_path": "$.order.total",
             "claimed_value": "99.00", "record_id": record}]}})
    assert packet["status"] == "awaiting_human" and packet["verification"]["outcome"] == "CAUGHT", packet
    return packet


def check_page(page, name):
    """The page's weight and accessible names, then its screenshot."""
    html = page.content()
    assert len(html.encode()) < PAGE_BUDGET, f"{name}: {len(html.encode())} bytes"
    unnamed = page.evaluate("""() => [...document.querySelectorAll(
        'a, button, select, textarea, input:not([type=hidden])')].filter(el =>
        !((el.labels && el.labels.length) || el.getAttribute('aria-label') || el.textContent.trim()
          || el.value)).map(el => el.outerHTML)""")
    assert not unnamed, f"{name}: controls without an accessible name: {unnamed}"
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def sign_in(context, api_key):
    page = context.new_page()
    page.goto(f"{base}/dashboard")
    expect(page).to_have_url(f"{base}/dashboard/sign-in")
    check_page(page, "sign-in")
    # By keyboard: Tab reaches the key field, Enter submits.
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "api_key":
            break
    assert page.evaluate("document.activeElement.id") == "api_key", "Tab reaches the key field"
    page.keyboard.type(api_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Handoffs")).to_be_visible()
    return page


failed = False
try:
    writer, reader = key("writer"), key("reader")
    caught = held_handoff("Bill order 7")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        foreign = []
        context.on("request", lambda request: None if request.url.startswith(base) else foreign.append(request.url))
        page = sign_in(context, writer)
        check_page(page, "handoffs")

        page.get_by_role("link", name="Waiting for a human").click()
        waiting = page.locator("section", has_text="Bill order 7")
        expect(waiting.locator("code", has_text='"99.00"')).to_be_visible()
        expect(waiting.locator("code", has_text="89.5")).to_be_visible()
        expect(waiting.get_by_text("value_mismatch")).to_be_visible()
        check_page(page, "queue")
        waiting.get_by_role("button", name="Send back").click()
        expect(page).to_have_url(f"{base}/dashboard/handoffs/{caught['id']}")
        expect(page.locator(".badge.failed").first).to_be_visible()
        assert api("GET", f"/packets/{caught['id']}")["status"] == "failed"
        check_page(page, "handoff")

        page.get_by_role("link", name="The evaluation and its evidence").click()
        expect(page.locator("mark", has_text="89.5")).to_be_visible()
        check_page(page, "evaluation")
        page.locator("h2 a").first.click()
        expect(page.get_by_text("verified now")).to_be_visible()
        check_page(page, "record")

        # Live: the open list shows a packet created through the API, without a reload.
        page.goto(f"{base}/dashboard/handoffs")
        page.wait_for_timeout(500)  # the event stream connects
        navigations = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        api("POST", "/packets", {"metadata": {"source_agent": {"id": "a", "name": "A"},
                                              "target_agent": {"id": "b", "name": "B"}},
                                 "context": {"summary": "Created while watching"}})
        expect(page.get_by_role("link", name="Created while watching")).to_be_visible(timeout=10_000)
        assert not navigations, f"the page reloaded: {navigations}"

        # A reader sees the queue but no respond form.
        held_handoff("Ship order 8")
        reading = sign_in(browser.new_context(viewport={"width": 1280, "height": 800}), reader)
        reading.get_by_role("link", name="Waiting for a human").click()
        expect(reading.get_by_text("Ship order 8")).to_be_visible()
        expect(reading.get_by_role("button", name="Send back")).to_have_count(0)
        expect(reading.get_by_text("can look but not respond")).to_be_visible()
        check_page(reading, "queue-reader")

        # A 400-pixel window: one column, nothing wider than the window.
        narrow = sign_in(browser.new_context(viewport={"width": 400, "height": 800}), writer)
        narrow.goto(f"{base}/dashboard/handoffs/{caught['id']}")
        width = narrow.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"the page is {width} pixels wide in a 400-pixel window"
        check_page(narrow, "handoff-400px")
        assert not foreign, f"requests to other hosts: {foreign}"
        browser.close()
    print(f"dashboard: every check passed; screenshots in {shots}")
except Exception:
    failed = True
    raise
finally:
    server.terminate()
    server.wait()
    if failed:
        print(f"dashboard: FAILED; screenshots so far in {shots}", file=sys.stderr)
