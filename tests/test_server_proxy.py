"""The logging proxy against the real llama.cpp OpenAI-compatible server, through the official ``openai``
client pointed at a real my-llm-server: non-streaming and streaming, both turns on disk with usage."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.test_server import log_lines, new_key, server_env, start_server

pytestmark = pytest.mark.slow


@pytest.fixture
def proxy(tmp_path, llama_server):
    env = server_env(tmp_path, llama_server)
    key = new_key(env, "alice")
    server = start_server(env, tmp_path / "server.log")
    try:
        yield openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    finally:
        server.stop()


def test_openai_client_through_the_proxy(proxy, tmp_path):
    models = proxy.models.list()
    assert len(models.data) >= 1
    messages = [{"role": "user", "content": "Say hello in one word."}]
    reply = proxy.chat.completions.create(model="local", messages=messages, max_tokens=8, user="conv-1")
    assert reply.choices[0].message.content
    chunks = list(
        proxy.chat.completions.create(
            model="local", messages=messages, max_tokens=8, stream=True, extra_headers={"X-Session-Id": "conv-2"}
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed
    lines = log_lines(tmp_path, "alice")
    assert [(r["role"], r["session_id"]) for r in lines] == [
        ("human", "conv-1"), ("ai", "conv-1"), ("human", "conv-2"), ("ai", "conv-2")]  # fmt: skip
    assert lines[1]["content"] == reply.choices[0].message.content
    assert lines[1]["usage"]["output_tokens"] == reply.usage.completion_tokens
    assert lines[3]["content"] == streamed and lines[3]["metadata"]["stream"] is True
    assert lines[3]["usage"]["input_tokens"] > 0 and lines[3]["usage"]["output_tokens"] > 0


def test_malformed_requests_are_ours_and_upstream_errors_pass_through(proxy, llama_server, tmp_path):
    headers = {"Authorization": f"Bearer {proxy.api_key}"}
    bad_role = {"model": "local", "messages": [{"role": "nobody", "content": "x"}]}
    direct = httpx.post(f"{llama_server}/chat/completions", json=bad_role, timeout=30)
    assert direct.status_code >= 500  # llama.cpp's server answers a client's mistake with a 500
    ours = httpx.post(f"{proxy.base_url}chat/completions", json=bad_role, headers=headers, timeout=30)
    assert ours.status_code == 400 and "messages.0.role" in ours.json()["error"]["message"]
    assert log_lines(tmp_path, "alice") == []  # neither logged nor forwarded
    many = {"model": "local", "messages": [{"role": "user", "content": "x"}], "max_tokens": "many"}
    ours = httpx.post(f"{proxy.base_url}chat/completions", json=many, headers=headers, timeout=30)
    assert ours.status_code == 400 and "max_tokens" in ours.json()["error"]["message"]
    bad_field = {"model": "local", "messages": [{"role": "user", "content": "x"}], "logit_bias": "x"}
    direct = httpx.post(f"{llama_server}/chat/completions", json=bad_field, timeout=30)
    assert direct.status_code >= 400  # a field we do not check is the upstream's to judge: its answer passes
    response = httpx.post(f"{proxy.base_url}chat/completions", json=bad_field, headers=headers, timeout=30)
    assert (response.status_code, response.text) == (direct.status_code, direct.text)


def test_code_from_a_description_and_with_tests(proxy, tmp_path):
    url, headers = str(proxy.base_url).rstrip("/"), {"Authorization": f"Bearer {proxy.api_key}"}
    plain = httpx.post(f"{url}/code", json={"description": "a function add(a, b) returning a + b",
                                            "model": "openai:local"}, headers=headers, timeout=120)  # fmt: skip
    assert plain.status_code == 200, plain.text
    body = plain.json()
    assert body["ok"] is None and body["usage"]["requests"] == 1 and body["usage"]["completion_tokens"] > 0
    tests = "from solution import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    request = {"description": "a function add(a, b) returning a + b", "tests": tests, "model": "openai:local"}
    tested = httpx.post(f"{url}/code", json={**request, "max_retries": 0}, headers=headers, timeout=300)
    assert tested.status_code == 200, tested.text
    attempts = tested.json()["attempts"]
    assert len(attempts) == 1 and attempts[0]["passed"] + attempts[0]["failed"] >= 0
    roles = [line["role"] for line in log_lines(tmp_path, "alice")]
    assert roles.count("human") >= 2 and roles.count("ai") == 2
    bad = httpx.post(
        f"{url}/code", json={"description": "a python function", "model": "nonsense"}, headers=headers, timeout=60
    )
    assert bad.status_code == 400 and bad.json()["error"]["message"]
    empty = httpx.post(f"{url}/code", json={"description": ""}, headers=headers, timeout=60)
    assert empty.status_code == 422
