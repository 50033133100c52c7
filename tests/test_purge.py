"""Purging sessions from a namespace's log (my_llm.log.purge_sessions), on real files: what goes, what stays
byte for byte, a writer in another process appending meanwhile, the outbox cursor, and delivery afterwards
(the real Pub/Sub emulator)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from my_llm import Record, Settings
from my_llm.log import LOG_NAME, LogIndex, MessageStore, Outbox, purge_sessions, read_records, replay_namespace
from tests.pubsub_helpers import ensure_topic, pull_all, subscribe

NS = "team"
TOMBSTONE = {"event": "delete_conversation"}


def _records(session: str, count: int, text: str = "turn") -> list[Record]:
    return [Record.new(NS, session, "human" if i % 2 == 0 else "ai", f"{text} {session} {i}") for i in range(count)]


def _tombstone(session: str) -> Record:
    return Record.new(NS, session, "system", "", metadata={**TOMBSTONE, "conversation": session})


def _lines(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _write(settings: Settings, records: list[Record]) -> MessageStore:
    store = MessageStore(settings.message_history, NS)
    store.append(records)
    return store


def test_a_purged_session_is_gone_and_every_other_byte_stays(settings):
    keep, gone = _records("keep", 4, "naïve ✓"), _records("gone", 3)
    tombstone = _tombstone("gone")
    store = _write(settings, [keep[0], gone[0], keep[1], gone[1], gone[2], keep[2], tombstone, keep[3]])
    with open(store.path, "ab") as handle:
        handle.write(b'not json at all\n{"torn')  # an unreadable line and a torn tail stay as they are
    before = _lines(store.path)

    planned = purge_sessions(settings, NS, ["gone", "unknown"], dry_run=True)
    assert store.path.read_bytes() == b"".join(before)  # a dry run changes nothing
    report = purge_sessions(settings, NS, ["gone", "unknown"])

    gone_ids = {r.id for r in gone}
    expected = [line for line in before if not any(i.encode() in line for i in gone_ids)]
    assert _lines(store.path) == expected  # the rest byte-identical, in order, torn tail included
    assert (report.records, report.sessions, report.files) == (3, ["gone"], [LOG_NAME])
    assert report.bytes == sum(len(line) for line in before) - sum(len(line) for line in expected)
    assert (planned.records, planned.bytes, planned.dry_run) == (3, report.bytes, True)
    survivors = list(read_records(store.path))
    assert [r.id for r in survivors] == [keep[0].id, keep[1].id, keep[2].id, tombstone.id, keep[3].id]
    assert not list(store.folder.glob("*.purge"))
    assert purge_sessions(settings, NS, ["gone"]).records == 0  # nothing left: nothing rewritten


def test_archives_are_purged_too_and_the_index_follows(settings):
    store = _write(settings, [*_records("old", 2), *_records("other", 2)])
    store.archive()
    store.append([*_records("old", 2, "again"), _tombstone("old")])
    index = LogIndex(store)
    assert index.counts() == {"live": 3, "archived": 4, "total": 7}

    report = purge_sessions(settings, NS, ["old"])

    assert report.records == 4 and len(report.files) == 2 and report.files[1] == LOG_NAME
    assert [r.session_id for r in store.read_all()] == ["other", "other", "old"]
    assert index.counts() == {"live": 1, "archived": 2, "total": 3}  # an open index sees the new files
    assert [e.id for e in index.entries_between(1)] == [r.id for r in store.read_all()]
    index.close()


_WRITER = """
import sys
from my_llm import Record
from my_llm.log import MessageStore
store = MessageStore(sys.argv[1], "team")
print("started", flush=True)
for i in range(int(sys.argv[2])):
    store.append([Record.new("team", "writer", "human", f"w{i}")])
"""


def test_a_writer_in_another_process_loses_nothing(settings):
    store = _write(settings, [r for i in range(1000) for r in (*_records(f"s{i}", 1), *_records("gone", 1))])
    writes = 5000
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(settings.message_history), str(writes)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "started"
    reports = []
    while writer.poll() is None:  # purge again and again while the writer appends
        reports.append(purge_sessions(settings, NS, ["gone"]))
        store.append(_records("gone", 1))
    assert writer.wait(timeout=120) == 0
    print(f"{len(reports)} purges during {writes} appends")
    assert reports[0].records == 1000 and len(reports) >= 3

    records = list(store.read())
    assert [r.content for r in records if r.session_id == "writer"] == [f"w{i}" for i in range(writes)]
    assert sum(1 for r in records if r.session_id.startswith("s")) == 1000
    assert b"\n\n" not in store.path.read_bytes() and store.path.read_bytes().endswith(b"\n")


def test_the_outbox_keeps_what_is_pending_and_drops_what_is_purged(settings):
    acked_early, gone_acked = _records("early", 4), _records("gone", 2)
    gone_pending, pending_mid = _records("gone", 2, "late"), _records("mid", 3)
    acked_run, pending_end = _records("run", 2), [_tombstone("gone"), *_records("end", 2)]
    store = _write(settings, [*acked_early, *gone_acked, *gone_pending, *pending_mid, *acked_run, *pending_end])
    outbox = Outbox(LogIndex(store))
    outbox.mark_acked([r.id for r in [*acked_early, *gone_acked, *acked_run]])
    outbox.write_acks()
    outbox.compact()  # cursor: last_id = gone_acked[-1] (purged), one run above it (acked_run)
    late_ack = pending_mid[1]
    outbox.mark_acked([late_ack.id])  # in the journal, not yet folded: must survive the purge too
    outbox.close()

    report = purge_sessions(settings, NS, ["gone"])

    assert report.records == 4
    outbox = Outbox(LogIndex(store))
    expected = [pending_mid[0], pending_mid[2], *pending_end]
    assert [r.id for r in outbox.pending()] == [r.id for r in expected]
    assert outbox.pending_count() == len(expected)
    outbox.close()


@pytest.mark.emulator
def test_delivery_after_a_purge_sends_what_was_pending_and_nothing_purged(emulator_env, monkeypatch):
    from my_llm import ChatHistory

    topic = ensure_topic(emulator_env, f"my-llm-{NS}")
    subscriber, subscription = subscribe(emulator_env, topic, "purge-check")
    live = ChatHistory(NS, "delivered", settings=Settings.from_env())
    live.add_records(_records("delivered", 2) + _records("gone", 2))
    assert live.flush(timeout=30) == 0
    live.close()
    assert len(pull_all(subscriber, subscription, expected=4)) == 4

    monkeypatch.setenv("MY_LLM_PUBLISH", "off")  # an outage: these stay pending
    offline = ChatHistory(NS, "x", settings=Settings.from_env())
    pending, tombstone = _records("kept", 2), _tombstone("gone")
    offline.add_records([*_records("gone", 2, "unsent"), pending[0], tombstone, pending[1]])
    offline.close()

    assert purge_sessions(Settings.from_env(), NS, ["gone"]).records == 4
    monkeypatch.delenv("MY_LLM_PUBLISH")
    report = replay_namespace(NS, Settings.from_env(), timeout=60)

    assert report.candidates == 3 and report.failed == 0
    pulled = pull_all(subscriber, subscription, expected=3, timeout_s=20)
    assert set(pulled) == {pending[0].id, tombstone.id, pending[1].id}
    time.sleep(0.5)
    assert not pull_all(subscriber, subscription, expected=1, timeout_s=2)  # nothing purged was sent
