"""The email trigger against a real SMTP server in-process (aiosmtpd): allowed mail arrives, anything else is
refused, the hourly cap holds, .eml files without a server, and a runner killed while the server holds the
mail does not send it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from my_llm import Settings
from my_llm.triggers import Ledger
from tests.test_triggers_support import (
    ROOT,
    ai_record,
    append,
    mailbox_fixture,  # noqa: F401 (the fixture `mailbox`)
    run_cli,
    tool_records,
    write_config,
)

TEMPLATE = "Sending it.\nEMAIL: to: {to}\nsubject: weekly numbers\n\nAll good this week.\n"


def _config(tmp_path, mailbox=None, extra=""):
    smtp = f'smtp = "{mailbox.url}"' if mailbox else ""
    return write_config(
        tmp_path,
        f"""\
        ledger = "ledger.sqlite"

        [[trigger]]
        kind = "email"
        namespaces = ["analytics"]
        allow = ["team@example.com", "@example.org"]
        from = "bot@example.com"
        {smtp}
        {extra}
        """,
    )


def _run(config):
    return run_cli("run", "--once", "--source", "log", "--from-start", "--config", str(config))


def test_an_allowed_mail_is_sent_and_logged(tmp_path, settings: Settings, mailbox):
    record = ai_record("analytics", TEMPLATE.format(to="team@example.com"), "weekly")
    append(settings, record)
    _run(_config(tmp_path, mailbox))
    ((recipients, message),) = mailbox.received
    assert recipients == ["team@example.com"]
    assert message["Subject"] == "weekly numbers" and message["From"] == "bot@example.com"
    assert message.get_payload().strip() == "All good this week."
    assert message["Message-ID"] == f"<trigger-{record.id}-email-0@my-llm>"
    (tool,) = tool_records(settings, "analytics")
    assert tool.session_id == "weekly" and tool.metadata["trigger"]["decision"] == "fired"
    assert "sent to team@example.com" in tool.content


def test_recipients_off_the_allow_list_are_refused_and_nothing_is_sent(tmp_path, settings: Settings, mailbox):
    append(
        settings,
        ai_record("analytics", TEMPLATE.format(to="someone@evil.com")),
        ai_record("analytics", TEMPLATE.format(to="team@example.com, boss@sub.example.org")),
        ai_record("analytics", "EMAIL: to: team@example.com\nbcc: spy@evil.com\n\nhi"),
    )
    _run(_config(tmp_path, mailbox))
    assert mailbox.received == []
    tools = tool_records(settings, "analytics")
    assert [tool.metadata["trigger"]["decision"] for tool in tools] == ["refused"] * 3
    assert "someone@evil.com is not on the allow-list" in tools[0].content
    assert "boss@sub.example.org is not on the allow-list" in tools[1].content


def test_the_hourly_cap_holds(tmp_path, settings: Settings, mailbox):
    append(settings, *[ai_record("analytics", TEMPLATE.format(to=f"n{n}@example.org")) for n in range(3)])
    _run(_config(tmp_path, mailbox, "max_per_hour = 2"))
    assert len(mailbox.received) == 2
    decisions = [tool.metadata["trigger"]["decision"] for tool in tool_records(settings, "analytics")]
    assert decisions == ["fired", "fired", "refused"]
    assert "max_per_hour = 2" in tool_records(settings, "analytics")[-1].content


def test_without_a_server_mail_goes_to_eml_files(tmp_path, settings: Settings):
    record = ai_record("analytics", TEMPLATE.format(to="team@example.com"))
    append(settings, record)
    _run(_config(tmp_path, extra='outbox_dir = "out"'))
    (eml,) = (tmp_path / "out").iterdir()
    assert eml.name == f"{record.id}-email-0.eml"
    assert b"Subject: weekly numbers" in eml.read_bytes() and b"To: team@example.com" in eml.read_bytes()


def test_a_runner_killed_while_the_server_holds_the_mail_does_not_send_it_again(tmp_path, settings: Settings, mailbox):
    """The effect happened (the server has the mail), the outcome was never recorded: the restart reports
    `unknown` and does not send a second mail (at most once; the remaining window, said in the audit)."""
    config = _config(tmp_path, mailbox)
    record = ai_record("analytics", TEMPLATE.format(to="team@example.com"))
    append(settings, record)
    mailbox.hold = True
    code = "import sys; from my_llm.cli_triggers import triggers; triggers(sys.argv[1:])"
    args = ["run", "--once", "--source", "log", "--from-start", "--config", str(config)]
    child = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=os.environ.copy())
    try:
        assert mailbox.arrived.wait(30), "the runner never sent the mail"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
    mailbox.release.set()
    mailbox.hold = False
    ledger = Ledger(tmp_path / "ledger.sqlite")
    assert [entry.state for entry in ledger.unfinished()] == ["attempting"]
    ledger.close()

    output = run_cli("run", "--once", "--source", "log", "--config", str(config))  # the restart

    assert len(mailbox.received) == 1
    assert "unknown" in output
    (tool,) = tool_records(settings, "analytics")
    assert tool.metadata["trigger"]["decision"] == "unknown" and "not repeated" in tool.content
    run_cli("run", "--once", "--source", "log", "--config", str(config))
    assert len(mailbox.received) == 1 and len(tool_records(settings, "analytics")) == 1
