"""The web pages in a real browser: Playwright driving Debian's Chromium (``/usr/bin/chromium``; Playwright's
own browser download does not work offline) against a real my-llm-server on a free port, with conversations
made through the real proxy against the stub upstream of ``tests/test_server.py``.

Screenshots go to pytest's tmp folder (``.../web-screens*/``). Without Chromium or Playwright the tests skip,
except under CI=true or REQUIRE_EMULATORS=1, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from tests.test_server import auth, chat, cli, server_env, start_server, stub_upstream  # noqa: F401 (a fixture)

CHROMIUM = Path("/usr/bin/chromium")
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "carol": "carol-password-333"}
ALICE_QUESTIONS = {"py1": "How do I reverse a list in Python?", "math1": "What is 2+2?", "sql1": "Explain SQL joins"}


def _required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("REQUIRE_EMULATORS") == "1"


def _missing(reason: str) -> None:
    if _required():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright, for the whole module."""
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        _missing("Chromium is missing: apt-get install -y chromium (.ci/run does).")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is missing: pip install -e '.[dev]'.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, stub_upstream):  # noqa: F811 (the fixture imported above)
    """A server with users alice, bob, carol (passwords) and alice's key; alice has three conversations made
    through the proxy. Yields (url, alice's key, env)."""
    root = tmp_path_factory.mktemp("web")
    env = server_env(root, stub_upstream)
    for name, password in PASSWORDS.items():
        added = cli(env, "users", "add", name, "--password-stdin", stdin=password + "\n")
        assert added.returncode == 0, added.stderr
    key = cli(env, "users", "key", "alice").stdout.strip().splitlines()[-1]
    server = start_server(env, root / "server.log")
    try:
        for session, question in ALICE_QUESTIONS.items():
            assert chat(server.url, key, question, session=session).status_code == 200
        yield server.url, key, env
    finally:
        server.stop()


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("web-screens")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page, url: str, name: str, password: str | None = None, next_path: str = "/history") -> None:
    page.goto(f"{url}{next_path}")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password or PASSWORDS[name])
    page.click("button:has-text('Sign in')")


def test_pages_need_sign_in_and_a_wrong_password_is_refused(page, site, screens):
    url, _key, _env = site
    page.goto(f"{url}/history")
    assert page.url == f"{url}/signin?next=%2Fhistory"
    sign_in(page, url, "alice", "not-her-password", next_path="/usage")
    assert page.locator("[role=alert]").inner_text() == "Wrong name or password."
    page.screenshot(path=screens / "signin-refused.png")
    cookie = next(c for c in page.context.cookies() if c["name"] == "my_llm_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]  # plain http here
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.click("button:has-text('Sign in')")
    assert page.url == f"{url}/usage"
    assert "alice" in page.locator("header .who").inner_text()
    # next= may only name a path on this site.
    page.context.clear_cookies()
    sign_in(page, url, "alice", next_path="/signin?next=https://example.org/x")
    assert page.url == f"{url}/history"


def test_a_post_without_the_csrf_token_is_refused(page, site):
    url, key, _env = site
    sign_in(page, url, "alice")
    token = page.locator("form.signout input[name=csrf_token]").input_value()
    assert len(token) >= 40
    for form in ({"id": "math1"}, {"id": "math1", "csrf_token": "x" * len(token)}):
        refused = page.request.post(f"{url}/conversation/delete", form=form)
        assert refused.status == 403 and "CSRF check failed" in refused.text()
    assert page.request.post(f"{url}/signout", form={}).status == 403
    assert page.request.post(f"{url}/signin", form={"name": "alice", "password": PASSWORDS["alice"]}).status == 403
    ids = [c["id"] for c in httpx.get(f"{url}/v1/conversations", headers=auth(key)).json()["data"]]
    assert "math1" in ids  # nothing was deleted
    page.reload()
    assert page.url == f"{url}/history"  # still signed in


def test_history_lists_opens_and_deletes_with_a_confirmation(page, site, screens):
    url, key, _env = site
    sign_in(page, url, "alice")
    titles = page.locator("table.list tbody td:first-child a").all_inner_texts()
    assert titles == [ALICE_QUESTIONS["sql1"], ALICE_QUESTIONS["math1"], ALICE_QUESTIONS["py1"]]  # newest first
    page.screenshot(path=screens / "history.png", full_page=True)
    page.fill("input[name=q]", "python")
    page.click("button:has-text('Search')")
    assert page.locator("table.list tbody td:first-child a").all_inner_texts() == [ALICE_QUESTIONS["py1"]]

    page.goto(f"{url}/history")
    page.click(f"text={ALICE_QUESTIONS['math1']}")
    turns = page.locator("li.turn")
    assert turns.count() == 2
    assert "What is 2+2?" in turns.nth(0).inner_text() and "stub reply" in turns.nth(1).inner_text()
    reply_meta = turns.nth(1).locator(".meta").inner_text()
    assert "gpt-4o-mini" in reply_meta and "7 in / 2 out tokens" in reply_meta and "$0.0000" in reply_meta
    assert "Open its versions" not in page.content()  # a proxy conversation is no code conversation
    page.screenshot(path=screens / "conversation.png", full_page=True)

    page.click("text=Delete…")
    assert "Delete this conversation?" in page.locator("h1").inner_text()
    page.screenshot(path=screens / "confirm-delete.png")
    page.click("button:has-text('Delete')")
    assert page.url == f"{url}/history?deleted=1" and "Conversation deleted." in page.content()
    page.reload()
    assert ALICE_QUESTIONS["math1"] not in page.locator("table.list").inner_text()
    assert page.goto(f"{url}/conversation?id=math1").status == 404
    listed = httpx.get(f"{url}/v1/conversations", headers=auth(key)).json()
    assert "math1" not in [c["id"] for c in listed["data"]] and listed["total"] == 2


def test_usage_page_charts_todays_spend(page, site, screens):
    url, key, _env = site
    sign_in(page, url, "alice", next_path="/usage")
    spent = httpx.get(f"{url}/v1/usage?group_by=day", headers=auth(key)).json()["total"]["cost_usd"]
    assert spent > 0
    for chart in ("#chart-usd svg", "#chart-tokens svg"):
        assert page.locator(chart).count() == 1
    assert page.locator("#chart-usd svg g[id^=bar-usd-0-]").count() == 30  # the last 30 days, one model
    day = datetime.now(timezone.utc).date()
    bar_height = {n: page.locator(f"[id='bar-usd-0-{day - timedelta(days=n)}'] path").bounding_box()["height"]
                  for n in (0, 1)}  # fmt: skip
    assert bar_height[0] > 50 and bar_height[1] < 1  # today's spend is a bar; yesterday had none
    today = page.locator("#today .value").inner_text()
    assert today.startswith("$") and float(today[1:]) == pytest.approx(spent, rel=1e-3, abs=2e-6)
    compare = page.locator("#compare").inner_text()
    assert "$4.05/hour" in compare and re.search(r"break even at [\d,]+ requests/hour", compare)
    live = httpx.get(f"{url}/v1/conversations", headers=auth(key)).json()["total"]
    assert page.locator("#top tbody tr").count() == live  # every live conversation cost something
    page.screenshot(path=screens / "usage.png", full_page=True)

    page.fill("input[name=gpu]", "1.5")
    page.click("button:has-text('Show')")
    assert "$1.5/hour" in page.locator("#compare").inner_text()
    bad = page.goto(f"{url}/usage?from=2026-13-01")
    assert bad.status == 400 and "is not a date" in page.locator("[role=alert]").inner_text()
    backwards = page.goto(f"{url}/usage?from=2026-02-01&to=2026-01-01")
    assert backwards.status == 400 and "after it ends" in page.locator("[role=alert]").inner_text()


def test_a_second_user_sees_none_of_the_first_users_conversations(page, site, screens):
    url, _key, _env = site
    sign_in(page, url, "bob")
    assert "No conversations yet" in page.locator("main").inner_text()
    page.screenshot(path=screens / "bob-history.png")
    for target in ("/conversation?id=py1", "/conversation?ns=user-alice&id=py1", "/conversation/delete?id=py1"):
        response = page.goto(f"{url}{target}")
        assert response.status == 404 and "How do I reverse" not in page.content()
    page.goto(f"{url}/usage")
    assert page.locator("#today .value").inner_text() == "$0"
    assert "No conversations in this range." in page.content()


def test_sign_out_and_a_disabled_users_cookie_stops_working(page, site):
    url, _key, env = site
    sign_in(page, url, "carol")
    page.click("button:has-text('Sign out')")
    assert page.url == f"{url}/signin"
    page.goto(f"{url}/history")
    assert page.url.startswith(f"{url}/signin?next=")
    sign_in(page, url, "carol")
    assert page.url == f"{url}/history"
    assert cli(env, "users", "disable", "carol").returncode == 0
    page.reload()
    assert page.url == f"{url}/signin?next=%2Fhistory"
    sign_in(page, url, "carol")
    assert page.locator("[role=alert]").inner_text() == "Wrong name or password."


def test_the_cookie_is_secure_over_https_and_the_key_survives_restarts(site, tmp_path):
    url, _key, _env = site
    plain = httpx.get(f"{url}/signin").headers["set-cookie"].lower()
    assert "httponly" in plain and "samesite=lax" in plain and "secure" not in plain
    # uvicorn takes the scheme from X-Forwarded-Proto when the proxy is local (a TLS-terminating reverse proxy).
    proxied = httpx.get(f"{url}/signin", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"].lower()
    assert "; secure" in proxied

    from my_llm import ConfigError
    from server.config import ServerSettings
    from server.web.sessions import key_file, secret_key

    config = ServerSettings.from_env({"MESSAGE_HISTORY": str(tmp_path / "data" / "message_history")})
    first = secret_key(config)
    assert len(first) >= 32 and secret_key(config) == first  # made once, then read back
    assert oct(key_file(config).stat().st_mode & 0o777) == "0o600"
    assert secret_key(ServerSettings.from_env({**os.environ, "MY_LLM_SECRET_KEY": "k" * 40})) == "k" * 40
    with pytest.raises(ConfigError, match="shorter than 32"):
        ServerSettings.from_env({"MY_LLM_SECRET_KEY": "short"})


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/usage?from=2026-01-01", "/usage?from=2026-01-01"),
        ("https://example.org/", "/history"),
        ("//example.org/x", "/history"),
        ("/\\example.org", "/history"),
        ("/x\r\nSet-Cookie: a=b", "/history"),
        ("history", "/history"),
        (None, "/history"),
    ],
)
def test_next_is_a_local_path(target, expected):
    from server.web.auth import safe_next

    assert safe_next(target) == expected


def test_register_only_when_open_registration_is_on(page, site, tmp_path, stub_upstream):  # noqa: F811
    url, _key, _env = site
    assert page.goto(f"{url}/register").status == 404  # off by default
    env = server_env(tmp_path, stub_upstream, MY_LLM_OPEN_REGISTRATION="on")
    server = start_server(env, tmp_path / "server.log")
    try:
        page.goto(f"{server.url}/signin")
        page.click("text=Register")
        page.fill("input[name=name]", "dora")
        page.fill("input[name=password]", "dora-password-1")
        page.fill("input[name=password2]", "dora-password-2")
        page.click("button:has-text('Create my account')")
        assert page.locator("[role=alert]").inner_text() == "The two passwords differ."
        page.fill("input[name=password]", "dora-password-1")
        page.fill("input[name=password2]", "dora-password-1")
        page.click("button:has-text('Create my account')")
        assert page.url == f"{server.url}/history" and "dora" in page.locator("header .who").inner_text()
        assert "dora\t" in cli(env, "users", "list").stdout
    finally:
        server.stop()


def test_the_request_rate_starts_at_the_first_request_of_the_range():
    from datetime import date, datetime, timezone

    from my_llm import Record
    from server.web.usage_data import comparison

    now = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    replies = [
        Record.new(
            "user-a",
            "s",
            "ai",
            "x",
            usage={"cost_usd": 0.01},
            created_at=datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc),
        )
        for _ in range(4)
    ]
    fresh = comparison(replies, date(2026, 11, 1), date(2026, 11, 30), 4.05, now)
    assert round(fresh.hours, 2) == 2.0 and round(fresh.requests_per_hour, 2) == 2.0  # 4 requests since 10:00
    idle = comparison([], date(2026, 11, 1), date(2026, 11, 30), 4.05, now)
    assert round(idle.hours) == 29 * 24 + 12 and idle.requests_per_hour == 0
