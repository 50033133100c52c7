"""my-llm eval: tests from files (CSV, YAML, JSON, globs), promptfoo's assertion shorthand, var files, JSON
schemas, the list assertions and ``javascript`` in the sandbox. promptfoo's own simple-csv example runs
unchanged against the scripted upstream (tests/test_eval_upstream.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from evaluation import Assertion, EvalConfigError, Observation, check, load_config
from evaluation.cli import eval_command
from evaluation.testfiles import assertion_from_string, csv_tests
from tests.test_eval_upstream import scripted_upstream, upstream_requests

# promptfoo/promptfoo examples/simple-csv (promptfooconfig.yaml, prompts.txt, tests.csv), unchanged.
SIMPLE_CSV_CONFIG = """\
# yaml-language-server: $schema=https://promptfoo.dev/config-schema.json
description: A translator built with LLM
prompts:
  - file://prompts.txt
providers:
  - openai:gpt-4o-mini
tests: file://tests.csv
"""
SIMPLE_CSV_PROMPTS = """\
You are a skilled translator and language expert. Follow these style requirements:
- Tone: {{ (style_config | load).tone }}
- Length: {{ (style_config | load).length }}

Task: Rephrase the following text in {{language}}:
"{{body}}"

Ensure your response matches the specified style.
---
You are a conversational language assistant. Follow the style configuration: {{style_config}}.

Task: Translate this text to {{language}} in a natural, conversational way:
"{{body}}"

Make sure to maintain the intended tone while keeping it casual and friendly.
"""
SIMPLE_CSV_TESTS = (
    "language,body,style_config,__expected\n"
    'French,"Hello world","{""tone"":""formal"",""length"":""brief""}","icontains:bonjour"\n'
    'French,"I\'m hungry","{""tone"":""casual"",""length"":""brief"",""formatting"":{""bullets"":true}}",'
    '"icontains:faim"\n'
    'Pirate,"Hello world","{""tone"":""authentic"",""length"":""moderate""}","icontains:Ahoy"\n'
    'Pirate,"I\'m hungry","{""tone"":""authentic"",""length"":""moderate"",""formatting"":{""bullets"":false}}",'
    '"icontains:grub"\n'
)


def _files(folder: Path, **files: str) -> Path:
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text, encoding="utf-8")
    return folder


def _seen(output: str, **variables) -> Observation:
    return Observation(output, variables, "the prompt", 0.001, 5.0)


def test_promptfoo_simple_csv_example_runs_unchanged(tmp_path, monkeypatch):
    _files(tmp_path, promptfooconfig__yaml=SIMPLE_CSV_CONFIG, prompts__txt=SIMPLE_CSV_PROMPTS,
           tests__csv=SIMPLE_CSV_TESTS)  # fmt: skip
    config = load_config(tmp_path / "promptfooconfig.yaml")
    assert len(config.prompts) == 2 and len(config.tests) == 4
    assert "Tone: formal" in config.prompts[0].render(config.tests[0].vars)  # the load filter parsed the JSON
    assert config.tests[3].asserts[0] == Assertion("icontains", "grub")

    rules = [
        {"match": "hungry", "reply": "J'ai faim / Arr, I need me grub"},
        {"match": "Pirate", "reply": "Ahoy, world"},
        {"match": "French", "reply": "Bonjour le monde"},
    ]
    with scripted_upstream(tmp_path, rules, default="?") as base_url:
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        report = tmp_path / "results.json"
        result = CliRunner().invoke(eval_command, [str(tmp_path / "promptfooconfig.yaml"), "--no-cache",
                                                   "--output", str(report)])  # fmt: skip
        assert upstream_requests(base_url) == 8  # 2 prompts x 4 tests
    data = json.loads(report.read_text())
    assert result.exit_code == 0, result.output
    assert data["failures"] == 0 and len(data["results"]) == 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contains: Hello", {"type": "contains", "value": "Hello"}),
        ("not-icontains:bad", {"type": "not-icontains", "value": "bad"}),
        ("similar(0.9):a cat", {"type": "similar", "value": "a cat", "threshold": 0.9}),
        ("similar:a cat", {"type": "similar", "value": "a cat", "threshold": 0.8}),
        ("contains-any: <b>,</span>", {"type": "contains-any", "value": ["<b>", "</span>"]}),
        ("javascript: output.length < 10", {"type": "javascript", "value": "output.length < 10"}),
        ("fn:output === 'x'", {"type": "javascript", "value": "output === 'x'"}),
        ("grade: is polite", {"type": "llm-rubric", "value": "is polite"}),
        ("python: len(output) > 2", {"type": "python", "value": "len(output) > 2"}),
        ("is-json", {"type": "is-json"}),
        ("Paris", {"type": "equals", "value": "Paris"}),
        ("note: contains: x", {"type": "equals", "value": "note: contains: x"}),
    ],
)
def test_promptfoo_shorthand(text, expected):
    assert assertion_from_string(text) == expected


def test_csv_columns_description_metric_and_refusals(tmp_path):
    tests = csv_tests("q,__expected1,__expected2,__description,__metric\nhi,contains: h,,greet,m\n")
    assert tests == [{"vars": {"q": "hi"}, "assert": [{"type": "contains", "value": "h", "metric": "m"}],
                      "description": "greet"}]  # fmt: skip
    with pytest.raises(EvalConfigError, match="__prefix"):
        csv_tests("q,__prefix\nhi,x\n", where="t.csv")
    _files(tmp_path, c__yaml="prompts: [hi]\nproviders: [local]\ntests: file://t.csv\n",
           t__csv="q,__expected\nhi,levenshtein(5): hey\n")  # fmt: skip
    with pytest.raises(EvalConfigError, match="Unsupported assertion type 'levenshtein'"):
        load_config(tmp_path / "c.yaml")


def test_yaml_json_globs_and_var_files(tmp_path):
    (tmp_path / "cases").mkdir()
    _files(tmp_path / "cases", a__yaml="- vars: {q: one}\n  assert: [{type: contains, value: o}]\n",
           b__yaml="vars: {q: two}\n")  # fmt: skip
    _files(tmp_path, more__json=json.dumps([{"vars": {"q": "file://q.txt", "data": "file://d.json"}}]),
           q__txt="from a file", d__json='{"k": [1, 2]}',
           c__yaml="prompts: ['{{q}}']\nproviders: [local]\n"
                   "tests: [file://cases/*.yaml, file://more.json, {vars: {q: inline}}]\n")  # fmt: skip
    config = load_config(tmp_path / "c.yaml")
    assert [t.vars["q"] for t in config.tests] == ["one", "two", "from a file", "inline"]
    assert config.tests[2].vars["data"] == {"k": [1, 2]}
    assert config.tests[0].asserts == (Assertion("contains", "o"),)


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        ("file://missing.csv", "Cannot read the tests file"),
        ("file://none/*.yaml", "matches no file"),
        ("file://t.xlsx", "only .csv, .yaml"),
        ("[{vars: {q: file://run.py}}]", "is a script"),
        ("[{vars: {q: file://gone.txt}}]", "cannot read the var file"),
        ("just text", "neither a test mapping nor a file://path"),
    ],
)
def test_bad_test_files_are_named(tmp_path, tests, message):
    _files(tmp_path, t__xlsx="x", run__py="print(1)", c__yaml=f"prompts: [hi]\nproviders: [local]\ntests: {tests}\n")
    with pytest.raises(EvalConfigError, match=message):
        load_config(tmp_path / "c.yaml")


SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


@pytest.mark.parametrize(
    ("kind", "output", "expected"),
    [
        ("is-json", '{"name": "Ann"}', True),
        ("is-json", '{"name": 3}', False),
        ("is-json", '{"other": 1}', False),
        ("contains-json", 'Here: {"x": 1} and {"name": "Bo"}.', True),
        ("contains-json", 'Here: {"x": 1}', False),
        ("not-is-json", '{"name": 3}', True),
    ],
)
def test_json_schema_values(kind, output, expected):
    result = check(Assertion(kind, SCHEMA), _seen(output), graders=None)
    assert result.passed is expected, result.reason
    if not expected:
        assert "schema" in result.reason


def test_json_schema_from_text_or_file_and_invalid_schemas_named(tmp_path):
    _files(
        tmp_path,
        s__json=json.dumps(SCHEMA),
        c__yaml=(
            "prompts: [hi]\nproviders: [local]\ntests:\n"
            "  - assert: [{type: is-json, value: file://s.json}, {type: contains-json, value: '{type: array}'}]\n"
        ),
    )
    asserts = load_config(tmp_path / "c.yaml").tests[0].asserts
    assert asserts[0].value == SCHEMA and asserts[1].value == {"type": "array"}
    _files(
        tmp_path, c__yaml="prompts: [hi]\nproviders: [local]\ntests: [{assert: [{type: is-json, value: {type: 5}}]}]\n"
    )
    with pytest.raises(EvalConfigError, match="JSON schema of is-json in tests\\[0\\] is invalid"):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize(
    ("kind", "value", "output", "expected"),
    [
        ("contains-any", ["cat", "dog"], "a dog", True),
        ("contains-any", "cat, dog", "a bird", False),
        ("contains-all", ["cat", "dog"], "cat and dog", True),
        ("contains-all", ["cat", "dog"], "cat only", False),
        ("icontains-any", ["CAT"], "a cat", True),
        ("icontains-all", "CAT,DOG", "Cat, Dog", True),
        ("icontains-all", "CAT,DOG", "Cat", False),
        ("starts-with", "Ahoy", "Ahoy there", True),
        ("starts-with", "Ahoy", "Well, Ahoy", False),
        ("not-contains-any", ["sorry"], "Sure.", True),
    ],
)
def test_list_and_prefix_assertions(kind, value, output, expected):
    assert check(Assertion(kind, value), _seen(output), graders=None).passed is expected


needs_sandbox = pytest.mark.skipif(
    (shutil.which("bwrap") is None or shutil.which("node") is None) and not __import__("os").environ.get(
        "REQUIRE_EMULATORS"), reason="needs bubblewrap and node")  # fmt: skip


@needs_sandbox
@pytest.mark.parametrize(
    ("code", "output", "expected", "score"),
    [
        ("output.startsWith('Ahoy')", "Ahoy matey", True, 1.0),
        ("output.startsWith('Ahoy')", "Hello", False, 0.0),
        ("Math.max(0, output.length - 3)", "abcdef", True, 3.0),
        ("output.length === Number(context.vars.n)", "abc", True, 1.0),
        ("const n = output.length;\nreturn {pass: n === 2, score: 0.5, reason: 'r'};", "ab", True, 0.5),
        ("return new Promise((ok) => setTimeout(() => ok(true), 10));\n", "", True, 1.0),
        (
            "const net = require('net');\nreturn new Promise((ok) => { const s = net.connect(53, '1.1.1.1');\n"
            "s.on('connect', () => ok(true)); s.on('error', () => ok(false)); });",
            "",
            False,
            0.0,
        ),
        ("require('fs').writeFileSync('/etc/x', 'a');\nreturn true;", "", False, 0.0),  # read-only host
        ("output.", "", False, 0.0),  # a syntax error fails the assertion, not the run
    ],
)
def test_javascript_assertion_in_the_sandbox(code, output, expected, score):
    result = check(Assertion("javascript", code), _seen(output, n="3"), graders=None)
    assert result.passed is expected, result.reason
    assert result.score == score


@needs_sandbox
def test_javascript_assertion_times_out(monkeypatch):
    import evaluation.sandbox as sandbox

    real = sandbox.run_javascript_assertion
    monkeypatch.setattr("evaluation.assertions.run_javascript_assertion",
                        lambda code, output, context: real(code, output, context, timeout_s=2))  # fmt: skip
    result = check(Assertion("javascript", "while (true) {}\nreturn 1;"), _seen(""), graders=None)
    assert not result.passed and "timed out" in result.reason
