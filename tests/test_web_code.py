"""The "New code" page in a real browser: Playwright driving Debian's Chromium against a real my-llm-server on a
free port, whose model is a scripted OpenAI-compatible upstream that streams known answers
(:mod:`tests.scripted_upstream`), with the real test sandbox (bubblewrap) and the real PlantUML jar.

Sign in; write code against a test file and see attempt 1 fail (with its output) and attempt 2 pass as they
stream; regenerate; send feedback and see version 2; a conversation's page lists its versions; a PlantUML
diagram appears as a picture beside its source, with its .svg and .puml downloads. Screenshots go to pytest's
tmp folder (``.../code-screens*/``). Without Chromium, Playwright or PlantUML the tests skip, except under
CI=true or REQUIRE_EMULATORS=1, where they fail.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.scripted_upstream import ScriptedUpstream
from tests.test_server import cli, server_env, start_server
from tests.test_server_code import ADD_TESTS, RIGHT_ADD, SQUARE, SQUARE_SET, WRONG_ADD
from tests.test_web import PASSWORDS, browser, sign_in  # noqa: F401 (browser is a fixture)

BROKEN = "```plantuml\n@startuml\nactor Customer\nCustomer -> Shop: order book\nfoo bar {{\n@enduml\n```"
FIXED = (
    "```plantuml\n@startuml\nactor Customer\nCustomer -> Shop: order book\nShop -> Stock: check\n"
    "Shop --> Customer: ship the book\n@enduml\n```"
)
SCRIPT = [
    {"match": "use pow instead", "replies": [SQUARE_SET]},
    {"match": "See the testing errors above", "replies": [RIGHT_ADD]},
    {"match": "adds two numbers", "replies": [WRONG_ADD]},
    {"match": "squares a number", "replies": [SQUARE]},
    {"match": "PlantUML could not render", "replies": [FIXED]},
    {"match": "Draw this as a PlantUML diagram", "replies": [BROKEN]},
]
WAIT_MS = 90_000


@pytest.fixture(scope="module")
def upstream():
    with ScriptedUpstream(SCRIPT) as scripted:
        yield scripted


@pytest.fixture(scope="module")
def site(tmp_path_factory, upstream):
    """A server over the scripted upstream with users alice and bob (passwords of ``tests/test_web.py``)."""
    root = tmp_path_factory.mktemp("web-code")
    env = server_env(root, upstream.url)
    for name in ("alice", "bob"):
        added = cli(env, "users", "add", name, "--password-stdin", stdin=PASSWORDS[name] + "\n")
        assert added.returncode == 0, added.stderr
    server = start_server(env, root / "server.log")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("code-screens")


@pytest.fixture
def page(browser):  # noqa: F811 (the fixture imported above)
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True,
                                  permissions=["clipboard-read", "clipboard-write"])  # fmt: skip
    try:
        yield context.new_page()
    finally:
        context.close()


def ask(page, description: str, tests: str | None = None, target: str = "python", module: str = "solution") -> None:
    page.fill("textarea[name=description]", description)
    page.select_option("select[name=target]", target)
    if tests is not None:
        page.fill("textarea[name=tests]", tests)
        page.fill("input[name=module]", module)
    page.click("button:has-text('Write it')")


def version(page, number: int):
    """The finished version ``number`` (waits for it)."""
    locator = page.locator(f"article.version[data-version='{number}']:not(.streaming)")
    locator.wait_for(timeout=WAIT_MS)
    return locator


def test_code_against_a_test_file_streams_its_attempts_then_regenerates(page, site, upstream, screens):
    url = site
    sign_in(page, url, "alice", next_path="/code")
    assert page.url == f"{url}/code"
    models = page.locator("select[name=model] option").all_inner_texts()
    assert models[0] == "openai:gpt-4o-mini (default)" and "openai:scripted-coder" in models  # upstream's list
    ask(page, "A function add(a, b) that adds two numbers.", ADD_TESTS, module="adder")
    first = page.locator("li.attempt").first
    first.wait_for(timeout=WAIT_MS)  # attempt 1's result shows while attempt 2 is still to come
    assert "1 passed, 1 failed" in first.inner_text() and "assert -1 == 5" in first.locator("pre.output").inner_text()
    one = version(page, 1)
    assert "tests passed" in one.locator("h2 .badge").inner_text()
    attempts = one.locator("li.attempt .verdict").all_inner_texts()
    assert attempts == ["1 passed, 1 failed", "2 passed, 0 failed"]
    code = one.locator(".source .highlight")
    assert code.inner_text().strip() == "def add(a, b):\n    return a + b"
    assert code.locator("span.k", has_text="def").count() == 1  # highlighted by Pygments
    usage = one.locator("p.usage").inner_text()
    assert usage.startswith("This request: ") and "out tokens · 2 requests · $" in usage
    assert page.locator("#total").inner_text().startswith("Conversation total: ")
    one.locator("button.copy").click()
    assert page.evaluate("navigator.clipboard.readText()").strip() == "def add(a, b):\n    return a + b"
    page.screenshot(path=screens / "code-with-tests.png", full_page=True)

    page.click("#regenerate")
    two = version(page, 2)
    assert "tests passed" in two.locator("h2 .badge").inner_text() and two.locator("li.attempt").count() == 2
    assert page.locator("article.version").count() == 2  # version 1 stays visible
    assert "4 requests" in page.locator("#total").inner_text()
    page.screenshot(path=screens / "code-regenerated.png", full_page=True)


def test_feedback_makes_version_2_and_the_conversation_page_lists_both(page, site, upstream, screens):
    url = site
    sign_in(page, url, "alice", next_path="/code")
    ask(page, "A function that squares a number.")
    one = version(page, 1)
    assert "untested" in one.locator(".badge").inner_text() and "x * x" in one.locator(".source").inner_text()
    page.fill("#feedback-form textarea[name=text]", "use pow instead")
    page.click("button:has-text('Send feedback')")
    two = version(page, 2)
    assert "return pow(x, 2)" in two.locator(".source").inner_text()
    assert "use pow instead" in upstream.received[-1]["messages"][-1]["content"]
    assert "x * x" in upstream.received[-1]["messages"][-1]["content"]  # the previous version went with it
    assert page.locator("#feedback-form textarea").input_value() == ""
    page.screenshot(path=screens / "code-feedback.png", full_page=True)

    page.click("#conversation-link")
    assert page.url.startswith(f"{url}/code/")
    listed = page.locator("article.version")
    assert listed.count() == 2
    assert "After feedback" in listed.nth(1).inner_text() and "use pow instead" in listed.nth(1).inner_text()
    assert "2 requests" in page.locator("#total").inner_text()
    page.screenshot(path=screens / "code-conversation.png", full_page=True)
    page.click("#regenerate")  # the conversation's page continues it too
    assert "x * x" in version(page, 3).locator(".source").inner_text()

    code_page = page.url.split("?")[0]  # History opens it as turns, with a way back to its versions
    conversation = code_page.rsplit("/", 1)[1]
    page.goto(f"{url}/conversation?id={conversation}")
    page.click("text=Open its versions on the code page")
    assert page.url.split("?")[0] == code_page and page.locator("article.version").count() == 3


def test_a_diagram_appears_beside_its_source_with_downloads(page, site, plantuml, screens):
    url = site
    sign_in(page, url, "alice", next_path="/code")
    assert page.locator("textarea[name=tests]").is_visible()
    page.select_option("select[name=target]", "plantuml")
    assert not page.locator("textarea[name=tests]").is_visible()  # tests are for Python
    ask(page, "A customer orders a book; the shop checks the stock and ships it.", target="plantuml")
    one = version(page, 1)
    assert "rendered" in one.locator(".badge").inner_text()
    verdicts = one.locator("li.attempt .verdict").all_inner_texts()
    assert verdicts == ["did not render: Syntax Error? at line 4", "rendered"]
    assert "foo bar {{" in one.locator("li.attempt pre.output").inner_text()
    picture = one.locator("figure.picture img")
    picture.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=picture.element_handle())
    assert "Shop -> Stock: check" in one.locator(".source").inner_text()
    picture_box, source_box = picture.bounding_box(), one.locator(".source").bounding_box()
    assert picture_box["x"] + picture_box["width"] <= source_box["x"]  # side by side
    page.screenshot(path=screens / "diagram.png", full_page=True)

    with page.expect_download() as svg_download:
        one.locator("a.download-svg").click()
    svg = Path(svg_download.value.path()).read_text()
    assert svg_download.value.suggested_filename == "diagram-v1.svg" and "<svg" in svg and "ship the book" in svg
    with page.expect_download() as puml_download:
        one.locator("a.download-puml").click()
    assert Path(puml_download.value.path()).read_text().startswith("@startuml\nactor Customer")

    page.click("#conversation-link")  # the conversation's page draws the picture from the logged source
    shown = page.locator("article.version figure.picture img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=shown.element_handle(),
                           timeout=WAIT_MS)  # fmt: skip
    # The SVG is the picture's document: an <svg> of the diagram, served so that no script in it can run.
    served = page.request.get(url + shown.get_attribute("src"))
    assert served.headers["content-type"] == "image/svg+xml" and "default-src 'none'" in served.headers[
        "content-security-policy"]  # fmt: skip
    assert "<svg" in served.text() and "order book" in served.text()
    page.screenshot(path=screens / "diagram-conversation.png", full_page=True)


def test_streams_need_the_session_and_its_csrf_header_and_stay_private(page, site, upstream):
    url = site
    body = {"description": "A function that squares a number."}
    assert httpx.post(f"{url}/code/stream", json=body, follow_redirects=False).status_code == 303  # to /signin
    sign_in(page, url, "alice", next_path="/code")
    sent = len(upstream.received)
    for headers in ({}, {"X-CSRF-Token": "x" * 43}):
        refused = page.request.post(f"{url}/code/stream", data=body, headers=headers)
        assert refused.status == 403 and "CSRF check failed" in refused.json()["error"]["message"]
    token = page.locator("#code-form").get_attribute("data-csrf")
    poem = page.request.post(f"{url}/code/stream", data={"description": "Write a poem about the sea."},
                             headers={"X-CSRF-Token": token})  # fmt: skip
    assert poem.status == 422 and "coding task" in poem.json()["error"]["message"]
    assert len(upstream.received) == sent  # nothing reached the model
    ask(page, "A function that squares a number.")
    version(page, 1)
    conversation = page.locator("#answer").get_attribute("data-conversation")
    page.context.clear_cookies()
    sign_in(page, url, "bob", next_path="/code")
    for target in (f"/code/{conversation}", f"/code/{conversation}?ns=user-alice", f"/code/{conversation}/v1.puml"):
        response = page.goto(f"{url}{target}")
        assert response.status == 404 and "squares" not in page.content()
    page.goto(f"{url}/code")
    token = page.locator("#code-form").get_attribute("data-csrf")
    stolen = page.request.post(
        f"{url}/code/{conversation}/regenerate/stream?ns=user-alice", headers={"X-CSRF-Token": token}
    )
    assert stolen.status == 404
    page.fill("textarea[name=description]", "Write a poem about the sea.")
    page.click("button:has-text('Write it')")
    alert = page.locator("#stream-error")
    alert.wait_for()
    assert "does not look like a coding task" in alert.inner_text()
