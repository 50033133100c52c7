"""Trigger parts without servers: patterns, the TOML config and its errors, the SQL check, mail templates and
the allow-list, which records may fire, and a plugin kind found through the entry point group."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from my_llm import Settings
from my_llm.triggers import (
    AllowList,
    HistoryWriter,
    Ledger,
    Pattern,
    Refusal,
    Registry,
    Runner,
    TriggerConfigError,
    check_statement,
    load_config,
    parse_mail,
)
from tests.test_triggers_support import ai_record, write_config


def test_a_prefix_matches_a_line_to_the_blank_line_and_a_fenced_block_but_not_code():
    text = textwrap.dedent(
        """\
        Here you go.
        SQL: SELECT name
        FROM users

        Not part of it.
        ```sql
        SQL: SELECT 2
        ```
        ```python
        x = "SQL: not this one"
        ```
          SQL: SELECT 3

        ```SQL: SELECT 4``` is inline code, not a fence opening
        SQL: SELECT 5
        """
    )
    assert Pattern(prefix="SQL:").find(text) == ["SELECT name\nFROM users", "SELECT 2", "SELECT 3", "SELECT 5"]


def test_an_email_runs_to_the_end_and_a_regex_pattern_uses_its_body_group():
    text = "Sure.\nEMAIL: to: a@example.org\nsubject: hi\n\nBody line 1\n\nBody line 2\n"
    assert Pattern(prefix="EMAIL:", until="end").find(text) == [
        "to: a@example.org\nsubject: hi\n\nBody line 1\n\nBody line 2"
    ]
    import re

    ticket = Pattern(regex=re.compile(r"(?m)^TICKET\[(?P<body>[^\]]+)\]"))
    assert ticket.find("TICKET[disk full]\nTICKET[cpu]") == ["disk full", "cpu"]


SQL_CONFIG = """\
    [[trigger]]
    name = "shop"
    kind = "sql"
    namespaces = ["analytics"]
    database = "sqlite:///shop.db"
    max_rows = 100
"""


def test_a_config_loads_with_relative_paths_from_its_own_folder(tmp_path):
    path = write_config(
        tmp_path,
        SQL_CONFIG + '\n[[trigger]]\nkind = "email"\nnamespaces = ["analytics", "ops"]\nallow = ["@example.org"]\n',
    )
    config = load_config(path)
    assert [trigger.name for trigger in config.triggers] == ["shop", "email"]
    assert config.namespaces() == ["analytics", "ops"]
    assert config.triggers[0].database.path == tmp_path / "shop.db"
    assert config.triggers[1].outbox_dir == tmp_path / "mail-out"
    assert config.ledger_path(tmp_path / "mh") == tmp_path / "mh" / ".triggers" / "ledger.sqlite"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            SQL_CONFIG.replace("max_rows = 100", 'max_rows = "a lot"'),
            r"triggers.toml:6: \[\[trigger\]\] #1, key 'max_rows': must be a whole number",
        ),
        (
            SQL_CONFIG.replace('    database = "sqlite:///shop.db"\n', ""),
            r"triggers.toml:1: \[\[trigger\]\] #1, key 'database': is missing: add database = a string",
        ),
        (
            SQL_CONFIG.replace("max_rows", "max_row"),
            r"triggers.toml:6: \[\[trigger\]\] #1, key 'max_row': unknown key \(did you mean 'max_rows'\?\)",
        ),
        (
            SQL_CONFIG.replace('"sql"', '"ticket"'),
            r"triggers.toml:3: .*unknown kind 'ticket' \(installed: .*email.*sql",
        ),
        (SQL_CONFIG.replace('"analytics"', '"../etc"'), r"key 'namespaces': The namespace '../etc'"),
        (SQL_CONFIG.replace("sqlite:///shop.db", "postgres://db/shop"), r"key 'database': the database must be sqlite"),
        (SQL_CONFIG + SQL_CONFIG, r"triggers.toml:\d+: \[\[trigger\]\] #2, key 'name': two triggers are named 'shop'"),
        (SQL_CONFIG.replace("max_rows = 100", "max_rows = = 1"), r"triggers.toml:6: not valid TOML: "),
        ("leger = 'x'\n" + SQL_CONFIG, r"triggers.toml:1:, key 'leger': unknown key"),
        (
            '[[trigger]]\nkind = "email"\nnamespaces = ["a"]\nalow = ["x@example.org"]\n',
            r"triggers.toml:1: \[\[trigger\]\] #1, key 'allow': is missing \(is 'alow' a typo\?\)",
        ),
        (
            '[[trigger]]\nkind = "email"\nnamespaces = ["a"]\nallow = ["x@example.org"]\nsmtp = "smtp://h:25"\n'
            'password_env = "NO_SUCH_VAR_XYZ"\n',
            r"triggers.toml:6: .*key 'password_env': the environment variable NO_SUCH_VAR_XYZ is not set",
        ),
    ],
)
def test_config_errors_name_the_file_line_and_key(tmp_path, text, expected):
    path = write_config(tmp_path, text)
    with pytest.raises(TriggerConfigError, match=expected):
        load_config(path, environ={})


def test_a_missing_config_file_says_so(tmp_path):
    with pytest.raises(TriggerConfigError, match="cannot read the triggers file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM orders",
        "SELECT status, count(*) FROM orders GROUP BY status ORDER BY 2 DESC LIMIT 5;",
        "WITH big AS (SELECT * FROM orders WHERE total > 10) SELECT count(*) FROM big",
        "SELECT 1 UNION ALL SELECT 2",
        "SELECT 1 -- ; DROP TABLE orders",
    ],
)
def test_read_only_queries_pass_the_check(sql, dialect):
    assert check_statement(sql, dialect)


@pytest.mark.parametrize("dialect", ["sqlite", "duckdb"])
@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE orders",
        "DELETE FROM orders",
        "ATTACH DATABASE 'other.db' AS other",
        "PRAGMA writable_schema = 1",
        "SELECT 1; DELETE FROM orders",
        "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone",
        "WITH x AS (SELECT 1) INSERT INTO orders SELECT * FROM x",
        "COPY orders TO 'out.csv'",
        "SELECT * INTO copy_of_orders FROM orders",
        "SELECT load_extension('evil')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "VACUUM INTO 'copy.db'",
        "UPDATE orders SET total = 0",
        "CREATE TABLE t AS SELECT 1",
        "",
    ],
)
def test_writes_and_escapes_are_refused_by_the_check(sql, dialect):
    with pytest.raises(Refusal):
        check_statement(sql, dialect)


def test_mail_templates_and_the_allow_list():
    mail = parse_mail("to: Team <TEAM@example.com>, b@example.org\ncc: c@sub.example.org\nsubject: weekly\n\nAll good.")
    assert mail.to == ("team@example.com", "b@example.org") and mail.cc == ("c@sub.example.org",)
    assert (mail.subject, mail.body) == ("weekly", "All good.")
    allow = AllowList.parse(["team@example.com", "@example.org"])
    assert allow.allows("TEAM@example.com") and allow.allows("anyone@example.org")
    assert not allow.allows("c@sub.example.org") and not allow.allows("team@example.com.evil.net")
    hidden = parse_mail("to: team@example.com <b@evil.com>\n\nx")  # a display name is not an address
    assert hidden.to == ("team@example.com", "b@evil.com") and not allow.allows(hidden.to[1])
    for bad in (
        "bcc: x@example.org\n\nhi",
        "to: a@example.org; b@example.org\n\nx",
        "subject: no recipient\n\nx",
        "to: nobody\n\n",
    ):
        with pytest.raises(Refusal):
            parse_mail(bad)
    with pytest.raises(ValueError):
        AllowList.parse(["example.org"])


def _runner(tmp_path, config_text):
    config = load_config(write_config(tmp_path, config_text))
    return config, Runner(config.triggers, Ledger(None), None, dry_run=True)


def test_only_live_ai_turns_of_watched_namespaces_are_looked_at(tmp_path):
    config, _ = _runner(tmp_path, SQL_CONFIG)
    (trigger,) = config.triggers
    text = "SQL: SELECT 1"
    assert len(trigger.matches(ai_record("analytics", text))) == 1
    assert trigger.matches(ai_record("other", text)) == []
    assert trigger.matches(ai_record("analytics", text, source="chatgpt_export")) == []  # imports never fire
    assert trigger.matches(ai_record("analytics", text, metadata={"task": "question_memory"})) == []
    human = ai_record("analytics", text)
    assert trigger.matches(human.__class__(**{**human.__dict__, "role": "human"})) == []


def test_old_records_and_matches_past_the_limit_are_refused(tmp_path):
    config, runner = _runner(tmp_path, SQL_CONFIG)
    old = ai_record("analytics", "SQL: SELECT 1", created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2))
    many = ai_record("analytics", "\n\n".join(f"SQL: SELECT {n}" for n in range(4)))
    decisions = [
        handled.decision
        for record in (old, many)
        for t in config.triggers
        for m in t.matches(record)
        for handled in [runner.handle_match(t, m)]
    ]
    assert decisions == ["would_refuse", "would_fire", "would_fire", "would_fire", "would_refuse"]


PLUGIN = """
from pathlib import Path
from my_llm.triggers import FIRED, Outcome, PatternTrigger

class TicketTrigger(PatternTrigger):
    def __init__(self, common, folder):
        super().__init__(common)
        self.folder = folder

    @classmethod
    def from_table(cls, table):
        common = table.common("TICKET:")
        return cls(common, table.path("folder"))

    def describe(self):
        return f"tickets in {self.folder}"

    def check_body(self, body, context):
        pass

    def fire(self, match, context):
        self.folder.mkdir(exist_ok=True)
        (self.folder / f"{match.record.id}.txt").write_text(match.body)
        return Outcome(FIRED, "ticket filed", "Ticket filed: " + match.body)
"""


def test_a_plugin_kind_comes_from_the_entry_point_group(tmp_path, monkeypatch, settings: Settings):
    (tmp_path / "ticket_plugin.py").write_text(PLUGIN, encoding="utf-8")
    dist = tmp_path / "ticket_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ticket-plugin\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[my_llm.triggers]\nticket = ticket_plugin:TicketTrigger.from_table\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ticket" in Registry().kinds()
    config = load_config(
        write_config(tmp_path, '[[trigger]]\nkind = "ticket"\nnamespaces = ["ops"]\nfolder = "tickets"\n')
    )
    writer = HistoryWriter(settings)
    runner = Runner(config.triggers, Ledger(tmp_path / "ledger.sqlite"), writer)
    record = ai_record("ops", "The disk is full.\nTICKET: disk full on db-1")
    (trigger,) = config.triggers
    (handled,) = [runner.handle_match(trigger, match) for match in trigger.matches(record)]
    writer.close()
    assert handled.decision == "fired"
    assert (tmp_path / "tickets" / f"{record.id}.txt").read_text() == "disk full on db-1"
