"""The memory, repos and eval pages in a real browser: Playwright driving Debian's Chromium (the fixtures of
``tests/test_web.py``) against a real my-llm-server on a free port whose chat model is the real llama.cpp server
(SmolLM2, ``llama_server``) and whose embedder is the local ONNX MiniLM. The eval run is made by the real
``my-llm eval`` CLI against the scripted OpenAI-compatible upstream (outputs must be known to fail an
assertion), writing to the server's ``MESSAGE_HISTORY``.

Screenshots go to pytest's tmp folder (``.../web-pages2-screens*/``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.test_eval_upstream import scripted_upstream
from tests.test_server import auth, cli, server_env, start_server
from tests.test_web import browser, page, sign_in  # noqa: F401 (fixtures)

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22"}
GEOMETRY = (
    '"""Shapes and their areas."""\n\nimport math\n\n\n'
    "class Circle:\n"
    '    """A circle given by its radius in metres."""\n\n'
    "    def __init__(self, radius: float) -> None:\n"
    "        self.radius = radius\n\n"
    "    def area(self) -> float:\n"
    '        """Area in square metres: pi times the radius squared."""\n'
    "        return math.pi * self.radius ** 2\n"
)
EVAL_CONFIG = """description: Greetings
prompts:
  - 'Say hello in {{language}}'
providers:
  - id: openai:scripted-model
    label: scripted
    config: {apiBaseUrl: '%s'}
tests:
  - vars: {language: French}
    assert: [{type: contains, value: Bonjour}]
  - vars: {language: Spanish}
    assert: [{type: contains, value: Hola}]
"""


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("web-pages2-screens")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A repository root holding ``tinyrepo`` (with a symlinked file and folder leading outside it and a
    ``.env``), and a folder outside the root with a secret. Returns (root, repo, outside)."""
    base = tmp_path_factory.mktemp("pages2-folders")
    root, outside = base / "roots", base / "outside"
    repo = root / "tinyrepo"
    (repo / "pkg").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.py").write_text("PASSWORD = 'hunter2'\n", encoding="utf-8")
    (repo / "pkg" / "__init__.py").write_text('"""The tiny package."""\n', encoding="utf-8")
    (repo / "pkg" / "geometry.py").write_text(GEOMETRY, encoding="utf-8")
    (repo / "README.md").write_text("# Tiny repo\n\nComputes areas of circles with `Circle(2).area()`.\n")
    (repo / ".env").write_text("OPENAI_API_KEY=sk-not-a-real-key-hunter2\n", encoding="utf-8")
    (repo / "link_out.py").symlink_to(outside / "secret.py")
    (repo / "linkdir").symlink_to(outside, target_is_directory=True)
    return root, repo, outside


@pytest.fixture(scope="module")
def site(tmp_path_factory, llama_server, folders):
    """A server over the llama.cpp server with users alice and bob (passwords and keys) and one repository
    root. Yields (url, keys, env)."""
    root, _repo, _outside = folders
    base = tmp_path_factory.mktemp("pages2")
    env = server_env(base, llama_server, MY_LLM_REPO_ROOTS=str(root), MY_LLM_RATE_LIMIT="1000/minute",
                     MY_LLM_EVAL_CACHE=str(base / "eval-cache"))  # fmt: skip
    keys = {}
    for name, password in PASSWORDS.items():
        added = cli(env, "users", "add", name, "--password-stdin", stdin=password + "\n")
        assert added.returncode == 0, added.stderr
        keys[name] = cli(env, "users", "key", name).stdout.strip().splitlines()[-1]
    server = start_server(env, base / "server.log")
    try:
        yield server.url, keys, env
    finally:
        server.stop()


def _chat(url: str, key: str, text: str, session: str) -> None:
    """One short exchange through the logging proxy (both turns land in the key's namespace)."""
    body = {"model": "local", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, headers={**auth(key), "X-Session-Id": session},
                       timeout=120)  # fmt: skip
    assert reply.status_code == 200, reply.text


def _sign_in(tab, url: str, name: str, next_path: str) -> None:
    sign_in(tab, url, name, PASSWORDS[name], next_path=next_path)
    assert tab.url == f"{url}{next_path}"


def test_memory_answer_cites_my_messages_and_links_to_their_conversation(page, site, screens):  # noqa: F811
    url, keys, _env = site
    _chat(url, keys["alice"], "My cat is called Zanzibar and she loves sardines.", "pets")
    _chat(url, keys["alice"], "Remind me to water the tomatoes on Sunday.", "garden")
    _chat(url, keys["bob"], "My dog is called Biscuit and my cat is called Whiskers.", "bob-pets")

    _sign_in(page, url, "alice", "/memory")
    page.fill("textarea[name=question]", "What is my cat called?")
    _ask(page, "button:has-text('Ask')")
    assert page.url == f"{url}/memory" and page.locator("#answer pre").inner_text().strip()
    cited = page.locator("#sources li")
    texts = cited.all_inner_texts()
    assert texts and all("Biscuit" not in text and "Whiskers" not in text for text in texts)
    zanzibar = cited.filter(has_text="Zanzibar").first
    link = zanzibar.locator("a.conversation-link")
    assert link.get_attribute("href") == "/conversation?ns=user-alice&id=pets"
    page.screenshot(path=screens / "memory-alice.png", full_page=True)
    link.click()
    assert page.url == f"{url}/conversation?ns=user-alice&id=pets"
    assert "My cat is called Zanzibar" in page.locator("li.turn").first.inner_text()

    # Bob asks the same: only his own messages are cited, and alice's conversation is a 404 for him.
    page.context.clear_cookies()
    _sign_in(page, url, "bob", "/memory")
    page.fill("textarea[name=question]", "What is my cat called?")
    _ask(page, "button:has-text('Ask')")
    main = page.locator("main").inner_text()
    assert "Whiskers" in main and "Zanzibar" not in main and "tomatoes" not in main
    hrefs = page.locator("#sources a.conversation-link").evaluate_all("links => links.map(a => a.href)")
    assert hrefs and all("ns=user-bob&" in href for href in hrefs)
    page.screenshot(path=screens / "memory-bob.png", full_page=True)
    assert page.goto(f"{url}/conversation?ns=user-alice&id=pets").status == 404
    assert "Zanzibar" not in page.content()

    # Bad input is a page with the reason, and a form without the CSRF token is refused.
    empty = page.request.post(f"{url}/memory", form={"question": " ", "csrf_token": _csrf(page)})
    assert empty.status == 400 and "Write a question" in empty.text()
    assert page.request.post(f"{url}/memory", form={"question": "cat?"}).status == 403


def _ask(tab, button: str) -> None:
    """Click ``button`` and wait for the answer's page: the bundled model on a busy machine may take a minute."""
    with tab.expect_navigation(timeout=240_000):
        tab.click(button, no_wait_after=True)
    tab.wait_for_selector("#answer", timeout=10_000)


def _csrf(tab) -> str:
    return tab.locator("form.signout input[name=csrf_token]").input_value()


def test_repos_register_index_ask_and_open_the_cited_lines(page, site, folders, screens):  # noqa: F811
    url, _keys, _env = site
    root, repo, outside = folders
    _sign_in(page, url, "alice", "/repos")
    assert "No repository registered yet." in page.content()

    for refused, status in ((str(outside), 403), (f"{root}/tinyrepo/../../outside", 403), ("tinyrepo", 400)):
        page.fill("input[name=path]", refused)
        with page.expect_response(lambda r: r.url == f"{url}/repos" and r.request.method == "POST") as posted:
            page.click("button:has-text('Register')")
        assert posted.value.status == status
        alert = page.locator("[role=alert]").inner_text()
        assert ("outside the repository roots" if status == 403 else "absolute path") in alert
    page.screenshot(path=screens / "repos-refused.png", full_page=True)

    page.fill("input[name=path]", str(repo))
    page.click("button:has-text('Register')")
    assert re.fullmatch(rf"{url}/repos\?registered=\d+", page.url)
    row = page.locator("#repos tbody tr").first
    repo_id = int(row.get_attribute("data-id"))
    assert "tinyrepo" in row.inner_text() and row.get_attribute("data-state") in ("queued", "indexing", "ready")
    # repos.js polls the progress and reloads the page once it is ready: no reload by hand.
    page.wait_for_selector(f"#repo-{repo_id}[data-state=ready] form.ask-repo", timeout=240_000)
    assert page.locator(f"#repo-{repo_id} .progress").inner_text() == "3 / 3"  # two .py files and README.md
    page.screenshot(path=screens / "repos-ready.png", full_page=True)

    page.fill(f"#repo-{repo_id} input[name=question]", "How is the area of a Circle computed?")
    _ask(page, f"#repo-{repo_id} button:has-text('Ask')")
    sources = page.locator("#sources a.source-link")
    citations = sources.all_inner_texts()
    assert citations and all(re.fullmatch(r".+:L\d+-\d+", text) for text in citations)
    page.screenshot(path=screens / "repo-answer.png", full_page=True)
    first = next(n for n, text in enumerate(citations) if text.startswith("pkg/geometry.py:"))
    path, start, end = re.fullmatch(r"(.+):L(\d+)-(\d+)", citations[first]).groups()
    sources.nth(first).click()
    assert page.url.startswith(f"{url}/repos/{repo_id}/file?") and page.url.endswith(f"#L-{start}")
    assert page.locator("h1").inner_text() == path
    marked = page.locator(".source-view .hll")
    assert marked.count() == int(end) - int(start) + 1
    lines = GEOMETRY.splitlines()
    for n in range(marked.count()):  # each highlighted line is the cited one, its number first
        shown = marked.nth(n).inner_text().strip()
        assert shown.startswith(str(int(start) + n)) and shown.endswith(lines[int(start) + n - 1])
    assert page.locator(".source-view .linenos").count() == len(lines)  # the whole (short) file is shown
    page.screenshot(path=screens / "repo-file.png", full_page=True)


def test_the_file_view_refuses_dotdot_and_symlink_escapes(page, site, folders):  # noqa: F811
    url, keys, _env = site
    _root, repo, outside = folders
    registered = httpx.post(f"{url}/v1/repos", json={"path": str(repo)}, headers=auth(keys["bob"]), timeout=30)
    assert registered.status_code in (200, 201), registered.text
    repo_id = registered.json()["id"]
    _sign_in(page, url, "bob", "/repos")
    view = f"{url}/repos/{repo_id}/file"
    assert page.goto(f"{view}?path=pkg/geometry.py&start=6&end=7").status == 200
    marked = page.locator(".source-view .hll")
    assert [line.strip() for line in marked.all_inner_texts()] == [
        "6class Circle:",
        '7    """A circle given by its radius in metres."""',
    ]
    assert page.locator(".source-view .linenos").count() == len(GEOMETRY.splitlines())  # the rest is shown, plain
    attacks = {
        "../outside/secret.py": 400,
        "pkg/../../outside/secret.py": 400,
        "..": 400,
        str(outside / "secret.py"): 400,  # absolute
        "/etc/passwd": 400,
        "link_out.py": 403,  # a symlink inside the repo to a file outside it
        "linkdir/secret.py": 403,  # through a symlinked folder
        ".env": 403,  # a secrets file inside the repo
        "pkg/missing.py": 404,
        "pkg": 404,  # a folder
    }
    for path, status in attacks.items():
        response = page.request.get(view, params={"path": path})
        body = response.text()
        assert response.status == status, (path, response.status, body[:300])
        assert "hunter2" not in body and "Traceback" not in body, path
        assert page.goto(f"{view}?path={path}").status == status
        assert page.locator("[role=alert]").inner_text()  # the reason, on the error page
    past = page.request.get(view, params={"path": "pkg/geometry.py", "start": "999"})
    assert past.status == 400 and "past its end" in past.text()
    assert page.request.get(f"{url}/repos/999/file", params={"path": "README.md"}).status == 404


def test_eval_page_lists_a_cli_run_and_highlights_the_failing_assertion(page, site, screens, tmp_path):  # noqa: F811
    url, _keys, env = site
    rules = [{"match": "French", "reply": "Bonjour le monde"}, {"match": "Spanish", "reply": "Ola mundo"}]
    with scripted_upstream(tmp_path, rules) as upstream:
        config = tmp_path / "greetings.yaml"
        config.write_text(EVAL_CONFIG % upstream, encoding="utf-8")
        results = tmp_path / "results.json"
        ran = subprocess.run([str(Path(sys.executable).with_name("my-llm")), "eval", str(config), "--output",
                              str(results)], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ran.returncode == 1, ran.stdout + ran.stderr  # one failing assertion
    cli_run = json.loads(results.read_text())
    assert cli_run["failures"] == 1

    _sign_in(page, url, "bob", "/eval")  # eval runs are team-wide: bob sees a run he did not make
    row = page.locator("#runs tbody tr", has_text=cli_run["run_id"][:8])
    assert row.count() == 1 and "eval-greetings" in row.inner_text()
    assert row.locator("td").nth(3).inner_text() == "2" and row.locator("td").nth(4).inner_text() == "1"
    page.screenshot(path=screens / "eval-runs.png", full_page=True)
    row.locator("a").click()
    assert page.url == f"{url}/eval/run?ns=eval-greetings&id={cli_run['run_id']}"
    assert page.locator("#failing").inner_text() == "1 failing"
    assert page.locator("#summary tbody td").nth(2).inner_text() == "1/2"
    report = page.frame_locator("#report")
    failing = report.locator("td.fail")
    assert failing.count() == 1 and "Ola mundo" in failing.inner_text()
    assert report.locator("li.bad").inner_text() == "contains 0: does not contain 'Hola'"
    assert report.locator("td.pass").count() == 1 and "Bonjour le monde" in report.locator("td.pass").inner_text()
    red = report.locator("td.fail").evaluate("cell => getComputedStyle(cell).backgroundColor")
    assert red == "rgb(255, 236, 236)"  # the report's .fail background
    page.screenshot(path=screens / "eval-run.png", full_page=True)

    # The page's run is the CLI's: same cases, verdicts, assertion scores and outputs.
    download = page.request.get(f"{url}/eval/run/report.html", params={"ns": "eval-greetings", "id": cli_run["run_id"]})
    assert download.status == 200 and "attachment" in download.headers["content-disposition"]
    assert "default-src 'none'" in download.headers["content-security-policy"]
    from evaluation.report import run_from_records, to_json
    from my_llm import ChatHistory, Settings

    settings = Settings.from_env(env)
    records = [r for r in ChatHistory("eval-greetings", settings=settings).records()
               if r.session_id == cli_run["run_id"]]  # fmt: skip
    rebuilt = to_json(run_from_records(records, "eval-greetings"))

    def cases(data: dict) -> dict:
        return {(r["prompt_id"], r["provider"], r["test_index"]): (r["pass"], r["assertions"], r["response"]["output"],
                r["vars"], r["description"], r["response"]["latency_ms"]) for r in data["results"]}  # fmt: skip

    assert cases(rebuilt) == cases(cli_run) and rebuilt["failures"] == 1

    # The eval page reads eval-* namespaces only: no user's conversation through it.
    for target in ("/eval/run?ns=user-alice&id=pets", "/eval/run?ns=eval-greetings&id=nope", "/eval/run?ns=x&id="):
        assert page.goto(f"{url}{target}").status in (404, 422), target
        assert "Zanzibar" not in page.content()
