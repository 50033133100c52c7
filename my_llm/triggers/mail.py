"""The ``email`` trigger: ``EMAIL:`` in an AI message sends a mail to allowed recipients only, at most
``max_per_hour`` an hour; without an SMTP server it writes ``.eml`` files (a safe default that works offline).

The template is header lines, a blank line, then the body, as in a mail message (only ``to``, ``cc`` and
``subject`` headers; ``to`` and ``cc`` may repeat or list several addresses)::

    EMAIL: to: team@example.com
    subject: weekly numbers

    All good this week.

Config keys (besides the common ones, :class:`my_llm.triggers.base.Common`)::

    allow = ["team@example.com", "@example.org"]  # exact addresses or whole domains (required)
    smtp = "smtp://127.0.0.1:2525"                # smtps://host:port for TLS; absent: .eml files
    starttls = false                              # STARTTLS on smtp://
    username = "bot"                              # with password_env: the variable holding the password
    password_env = "SMTP_PASSWORD"
    from = "my-llm@example.com"
    outbox_dir = "mail-out"                       # where .eml files go without smtp (default mail-out)
    max_per_hour = 20
    timeout_s = 10

The default prefix is ``EMAIL:``, to the end of the message (or the closing fence of a fenced block).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses
from pathlib import Path
from urllib.parse import urlsplit

from my_llm.record import parse_time
from my_llm.triggers.base import FIRED, Common, Context, Match, Outcome, PatternTrigger, Refusal, TriggerError
from my_llm.triggers.config import TriggerTable

HEADERS = ("to", "cc", "subject")
MAX_RECIPIENTS = 20
MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 100_000
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


@dataclass(frozen=True)
class Mail:
    """A parsed template: ``to``/``cc`` addresses (lower-cased), ``subject``, ``body``."""

    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.to + self.cc


def parse_mail(template: str) -> Mail:
    """Parse ``header: value`` lines, a blank line, then the body.

    Raises:
        Refusal: a header other than to/cc/subject, a line that is not a header, an address that is not a
            plain ``local@domain``, no recipient, more than 20, a subject over 200 or a body over 100,000
            characters.
    """
    lines = template.splitlines()
    values: dict[str, list[str]] = {name: [] for name in HEADERS}
    position = 0
    while position < len(lines) and lines[position].strip():
        name, colon, value = lines[position].partition(":")
        if not colon or name.strip().lower() not in HEADERS:
            raise Refusal(f"the mail header {lines[position].strip()[:60]!r} is not one of to:, cc:, subject:")
        values[name.strip().lower()].append(value.strip())
        position += 1
    body = "\n".join(lines[position + 1 :]).strip()
    to, cc = _addresses(values["to"]), _addresses(values["cc"])
    subject = " ".join(values["subject"]).strip()
    if not to:
        raise Refusal("the mail has no to: line")
    if len(to) + len(cc) > MAX_RECIPIENTS:
        raise Refusal(f"the mail has {len(to) + len(cc)} recipients; at most {MAX_RECIPIENTS}")
    if len(subject) > MAX_SUBJECT_CHARS or len(body) > MAX_BODY_CHARS:
        limits = f"at most {MAX_SUBJECT_CHARS} and {MAX_BODY_CHARS:,} characters"
        raise Refusal(f"the subject or body is too long ({limits})")
    return Mail(to, cc, subject, body)


def _addresses(values: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for _, address in getaddresses(values):
        if not _ADDRESS.fullmatch(address):
            raise Refusal(f"{address or ', '.join(values)!r} is not a plain address (local@domain)")
        if address.lower() not in found:
            found.append(address.lower())
    return tuple(found)


@dataclass(frozen=True)
class AllowList:
    """Exact addresses and whole domains (``@example.org``: that domain only, not its subdomains)."""

    addresses: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def parse(cls, entries: list[str]) -> AllowList:
        """Raises ValueError for an entry that is neither ``local@domain`` nor ``@domain``."""
        addresses, domains = set(), set()
        for entry in (item.strip().lower() for item in entries):
            if entry.startswith("@") and _ADDRESS.fullmatch("x" + entry):
                domains.add(entry[1:])
            elif _ADDRESS.fullmatch(entry):
                addresses.add(entry)
            else:
                raise ValueError(f"{entry!r} is neither an address (team@example.com) nor a domain (@example.org)")
        return cls(frozenset(addresses), frozenset(domains))

    def allows(self, address: str) -> bool:
        address = address.lower()
        return address in self.addresses or address.rpartition("@")[2] in self.domains


@dataclass(frozen=True)
class SmtpServer:
    """Where mail goes: ``host``, ``port``, ``tls`` (implicit TLS, ``smtps://``), ``starttls``, optional
    ``username``/``password``, ``timeout_s`` per connection."""

    host: str
    port: int
    tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0

    @property
    def url(self) -> str:
        return f"{'smtps' if self.tls else 'smtp'}://{self.host}:{self.port}"

    def send(self, message: EmailMessage, sender: str, recipients: tuple[str, ...]) -> None:
        """Deliver to exactly ``recipients`` (never to addresses read from the headers).

        Raises:
            TriggerError: the server could not be reached or refused the mail.
        """
        context = ssl.create_default_context()
        try:
            if self.tls:
                client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with client:
                if self.starttls:
                    client.starttls(context=context)
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message, from_addr=sender, to_addrs=list(recipients))
        except (smtplib.SMTPException, OSError) as error:
            raise TriggerError(f"{self.url} did not take the mail: {error}") from None


class EmailTrigger(PatternTrigger):
    """Sends the mail of an ``EMAIL:`` template (see the module docstring).

    Not idempotent when it sends through SMTP (a mail cannot be unsent: after a crash between the
    send and its record, the runner reports the outcome as unknown instead of sending again). Writing
    ``.eml`` files is idempotent: the file name and bytes depend only on the match.

    Args:
        allow: who may receive mail.
        sender: the From address.
        smtp: the server, or None to write ``<outbox_dir>/<record id>-<trigger>-<n>.eml``.
        outbox_dir: the folder for ``.eml`` files.
        max_per_hour: mails (sent, or attempted with an unknown outcome) per trigger in any hour.
    """

    def __init__(
        self,
        common: Common,
        allow: AllowList,
        sender: str,
        smtp: SmtpServer | None,
        outbox_dir: Path,
        max_per_hour: int,
    ) -> None:
        super().__init__(common)
        self.allow, self.sender, self.smtp = allow, sender, smtp
        self.outbox_dir, self.max_per_hour = outbox_dir, max_per_hour
        self.idempotent = smtp is None

    @classmethod
    def from_table(cls, table: TriggerTable) -> EmailTrigger:
        """Build from a ``[[trigger]]`` table (raises TriggerConfigError naming the key)."""
        common = table.common("EMAIL:", "end")
        try:
            allow = AllowList.parse(table.texts("allow"))
        except ValueError as error:
            raise table.error(str(error), "allow") from None
        sender = table.text("from", "my-llm@localhost")
        if not _ADDRESS.fullmatch(sender) and sender != "my-llm@localhost":
            raise table.error("must be a plain address (local@domain)", "from")
        smtp = _smtp_from(table)
        outbox_dir = table.path("outbox_dir", "mail-out")
        max_per_hour = table.integer("max_per_hour", 20, low=1, high=10_000)
        return cls(common, allow, sender, smtp, outbox_dir, max_per_hour)

    def describe(self) -> str:
        """``EMAIL: ... -> smtp://host:port`` (or the .eml folder), the allow-list and the cap."""
        where = self.smtp.url if self.smtp else f".eml files in {self.outbox_dir}"
        allowed = sorted(self.allow.addresses) + sorted("@" + domain for domain in self.allow.domains)
        return f"{self.common.pattern.describe()} -> {where}; allow {', '.join(allowed)}; {self.max_per_hour}/hour"

    def mail(self, body: str) -> Mail:
        """The parsed template, every recipient allowed. Raises Refusal otherwise."""
        mail = parse_mail(body)
        refused = [address for address in mail.recipients if not self.allow.allows(address)]
        if refused:
            raise Refusal(f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not on the allow-list")
        return mail

    def check_body(self, body: str, context: Context) -> None:
        """Parse, check the allow-list and the hourly cap (Refusal when any fails)."""
        self.mail(body)
        sent = context.recent_firings(self.name, 3600.0)
        if sent >= self.max_per_hour:
            raise Refusal(f"{sent} mails in the last hour; max_per_hour = {self.max_per_hour}")

    def fire(self, match: Match, context: Context) -> Outcome:
        """Send (or write the .eml). Raises Refusal (template, allow-list) or TriggerError (the server)."""
        mail = self.mail(match.body)
        message = self.message(match, mail)
        details = {"to": list(mail.to), "cc": list(mail.cc), "subject": mail.subject}
        details["message_id"] = message["Message-ID"]
        if self.smtp is None:
            path = self.outbox_dir / f"{match.record.id}-{match.trigger}-{match.index}.eml"
            _write_atomically(path, message.as_bytes())
            why = f"written to {path} (no SMTP server is configured)"
            return Outcome(FIRED, why, f"Mail to {', '.join(mail.recipients)} {why}.", {**details, "file": str(path)})
        self.smtp.send(message, self.sender, mail.recipients)
        why = f"sent to {', '.join(mail.recipients)} through {self.smtp.url}"
        return Outcome(FIRED, why, f"Mail {why} (subject {mail.subject!r}).", {**details, "server": self.smtp.url})

    def message(self, match: Match, mail: Mail) -> EmailMessage:
        """The mail; Message-ID and Date come from the match, so the same match gives the same bytes."""
        message = EmailMessage(policy=SMTP)
        message["From"] = self.sender
        message["To"] = ", ".join(mail.to)
        if mail.cc:
            message["Cc"] = ", ".join(mail.cc)
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(parse_time(match.record.created_at))
        message["Message-ID"] = f"<{match.tool_call_id}@my-llm>"
        message["X-My-LLM-Record"] = f"{match.record.namespace}/{match.record.session_id}/{match.record.id}"
        message.set_content(mail.body + "\n")
        return message


def _smtp_from(table: TriggerTable) -> SmtpServer | None:
    url = table.text("smtp", None)
    starttls, username = table.flag("starttls", False), table.text("username", None)
    password, timeout_s = table.secret("password_env"), table.number("timeout_s", 10.0, low=0.5, high=120.0)
    if url is None:
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname or port == -1 or parts.username:
        advice = "write smtp://host:port or smtps://host:port (credentials go in username and password_env)"
        raise table.error(advice, "smtp")
    tls = parts.scheme == "smtps"
    return SmtpServer(parts.hostname, port or (465 if tls else 25), tls, starttls, username, password, timeout_s)


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as error:
        raise TriggerError(f"could not write {path}: {error.strerror or error}") from None
