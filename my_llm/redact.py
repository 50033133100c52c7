"""Find secrets in text and replace each with ``[REDACTED:<kind>]``: what read-repo indexes, what goes to a
model, what is printed and what is logged.

Built on detect-secrets (Yelp, https://github.com/Yelp/detect-secrets, 1.5): its default plugins' own regular
expressions (every plugin but the public-IP one, which finds addresses, not secrets, and the private-key one,
replaced below), the keyword detector's tables chosen by file type (``password = "..."``; unquoted values in
``.ini``, ``.cfg``, ``.toml``, ``.yaml`` and shell files), the base64 and hex high-entropy checks of quoted
strings with their limits (4.5 and 3.0 bits a character), and its false-positive heuristics (sequential
strings, UUIDs, ``${TEMPLATES}``, ``<placeholders>``, ``$VARS``, indirect references such as
``key = get_key()``, names ending in ``_id``). detect-secrets reports only a secret's value, the first match of
each rule on a line and the first line of a private key; here the same rules run with ``finditer`` over the
whole text, so every match is found with its exact span. Added, for what it misses:

- whole private-key blocks, PEM ``-----BEGIN ... PRIVATE KEY-----`` to ``-----END ... PRIVATE KEY-----``, also on
  one line with ``\\n`` escapes (a Google service-account JSON's ``private_key``); a block cut short loses the
  key lines that follow it; a PuTTY key file to its ``Private-MAC`` line;
- passwords in URLs (``scheme://user:pass@host``, also with an empty user or a reserved character, which
  detect-secrets' BasicAuth rule skips) and a token as a URL's user (``https://<token>@host``, a Sentry DSN);
- environment-style assignments whose name says secret (``GH_PAT=...``, ``SENTRY_DSN=...``, ``PRIVATE=...``,
  ``{'DB_PASSWORD': '...'}``), and bearer tokens (``Authorization: Bearer ...``).

detect-secrets' ``# pragma: allowlist secret`` is not honoured: generated code could print it beside a value to
smuggle it out. Redaction keeps the line count (a block of several lines becomes the marker and empty lines),
so ``path:Lstart-end`` citations of redacted files stay right. Pure functions of the text: no I/O, and
detect-secrets' global settings are never touched. Speed: 20-30 ms per 1,000 lines of source on one core
(300,000 lines of rich, click, pygments, pydantic and langchain_core); at most a few seconds for 1 MB of text
built to make regular expressions backtrack.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_SKIPPED_PLUGINS = {"IPPublicDetector", "PrivateKeyDetector"}
# A rule whose regular expression backtracks over a whole line (npm's ``//.+/:_authToken=``) runs only on text
# holding its literal: without it, a 1 MB line of ``//`` takes minutes.
_NEEDLES = {"NpmDetector": "_authToken"}
# Suffixes read with the keyword detector's unquoted ``key = value`` table besides detect-secrets' own
# (.ini, .cfg, .conf, .toml, .yaml, .properties): shell and dotenv files.
_CONFIG_SUFFIXES = {".sh", ".bash", ".zsh", ".env", ".envrc"}
_KNOWN_SUFFIXES = {".ini", ".cfg", ".cnf", ".conf", ".cf", ".toml", ".yaml", ".yml", ".eyaml", ".properties", ".go",
                   ".c", ".cpp", ".cs", ".m", ".java", ".js", ".py", ".pyi", ".swift", ".tf", ".cls"}  # fmt: skip
# What a PEM block holds: base64, headers (Proc-Type: 4,ENCRYPTED), \n escapes; never "-----", so that the
# search from one BEGIN stops at the next line of dashes (linear time).
_BODY = r"(?:[A-Za-z0-9+/=\s\\:,.]|-(?!----))"
_BEGIN = r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
_KEY_BLOCK = re.compile(_BEGIN + _BODY + r"*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_CUT = re.compile(_BEGIN + r"(?:(?:\\n|\r?\n)(?:[A-Za-z][A-Za-z-]*: [^\n]*|[A-Za-z0-9+/=]{8,}))+(?:\\n)?")
_PUTTY = re.compile(r"PuTTY-User-Key-File-\d+:(?:.{0,8000}?Private-MAC: *[0-9a-fA-F]+|.{0,8000})", re.DOTALL)
_SCHEME = r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,30}://"  # starts only where a scheme can: linear time
_URL_PASSWORD = re.compile(_SCHEME + r"[^\s:/?#\[\]@\"'<>]*:(?P<value>[^\s/?#\"'<>]+)@[\w\[]")
_URL_TOKEN = re.compile(_SCHEME + r"(?P<value>[A-Za-z0-9_\-]{16,})@[\w\[]")
_ENV_WORDS = r"(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|PASS|PAT|DSN|PRIVATE|CREDENTIALS?|AUTH)"
_ENV_NAME = rf"(?:[A-Z0-9]{{1,30}}_){{0,6}}{_ENV_WORDS}(?:_[A-Z0-9]{{1,30}}){{0,6}}"  # bounded: linear time
_ENV_ASSIGNMENT = re.compile(
    rf"(?<![\w.])(?:{_ENV_NAME}=(?P<q>[\"']?)(?P<value>[^\s\"'`;,)]+)(?P=q)"
    rf"|(?P<nq>[\"']){_ENV_NAME}(?P=nq):\s*(?P<vq>[\"'])(?P<quoted>[^\"'\n]+)(?P=vq))"
)
_BEARER = re.compile(r"\b[Bb]earer\s+(?P<value>[A-Za-z0-9\-._~+/]{16,}=*)")


@dataclass(frozen=True)
class Secret:
    """One secret found in a text: never its value, so that printing one leaks nothing.

    ``kind`` is a slug (``openai-token``, ``aws-access-key``, ``secret-keyword``, ``private-key``,
    ``url-password``, ...); ``line`` is the 1-based line where it starts; ``span`` is ``(start, end)``, the
    character offsets of its value in the text (``text[start:end]``, end exclusive).
    """

    kind: str
    line: int
    span: tuple[int, int]


@dataclass(frozen=True)
class _Rule:
    """A regular expression over the whole text; ``pick`` returns a match's (start, end), or None to drop it."""

    kind: str
    pattern: re.Pattern
    pick: Callable[[re.Match], tuple[int, int] | None]
    strong: bool = True  # a token format; weak rules (keywords, entropy) get detect-secrets' heuristics
    checked: bool = True  # False for key blocks: a whole block is not a value to test
    needle: str = ""  # run only on text that holds it


def find_secrets(text: str, *, path: str | None = None) -> list[Secret]:
    """The secrets in ``text``, in order of position, overlapping finds merged into one.

    Args:
        text: any text (a file's content, a prompt, a model's answer, a test run's output).
        path: the file ``text`` came from, when it is one: its suffix chooses the keyword rules
            (unquoted ``password = value`` counts in ``.ini``, ``.cfg``, ``.toml``, ``.yaml`` and shell files; in
            code and free text the value must be quoted).
    """
    if not text:
        return []
    merged: list[list] = []
    for start, end, _, kind in sorted((start, -end, rank, kind) for kind, start, end, rank in _candidates(text, path)):
        end = -end
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, kind])
    secrets, line, counted = [], 1, 0
    for start, end, kind in merged:
        line, counted = line + text.count("\n", counted, start), start
        secrets.append(Secret(kind, line, (start, end)))
    return secrets


def redact_secrets(text: str, *, path: str | None = None) -> str:
    """``text`` with each secret that :func:`find_secrets` finds replaced by ``[REDACTED:<kind>]``.

    The rest of each line is kept, and so is the number of lines. Returns ``text`` itself when it holds
    no secret.
    """
    return redact(text, find_secrets(text, path=path))


@functools.cache
def secret_rules_version() -> str:
    """A fingerprint of the rules :func:`find_secrets` applies: sha256 (first 16 hex) of this module's source
    and detect-secrets' version. A cache of scan results (read-repo's per-file stat cache) is valid only while
    it stays the same; it changes whenever the rules may have.
    """
    from importlib.metadata import version

    source = Path(__file__).read_bytes()
    return hashlib.sha256(source + b"\0detect-secrets " + version("detect-secrets").encode()).hexdigest()[:16]


def redact(text: str, secrets: list[Secret]) -> str:
    """``text`` with the given ``secrets`` (from :func:`find_secrets` on this very text) replaced."""
    if not secrets:
        return text
    parts, last = [], 0
    for secret in secrets:
        start, end = secret.span
        parts.extend((text[last:start], f"[REDACTED:{secret.kind}]", "\n" * text.count("\n", start, end)))
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _candidates(text: str, path: str | None):
    """(kind, start, end, rank) for every rule's match that survives the heuristics; may overlap. Rank 0 is a
    token format, 1 a weak rule: of two finds with one span, the token's kind names it."""
    from detect_secrets.filters import heuristic

    rules = _rules()
    for rule in rules.always:
        if rule.needle and rule.needle not in text:
            continue
        for match in rule.pattern.finditer(text):
            span = rule.pick(match)
            if span is None or span[0] >= span[1]:
                continue
            value = text[span[0] : span[1]]
            if not rule.checked:
                yield rule.kind, span[0], span[1], 0
            elif _looks_like_a_secret(value, rule.strong, heuristic) and (
                rule.strong or not _indirect(text, span[0], heuristic, value)
            ):
                yield rule.kind, span[0], span[1], 0 if rule.strong else 1
    yield from _keyword_candidates(text, path, rules.keyword_tables, heuristic)


def _looks_like_a_secret(value: str, strong: bool, heuristic) -> bool:
    """detect-secrets' value heuristics; templates and ``$VARS`` only for weak rules. A marker is no secret."""
    if value.startswith("[REDACTED:"):
        return False
    if heuristic.is_sequential_string(value) or heuristic.is_potential_uuid(value):
        return False
    if heuristic.is_not_alphanumeric_string(value):
        return False
    return strong or not (heuristic.is_templated_secret(value) or heuristic.is_prefixed_with_dollar_sign(value))


def _line_at(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end >= 0 else len(text)]


def _indirect(text: str, offset: int, heuristic, value: str) -> bool:
    """``key = get_key()``, ``secret = request.headers['x']`` and names ending in ``_id`` (detect-secrets)."""
    line = _line_at(text, offset)
    return heuristic.is_indirect_reference(line) or heuristic.is_likely_id_string(value, line)


def _keyword_candidates(text: str, path: str | None, tables, heuristic):
    """detect-secrets' KeywordDetector, every match of each of its regexes, on lines holding a keyword."""
    table = tables.for_path(path)
    seen_lines: set[int] = set()
    for hit in tables.keyword.finditer(text):
        line_start = text.rfind("\n", 0, hit.start()) + 1
        if line_start in seen_lines:
            continue
        seen_lines.add(line_start)
        line_end = text.find("\n", hit.start())
        line = text[line_start : line_end if line_end >= 0 else len(text)]
        if heuristic.is_indirect_reference(line):
            continue
        for pattern, group in table.items():
            for match in pattern.finditer(line):
                value = match.group(group)
                if value and _looks_like_a_secret(value, False, heuristic):
                    if not heuristic.is_likely_id_string(value, line):
                        yield "secret-keyword", line_start + match.start(group), line_start + match.end(group), 1


def _slug(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


def _plugin_pick(match: re.Match) -> tuple[int, int] | None:
    """A detect-secrets denylist match's value: its longest group that is not the match's own prefix (the
    GitHub rule's group is ``ghp``), else the whole match without the delimiters some rules include."""
    groups = [i for i in range(1, (match.re.groups or 0) + 1) if match.group(i) and match.start(i) > match.start()]
    if groups:
        best = max(groups, key=lambda i: match.end(i) - match.start(i))
        return match.start(best), match.end(best)
    start, end = match.span()
    while start < end and match.string[start] in " \t\r\n=:\"'":
        start += 1
    while end > start and match.string[end - 1] in " \t\r\n\"'":
        end -= 1
    return start, end


def _group(name: str) -> Callable[[re.Match], tuple[int, int] | None]:
    def pick(match: re.Match) -> tuple[int, int] | None:
        for group in (name, "quoted"):
            if group in match.re.groupindex and match.group(group):
                return match.span(group)
        return None

    return pick


def _entropy_rule(plugin) -> _Rule:
    """detect-secrets' high-entropy check: a quoted string of the plugin's charset above its limit."""

    def pick(match: re.Match) -> tuple[int, int] | None:
        if plugin.calculate_shannon_entropy(match.group(2)) > plugin.entropy_limit:
            return match.span(2)
        return None

    return _Rule(_slug(plugin.secret_type), plugin.regex, pick, strong=False)


@dataclass(frozen=True)
class _KeywordTables:
    keyword: re.Pattern  # any line worth trying: it holds one of the keywords
    quoted: dict
    by_suffix: dict

    def for_path(self, path: str | None) -> dict:
        if path is None:
            return self.quoted
        suffix = os.path.splitext(path)[1].lower() or os.path.basename(path).lower()
        return self.by_suffix.get(suffix, self.quoted)


@dataclass(frozen=True)
class _Rules:
    always: tuple[_Rule, ...]
    keyword_tables: _KeywordTables


@functools.cache
def _rules() -> _Rules:
    """Every rule, built once (detect-secrets is imported here, not when my_llm is)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
    from detect_secrets.util.filetype import determine_file_type

    rules = [
        _Rule("private-key", _KEY_BLOCK, lambda m: m.span(), checked=False),
        _Rule("private-key", _KEY_CUT, lambda m: m.span(), checked=False),
        _Rule("private-key", _PUTTY, lambda m: m.span(), checked=False),
        _Rule("url-password", _URL_PASSWORD, _group("value")),
        _Rule("url-token", _URL_TOKEN, _group("value")),
        _Rule("env-secret", _ENV_ASSIGNMENT, _group("value"), strong=False),
        _Rule("bearer-token", _BEARER, _group("value")),
    ]
    for plugin_class in get_mapping_from_secret_type_to_class().values():
        if plugin_class.__name__ in _SKIPPED_PLUGINS:
            continue
        plugin = plugin_class()
        if isinstance(plugin, RegexBasedDetector):
            kind = _slug(plugin.secret_type)
            needle = _NEEDLES.get(plugin_class.__name__, "")
            rules.extend(
                _Rule(kind, re.compile(p.pattern, p.flags | re.MULTILINE), _plugin_pick, needle=needle)
                for p in plugin.denylist
            )
        elif isinstance(plugin, HighEntropyStringsPlugin):
            rules.append(_entropy_rule(plugin))
    quoted = _bounded_table(keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP, keyword)
    config = _bounded_table(keyword.CONFIG_DENYLIST_REGEX_TO_GROUP, keyword)
    by_type = {filetype: _bounded_table(table, keyword) for filetype, table in keyword.REGEX_BY_FILETYPE.items()}
    by_suffix = {suffix: by_type.get(determine_file_type(f"x{suffix}"), quoted) for suffix in _KNOWN_SUFFIXES}
    by_suffix.update({suffix: config for suffix in _CONFIG_SUFFIXES})
    tables = _KeywordTables(re.compile(keyword.DENYLIST_REGEX, re.IGNORECASE), quoted, by_suffix)
    return _Rules(tuple(rules), tables)


def _bounded_table(table: dict, keyword) -> dict:
    """detect-secrets' keyword regexes in linear time: its ``\\w*`` around a keyword becomes ``\\w{0,40}`` and the
    secret's lookaheads ``(?=[^...]*)(?=\\w+)`` become ``(?=\\w)`` (the same matches). As published they take
    minutes on one long word full of keywords (``API_KEY_API_KEY_...``). A pattern of another shape (a later
    detect-secrets) is kept as it is."""
    affix = keyword.AFFIX_REGEX
    if not keyword.DENYLIST_REGEX.endswith(affix) or not keyword.DENYLIST_REGEX_WITH_PREFIX.startswith(affix):
        return table
    denylist = keyword.DENYLIST_REGEX[: -len(affix)] + r"\w{0,40}"
    secret = keyword.SECRET.replace(r"(?=[^\v\'\"]*)", "").replace(r"(?=\w+)", r"(?=\w)")
    out = {}
    for pattern, group in table.items():
        text = pattern.pattern.replace(keyword.DENYLIST_REGEX_WITH_PREFIX, r"\w{0,40}" + denylist)
        text = text.replace(keyword.DENYLIST_REGEX, denylist).replace(keyword.SECRET, secret)
        out[re.compile(text, pattern.flags)] = group
    return out
