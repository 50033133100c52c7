"""my-llm eval against real parts: a scripted OpenAI-compatible upstream (a child HTTP server, see
tests/test_eval_upstream.py), bubblewrap for python assertions, the local embedder for ``similar``, the log on
disk; and (slow) the real llama.cpp server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from evaluation import (
    Assertion,
    EvalConfigError,
    Models,
    Observation,
    ResponseCache,
    check,
    load_config,
    parse_grading,
    run_eval,
)
from evaluation.cli import eval_command
from my_llm import ChatHistory, Settings
from tests.test_eval_upstream import scripted_upstream, upstream_requests

# promptfoo's own example, unchanged: promptfoo/promptfoo examples/getting-started/promptfooconfig.yaml
# (https://github.com/promptfoo/promptfoo/blob/main/examples/getting-started/promptfooconfig.yaml).
PROMPTFOO_GETTING_STARTED = """\
# yaml-language-server: $schema=https://promptfoo.dev/config-schema.json
description: 'Getting started'
# Optionally set API keys here instead of exporting environment variables.
# Never commit real keys to source control.
# env:
#   OPENAI_API_KEY: sk-...
prompts:
  - 'Convert this English to {{language}}: {{input}}'
  - 'Translate to {{language}}: {{input}}'

providers:
  - openai:gpt-4.1
  - openai:o4-mini
  # - anthropic:messages:claude-4-sonnet-20250514  # Claude model
  # - vertex:gemini-2.5-pro-exp-03-25                # Google Gemini model

tests:
  - vars:
      language: French
      input: Hello world
    assert:
      - type: contains
        value: 'Bonjour le monde'
  - vars:
      language: Spanish
      input: Where is the library?
    assert:
      - type: icontains
        value: 'Dónde está la biblioteca'
"""
GETTING_STARTED_RULES = [
    {"match": "French: Hello world", "reply": "Bonjour le monde"},
    {"match": "Spanish: Where is the library?", "reply": "¿dónde está la biblioteca?"},
]

# promptfoo/promptfoo examples/simple-test/promptfooconfig.yaml, cut to its first test and the javascript
# assertion of its fourth (our subset has no outputPath or assertionTemplates).
PROMPTFOO_SIMPLE_TEST_JS = """\
prompts:
  - 'Respond like a pirate: {{body}}'
providers:
  - openai:gpt-4.1-mini
tests:
  - description: Check for semantic similarity
    vars:
      body: Hello world
    assert:
      - type: javascript
        value: output.startsWith('Ahoy')
"""


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    """The scripted upstream, set as OPENAI_BASE_URL; yields its base URL."""
    rules = [
        *GETTING_STARTED_RULES,
        {"match": "GRADE", "reply": '{"reason": "fine", "pass": true, "score": 0.9}'},
        {"match": "json please", "reply": 'Here: {"a": 1, "b": [2]} done'},
        {"match": "rate limited", "reply": "after the limit", "rate_limit_once": True},
        {"match": "slow", "reply": "late", "delay_s": 0.3},
    ]
    with scripted_upstream(tmp_path, rules, default="plain reply") as base_url:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        yield base_url


def _write(folder: Path, text: str, name: str = "promptfooconfig.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _run_cli(*args: str):
    return CliRunner().invoke(eval_command, [str(arg) for arg in args], catch_exceptions=False)


def test_promptfoo_getting_started_runs_unchanged_then_from_cache(tmp_path, upstream):
    config = _write(tmp_path, PROMPTFOO_GETTING_STARTED)
    cache, report = tmp_path / "cache", tmp_path / "results.json"
    first = _run_cli(config, "--cache-dir", cache, "--output", report)
    assert first.exit_code == 0, first.output
    sent = upstream_requests(upstream)
    assert sent == 8  # 2 prompts x 2 providers x 2 tests
    data = json.loads(report.read_text())
    assert data["failures"] == 0 and len(data["results"]) == 8
    assert {row["pass_rate"] for row in data["summary"]} == {1.0}

    second = _run_cli(config, "--cache-dir", cache, "--output", tmp_path / "results.html")
    assert second.exit_code == 0, second.output
    assert upstream_requests(upstream) == sent  # the cache answered everything
    assert "0 request(s) sent" in second.output
    page = (tmp_path / "results.html").read_text()
    assert "Bonjour le monde" in page and "<script" not in page and "<link" not in page

    third = _run_cli(config, "--cache-dir", cache, "--no-cache")
    assert third.exit_code == 0 and upstream_requests(upstream) == sent + 8


def test_records_land_in_the_log_with_scores(tmp_path, upstream):
    config = load_config(_write(tmp_path, PROMPTFOO_GETTING_STARTED, "translate.yaml"))
    models = Models(Settings.from_env(), ResponseCache(tmp_path / "cache"))
    run = run_eval(config, models, concurrency=3)
    records = ChatHistory("eval-translate").records()
    assert len(records) == 16 and {r.role for r in records} == {"human", "ai"}
    ai = [r for r in records if r.role == "ai"]
    meta = [r.metadata["eval"] for r in ai]
    assert {m["run_id"] for m in meta} == {run.run_id} and {r.session_id for r in records} == {run.run_id}
    assert {m["provider"] for m in meta} == {"openai:gpt-4.1", "openai:o4-mini"}
    assert sorted({m["test_index"] for m in meta}) == [0, 1]
    assert all(m["pass"] and m["assertions"][0]["score"] == 1.0 for m in meta)
    assert all(r.usage["input_tokens"] > 0 for r in ai) and ai[0].model.startswith("openai:")


def test_a_failing_assertion_exits_non_zero_and_is_highlighted(tmp_path, upstream):
    config = _write(tmp_path, PROMPTFOO_GETTING_STARTED.replace("'Bonjour le monde'", "'Salut'"))
    result = _run_cli(config, "--cache-dir", tmp_path / "cache", "--output", tmp_path / "r.html")
    assert result.exit_code == 1
    assert "4 failing case(s) of 8" in result.output
    page = (tmp_path / "r.html").read_text()
    assert page.count('class="bad">contains 0: does not contain') == 4


def test_promptfoo_simple_test_javascript_runs_in_the_sandbox(tmp_path, upstream):
    report = tmp_path / "r.json"
    result = _run_cli(_write(tmp_path, PROMPTFOO_SIMPLE_TEST_JS), "--no-cache", "--output", report)
    assert result.exit_code == 1, result.output  # the scripted upstream does not talk like a pirate
    [checked] = json.loads(report.read_text())["results"][0]["assertions"]
    assert checked["type"] == "javascript" and not checked["pass"] and "returned false" in checked["reason"]


def test_unsupported_assertion_type_fails_naming_it(tmp_path):
    text = PROMPTFOO_SIMPLE_TEST_JS.replace("type: javascript", "type: levenshtein")
    result = CliRunner().invoke(eval_command, [str(_write(tmp_path, text))])
    assert result.exit_code != 0 and "Unsupported assertion type 'levenshtein'" in result.output


def test_unknown_keys_fail_naming_them(tmp_path):
    text = PROMPTFOO_GETTING_STARTED + "outputPath: output.csv\nassertionTemplates: {}\n"
    with pytest.raises(EvalConfigError, match="assertionTemplates, outputPath"):
        load_config(_write(tmp_path, text))
    bad_assert = PROMPTFOO_GETTING_STARTED.replace("value: 'Bonjour le monde'", "vlaue: x")
    with pytest.raises(EvalConfigError, match=r"tests\[0\]: vlaue"):
        load_config(_write(tmp_path, bad_assert))


def test_prompt_files_list_vars_and_default_test(tmp_path, upstream):
    (tmp_path / "p.txt").write_text("Say {{ word }} {{ missing }}")
    config = load_config(
        _write(
            tmp_path,
            "prompts: [file://p.txt]\nproviders: [{id: 'openai:x', label: scripted}]\n"
            "defaultTest: {vars: {word: hi}, assert: [{type: equals, value: plain reply}]}\n"
            "tests: [{vars: {word: [a, b, c]}}, {}]\n",
        )
    )
    assert [t.vars["word"] for t in config.tests] == ["a", "b", "c", "hi"]
    assert config.prompts[0].render({"word": "a"}) == "Say a "
    run = run_eval(config, Models(Settings.from_env(), ResponseCache(tmp_path / "c")), concurrency=2)
    assert run.failures == 0 and {r.provider.label for r in run.results} == {"scripted"}


def _seen(output: str, cost=0.001, latency=50.0, **variables) -> Observation:
    return Observation(output, variables, "the prompt", cost, latency)


@pytest.mark.parametrize(
    ("kind", "value", "threshold", "output", "expected"),
    [
        ("equals", "Yarr", None, "Yarr", True),
        ("equals", "Yarr", None, "Yarr!", False),
        ("equals", {"a": 1}, None, '{"a": 1}', True),
        ("contains", "world", None, "hello world", True),
        ("contains", "World", None, "hello world", False),
        ("icontains", "WORLD", None, "hello world", True),
        ("icontains", "mars", None, "hello world", False),
        ("regex", r"^\d{3}-\d{4}$", None, "555-1234", True),
        ("regex", r"^\d{3}-\d{4}$", None, "call 555", False),
        ("is-json", None, None, '{"a": [1, 2]}', True),
        ("is-json", None, None, "{a: 1}", False),
        ("contains-json", None, None, 'Sure: {"a": {"b": 2}} ok', True),
        ("contains-json", None, None, "no json {here", False),
        ("not-contains", "bad", None, "all good", True),
        ("not-contains", "good", None, "all good", False),
        ("cost", None, 0.01, "x", True),
        ("cost", None, 0.0001, "x", False),
        ("latency", None, 100, "x", True),
        ("latency", None, 10, "x", False),
    ],
)
def test_string_json_cost_latency_assertions(kind, value, threshold, output, expected):
    result = check(Assertion(kind, value, threshold), _seen(output), graders=None)
    assert result.passed is expected
    assert (result.reason == "") is expected


def test_cost_unknown_fails():
    assert not check(Assertion("cost", threshold=1.0), _seen("x", cost=None), graders=None).passed


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
@pytest.mark.parametrize(
    ("code", "output", "expected", "score"),
    [
        ("output.startswith('Ahoy')", "Ahoy matey", True, 1.0),
        ("output.startswith('Ahoy')", "Hello", False, 0.0),
        ("max(0, len(output) - 3)", "abcdef", True, 3.0),  # promptfoo's simple-test: a number is a score
        ("len(output) == int(context['vars']['n'])", "abc", True, 1.0),
        ("def f(x):\n    return x * 2\nreturn {'pass': f(2) == 4, 'score': 0.5, 'reason': 'r'}", "", True, 0.5),
        ("__import__('socket').create_connection(('1.1.1.1', 53), timeout=2) and True", "", False, 0.0),
        ("open('/etc/hostname', 'a') and True", "", False, 0.0),  # read-only host
        ("1/0", "", False, 0.0),
    ],
)
def test_python_assertion_in_the_sandbox(code, output, expected, score):
    result = check(Assertion("python", code), _seen(output, n="3"), graders=None)
    assert result.passed is expected, result.reason
    assert result.score == score


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_python_assertion_times_out(monkeypatch):
    import evaluation.assertions as assertions

    real = assertions.run_python_assertion
    monkeypatch.setattr(assertions, "run_python_assertion", lambda *a: real(*a, timeout_s=1.0))
    result = check(Assertion("python", "__import__('time').sleep(30)"), _seen(""), graders=None)
    assert not result.passed and "timed out" in result.reason


def test_similar_with_the_local_embedder(tmp_path):
    models = Models(Settings.from_env(), ResponseCache(tmp_path, enabled=False))
    near = check(Assertion("similar", "Ahoy, world", 0.6), _seen("Ahoy world!"), models)
    far = check(Assertion("similar", "Ahoy, world", 0.6), _seen("Quarterly tax filing deadlines"), models)
    assert near.passed and near.score > 0.8
    assert not far.passed and far.score < 0.6 and "similarity" in far.reason


def test_llm_rubric_with_a_scripted_judge(tmp_path, upstream):
    models = Models(Settings.from_env(), ResponseCache(tmp_path / "c"), judge="openai:judge")
    assert check(Assertion("llm-rubric", "GRADE: is polite"), _seen("Thank you"), models).passed
    verdict = check(Assertion("llm-rubric", "is polite"), _seen("whatever"), models)  # judge says "plain reply"
    assert not verdict.passed and "not a grading" in verdict.reason


def test_parse_grading():
    assert parse_grading('x {"pass": false, "score": 0.2, "reason": "no"}') == (False, 0.2, "no")
    assert parse_grading("PASS - it is polite")[0] is True
    assert parse_grading("I cannot tell")[0] is False


def test_rate_limits_are_retried_with_backoff():
    from evaluation import is_rate_limit, with_retries
    from my_llm import ModelCallError

    class RateLimitError(Exception):
        status_code = 429

    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            try:
                raise RateLimitError("Error code: 429")
            except RateLimitError as cause:
                raise ModelCallError("The chat model 'x' failed: slow down") from cause
        return "answer"

    assert with_retries(flaky, sleep=sleeps.append) == "answer"
    assert len(calls) == 3 and len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.3
    assert not is_rate_limit(ModelCallError("The chat model 'x' failed: bad request"))
    with pytest.raises(ModelCallError):
        with_retries(lambda: (_ for _ in ()).throw(ModelCallError("boom")), sleep=sleeps.append)


def test_a_rate_limited_upstream_still_answers(tmp_path, upstream):
    config = load_config(
        _write(tmp_path, "prompts: ['rate limited {{x}}']\nproviders: [openai:gpt-4o-mini]\ntests: [{vars: {x: 1}}]\n")
    )
    run = run_eval(config, Models(Settings.from_env(), ResponseCache(tmp_path / "c")))
    assert run.results[0].response["output"] == "after the limit" and upstream_requests(upstream) == 2


def test_a_failing_provider_is_a_failed_case_not_a_crash(tmp_path, monkeypatch):
    from my_llm.testing import free_port

    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens
    config = load_config(_write(tmp_path, "prompts: [hi]\nproviders: [openai:gpt-4o-mini]\n"))
    run = run_eval(config, Models(Settings.from_env(), ResponseCache(tmp_path / "c")))
    assert run.failures == 1 and "failed" in run.results[0].error


@pytest.mark.slow
def test_against_the_real_llama_server(tmp_path, llama_server):
    text = (
        "description: llama.cpp server\nprompts: ['Say hello to {{name}}.']\n"
        f"providers: [{{id: 'openai:smollm2', label: llama, config: {{apiBaseUrl: '{llama_server}'}}}}]\n"
        "tests:\n  - vars: {name: Ada}\n    assert:\n      - {type: python, value: len(output) > 0}\n"
        "      - {type: latency, threshold: 60000}\n      - {type: not-is-json}\n"
        "  - vars: {name: Bob}\n    assert: [{type: equals, value: 'surely not this'}]\n"
    )
    report = tmp_path / "out.json"
    result = _run_cli(_write(tmp_path, text), "--cache-dir", tmp_path / "c", "--output", report, "-j", "2")
    assert result.exit_code == 1  # the second test fails by design
    data = json.loads(report.read_text())
    assert [r["pass"] for r in data["results"]] == [True, False]
    assert data["results"][0]["response"]["output_tokens"] > 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_the_example_runs_on_the_bundled_model(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "eval" / "promptfooconfig.yaml"
    report = tmp_path / "example.json"
    result = _run_cli(example, "--cache-dir", tmp_path / "c", "--output", report)
    assert result.exit_code in (0, 1), result.output
    data = json.loads(report.read_text())
    assert len(data["results"]) == 8 and len(data["summary"]) == 2
    assert all(len(r["assertions"]) == 2 for r in data["results"])


def test_a_failing_judge_fails_the_assertion_not_the_run(tmp_path, monkeypatch):
    from my_llm.testing import free_port

    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens
    models = Models(Settings.from_env(), ResponseCache(tmp_path, enabled=False), judge="openai:judge")
    result = check(Assertion("llm-rubric", "is polite"), _seen("hi"), models)
    assert not result.passed and "judge" in result.reason
