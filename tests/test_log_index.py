"""The log index (SQLite sidecar) and the compacted outbox, on real files: no Pub/Sub here."""

import json
import sqlite3

import pytest

from my_llm import ChatHistory, MessageStore, Record
from my_llm.history.chat_history import is_turn_of
from my_llm.log import Delivery, LogIndex, Outbox
from my_llm.log import outbox as outbox_module

SESSIONS = ("s0", "s1", "s2")


def _mixed(n: int) -> list[Record]:
    """n records over three sessions: turns, memory tasks, a summary, events."""
    records = []
    for i in range(n):
        session = SESSIONS[i % 3]
        if i % 17 == 0:
            records.append(Record.new("ns", session, "summary", f"summary {i}"))
        elif i % 13 == 0:
            records.append(Record.new("ns", session, "ai", f"task {i}", metadata={"task": "question_memory"}))
        elif i % 11 == 0:
            records.append(Record.new("ns", session, "system", "", metadata={"event": "clear"}))
        else:
            records.append(Record.new("ns", session, ("human", "ai")[i % 2], f"turn {i}"))
    return records


@pytest.fixture
def history(settings):
    store = MessageStore(settings.message_history, "ns")
    for start in range(0, 3000, 500):
        store.append(_mixed(3000)[start : start + 500])
    return ChatHistory("ns", session_id="s1", settings=settings)


def _scan(history: ChatHistory) -> list[Record]:
    return [record for record in history.store.read() if is_turn_of(record, history.session_id)]


def test_session_records_match_a_full_scan_and_limit_takes_the_last(history):
    expected = _scan(history)
    assert len(expected) > 500
    assert history.session_records() == expected
    assert history.session_records(limit=5) == expected[-5:]
    assert history.session_records(limit=0) == []
    assert list(history.recent_records())[:40] == expected[::-1][:40]
    assert [m.content for m in history.messages] == [r.content for r in expected]


def test_the_index_catches_up_with_appends_made_elsewhere(history):
    assert len(history.session_records()) == len(_scan(history))
    other = MessageStore(history.store.folder.parent, "ns")  # another writer, as another process would be
    other.append([Record.new("ns", "s1", "human", "later")])
    assert history.session_records(limit=1)[0].content == "later"
    history.add_ai_message("and an answer")
    assert [r.content for r in history.session_records(limit=2)] == ["later", "and an answer"]


def test_reading_the_last_turns_parses_only_what_it_returns(history, monkeypatch):
    history.session_records(limit=1)  # the index is built once
    parsed = []
    original = Record.from_json

    def counting(line):
        parsed.append(line)
        return original(line)

    monkeypatch.setattr(Record, "from_json", staticmethod(counting))
    assert len(history.session_records(limit=10)) == 10
    assert len(parsed) == 10


def test_a_deleted_index_is_rebuilt_the_same(history):
    before = [(e.seq, e.id, e.offset, e.length) for e in LogIndex(history.store).entries_between(1)]
    history.delivery.index.close()
    for suffix in ("", "-wal", "-shm"):
        history.store.folder.joinpath("index.sqlite" + suffix).unlink(missing_ok=True)
    index = LogIndex(history.store)
    assert [(e.seq, e.id, e.offset, e.length) for e in index.entries_between(1)] == before
    assert history.session_records() == _scan(history)


def test_a_torn_last_line_is_skipped_and_the_next_append_indexed(history):
    count = LogIndex(history.store).counts()["live"]
    with open(history.store.path, "ab") as handle:
        handle.write(b'{"schema":2,"id":"torn","namesp')
    index = LogIndex(history.store)
    assert index.counts()["live"] == count
    history.add_user_message("after the tear")
    assert index.counts()["live"] == count + 1
    assert history.session_records(limit=1)[0].content == "after the tear"
    assert index.seqs_of(["torn"]) == {}


def test_clear_archives_and_the_index_follows_the_moved_log(history):
    index = LogIndex(history.store)
    live = index.counts()["live"]
    history.clear()
    assert history.session_records() == [] and history.messages == []
    assert index.counts() == {"live": 0, "archived": live + 1, "total": live + 1}
    history.add_user_message("a new start")
    assert [r.content for r in history.session_records()] == ["a new start"]
    newest = index.entries_between(index.last_seq())[0]
    assert newest.name == "messages.jsonl" and index.counts()["live"] == 1
    fresh = LogIndex(history.store)  # a rebuild agrees with the caught-up index
    fresh.rebuild()
    assert [(e.seq, e.id, e.name) for e in fresh.entries_between(1)] == [
        (e.seq, e.id, e.name) for e in index.entries_between(1)
    ]


def test_a_log_replaced_by_a_shorter_one_is_reindexed(history):
    index = LogIndex(history.store)
    assert index.counts()["live"] == 3000
    replacement = [Record.new("ns", "s1", "human", f"replaced {i}") for i in range(3)]
    history.store.path.write_bytes(b"".join(r.to_json().encode() + b"\n" for r in replacement))
    assert index.counts()["live"] == 3
    assert [r.content for r in history.session_records()] == ["replaced 0", "replaced 1", "replaced 2"]


def test_migrations_are_named_ordered_and_applied_once(history):
    index = LogIndex(history.store)
    index.refresh()
    index.close()
    index.refresh()
    with sqlite3.connect(index.path) as db:
        assert db.execute("SELECT name FROM _migrations").fetchall() == [("m001_initial",)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_acknowledgements_fold_into_a_cursor_and_the_journal_empties(history):
    outbox = history.outbox
    ids = [record.id for record in history.store.read()]
    outbox.mark_acked(ids[:100] + ids[150:200] + ids[300:301])
    outbox.write_acks()
    assert {r.id for r in outbox.pending()} == set(ids) - set(ids[:100] + ids[150:200] + ids[300:301])
    assert outbox.path.read_bytes() == b""
    state = json.loads(outbox.cursor_path.read_text())
    assert state["position"] == 100 and state["last_id"] == ids[99]
    assert state["above"] == [[ids[150], ids[199]], [ids[300], ids[300]]]
    assert outbox.pending_count() == len(ids) - 151

    outbox.mark_acked(ids)
    outbox.write_acks()
    assert outbox.pending() == [] and outbox.pending_count() == 0
    assert json.loads(outbox.cursor_path.read_text()) == {"position": 3000, "last_id": ids[-1], "above": []}


def test_the_cursor_survives_a_rebuilt_index(history):
    ids = [record.id for record in history.store.read()]
    history.outbox.mark_acked(ids[:2000])
    history.outbox.write_acks()
    assert len(history.outbox.pending()) == 1000
    history.delivery.index.close()
    history.store.folder.joinpath("index.sqlite").unlink()
    assert [r.id for r in Outbox(LogIndex(history.store)).pending()] == ids[2000:]


def test_acknowledgements_are_written_in_batches(history, monkeypatch):
    monkeypatch.setattr(outbox_module, "ACK_INTERVAL_S", 3600.0)
    outbox = Outbox(LogIndex(history.store))
    ids = [record.id for record in history.store.read()]
    outbox.mark_acked(ids[:1])  # the first is written at once (nothing was written for an hour)
    outbox.mark_acked(ids[1:999])
    assert len(outbox.path.read_text().splitlines()) == 1
    outbox.mark_acked(ids[999:1001])  # 1,000 waiting: one write
    assert len(outbox.path.read_text().splitlines()) == 1001
    outbox.mark_acked(ids[1001:1010])
    outbox.close()  # and the rest on close
    assert len(outbox.path.read_text().splitlines()) == 1010


def test_archived_records_stay_pending_until_acknowledged(settings):
    history = ChatHistory("archived", settings=settings)
    history.add_user_message("before the clear")
    history.clear()
    history.add_user_message("after the clear")
    pending = Delivery(history.store).pending()
    assert [r.content for r in pending] == ["before the clear", "", "after the clear"]
    history.outbox.mark_acked([r.id for r in pending[:2]])
    history.outbox.write_acks()
    assert [r.content for r in history.outbox.pending()] == ["after the clear"]
    assert Delivery(history.store).counts() == {"live": 1, "archived": 2, "total": 3, "pending": 1}


def _write(root, session, count):
    store = MessageStore(root, "busy", fsync="never")
    for i in range(count):
        store.append([Record.new("busy", session, "human", f"{session} {i} " + "x" * 2000)])


def test_reading_while_other_processes_append_and_clear_stays_consistent(settings):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write, args=(settings.message_history, f"w{w}", 400)) for w in range(2)]
    for writer in writers:
        writer.start()
    history = ChatHistory("busy", session_id="w0", settings=settings)
    cleared = False
    while any(writer.is_alive() for writer in writers):
        turns = history.session_records(limit=20)
        numbers = [int(record.content.split()[1]) for record in turns]
        assert numbers == sorted(numbers)  # newest last, never a torn or misplaced line
        if not cleared and len(history.records()) > 200:
            history.clear()
            cleared = True
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    assert history.session_records() == _scan(history)
    fresh = LogIndex(history.store)
    fresh.rebuild()
    assert fresh.counts()["total"] == 801  # 800 records and the tombstone, archives included


def test_many_acknowledgements_fold_through_one_lookup(history, monkeypatch):
    from my_llm.log import index as index_module

    monkeypatch.setattr(index_module, "_LOOKUP_CHUNK", 10)  # 200+ ids: a temporary table, or one pass
    ids = [record.id for record in history.store.read()]
    positions = {record_id: seq for seq, record_id in enumerate(ids, 1)}
    index = history.delivery.index
    assert index.seqs_of(ids[::-1]) == positions  # a pass over the whole index
    assert index.seqs_of(ids[500:800] + ["unknown"]) == {i: positions[i] for i in ids[500:800]}  # a join
    history.outbox.mark_acked(ids[:2500] + ["not-in-the-log"])
    history.outbox.write_acks()
    assert [r.id for r in history.outbox.pending()] == ids[2500:]
