"""my_llm.redact: detect-secrets' rules plus whole key blocks, URL passwords and env dumps, on text in memory."""

import time
from pathlib import Path

import pytest

from my_llm import Secret, find_secrets, redact_secrets

# Fake secrets in the real formats (none of them was ever valid).
OPENAI = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" + "T3BlbkFJ" + "K1l2M3n4O5p6Q7r8S9t0"
AWS_ID = "AKIA" + "Z7Q2M4N8P1R5T3W6"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Lk2Xp9T"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
KEY_LINES = ["MIIEpAIBAAKCAQEAx9FqZ2vT0kLwQy7Rb3nUcVd1", "Hs8PmN4oJ6tYe2WqXa5Zr7Ku9Bi3Lg1Df0Ce8Av6"]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_LINES) + "\n-----END RSA PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("path", "text", "value", "kind"),
    [
        ("config.py", f'OPENAI_API_KEY = "{OPENAI}"\n', OPENAI, "openai-token"),
        ("settings.py", f'AWS_ACCESS_KEY_ID = "{AWS_ID}"\n', AWS_ID, "aws-access-key"),
        ("settings.py", f'AWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"\n', AWS_SECRET, "aws-access-key"),
        ("ci.yml", f"env:\n  token: {GITHUB}\n", GITHUB, "github-token"),
        ("db.ini", "[db]\npassword = correct-horse-battery-42\n", "correct-horse-battery-42", "secret-keyword"),
        ("app.py", 'db_password = "s3cr3t-value"\n', "s3cr3t-value", "secret-keyword"),
        (None, "postgres://admin:pa55word@db.example.com/app", "pa55word", "basic-auth-credentials"),
        (None, "redis://:pa55word@localhost:6379", "pa55word", "url-password"),
        (None, "dsn = https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/1", "0123456789abcdef", "url-token"),
        (None, "GH_PAT=abc123xyz SENTRY_DSN=https://k@s.io/1", "abc123xyz", "env-secret"),
        (None, "{'PATH': '/usr/bin', 'PRIVATE': 'xyzzy-plugh'}", "xyzzy-plugh", "env-secret"),
        (None, "Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234", "bearer-token"),
        ("notes.md", PEM, KEY_LINES[1], "private-key"),
    ],
)
def test_each_kind_is_found_and_replaced(path, text, value, kind):
    secrets = find_secrets(text, path=path)
    redacted = redact_secrets(text, path=path)
    assert value not in redacted and f"[REDACTED:{kind}]" in redacted
    assert any(secret.kind == kind for secret in secrets)
    assert all(value not in repr(secret) for secret in secrets)  # a Secret never holds its value


def test_the_rest_of_the_line_and_the_line_count_are_kept():
    text = f'x = 1\nclient = OpenAI(api_key="{OPENAI}")  # the key\n{PEM}y = 2\n'
    redacted = redact_secrets(text, path="app.py")
    assert redacted.splitlines()[1] == 'client = OpenAI(api_key="[REDACTED:openai-token]")  # the key'
    assert redacted.count("\n") == text.count("\n") and redacted.splitlines()[-1] == "y = 2"
    lines = [secret.line for secret in find_secrets(text, path="app.py")]
    assert lines == [2, 3]
    start, end = find_secrets(text, path="app.py")[0].span
    assert text[start:end] == OPENAI


def test_a_service_account_key_on_one_line_with_escaped_newlines():
    body = "\\n".join(KEY_LINES)
    text = (
        '{"type": "service_account", "private_key_id": "a1b2c3", '
        f'"private_key": "-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n", '
        '"client_email": "bot@project.iam.gserviceaccount.com"}\n'
    )
    redacted = redact_secrets(text, path="sa.json")
    assert not any(line in redacted for line in KEY_LINES)
    assert '"private_key": "[REDACTED:private-key]\\n"' in redacted and "bot@project" in redacted


def test_a_key_cut_short_loses_its_key_lines_and_a_header_constant_stays():
    cut = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(KEY_LINES) + "\n\nThe test failed.\n"
    assert redact_secrets(cut) == "[REDACTED:private-key]\n\n\n\nThe test failed.\n"
    code = '_HEADER = "-----BEGIN RSA PRIVATE KEY-----"\n_FOOTER = "-----END RSA PRIVATE KEY-----"\n'
    assert redact_secrets(code, path="pem.py") == code


@pytest.mark.parametrize(
    "text",
    [
        "password = get_password()",
        'password = "${DB_PASSWORD}"',
        "KEYBOARD=us",
        "def login(user, password):",
        "https://user@example.com/path",
        "token = request.headers['x-token']",
        "",
    ],
)
def test_what_is_not_a_secret_is_left_alone(text):
    assert find_secrets(text, path="app.py") == [] and redact_secrets(text, path="app.py") == text


def test_the_allowlist_pragma_does_not_hide_a_secret():
    """Generated code could print detect-secrets' pragma beside a value to take it out of a retry prompt."""
    assert GITHUB not in redact_secrets(f"token = '{GITHUB}'  # pragma: allowlist secret")


def test_every_match_on_a_line_is_found_and_redaction_is_idempotent():
    env = "{" + ", ".join(f"'API_KEY_{n}': 'value-{n}-xyz'" for n in range(5)) + "}"
    once = redact_secrets(env)
    assert "value-" not in once and once.count("[REDACTED:") == 5
    assert redact_secrets(once) == once and find_secrets(once) == []


def test_secret_is_a_small_value_type():
    assert Secret("github-token", 1, (0, 40)) == Secret("github-token", 1, (0, 40))


def test_it_is_fast_enough_for_every_indexed_file():
    """About 20-30 ms per 1,000 lines of real source on one core (measured on rich, click, pygments,
    pydantic, langchain_core: 300,000 lines); the bound here is loose for busy machines."""
    import rich

    text = "\n".join(path.read_text(encoding="utf-8") for path in sorted(Path(rich.__file__).parent.glob("*.py")))
    lines = text.count("\n")
    find_secrets("warm up")
    started = time.perf_counter()
    find_secrets(text, path="rich.py")
    elapsed = time.perf_counter() - started
    assert lines > 3000 and elapsed / lines * 1000 < 0.25, f"{elapsed:.2f} s for {lines} lines"


@pytest.mark.parametrize(
    "text",
    ["API_KEY_" * 25_000, "http://" * 30_000, "-----BEGIN PRIVATE KEY-----\n" * 7_000, 'password = "' * 20_000],
)
def test_hostile_text_takes_linear_time(text):
    """Each of these took minutes or hours before the rules were bounded (npm's ``//.+/:_authToken``, the keyword
    detector's ``\\w*``, a lazy search for END from every BEGIN)."""
    started = time.perf_counter()
    find_secrets(text, path="x.ini")
    assert time.perf_counter() - started < 10
