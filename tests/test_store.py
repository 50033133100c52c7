import json
import logging
import multiprocessing
import os
import time

import pytest

from my_llm import InvalidNamespaceError, MessageStore, Record, StoreError, list_namespaces


def _records(n, namespace="ns", session="s"):
    return [Record.new(namespace, session, "human", f"message {i}") for i in range(n)]


def test_append_then_read_gives_the_same_records_in_order(tmp_path):
    store = MessageStore(tmp_path, "ns")
    first, second = _records(3), _records(2)
    assert store.append(first) == 3
    assert store.append(second) == 2
    assert list(store.read()) == first + second
    assert store.path == tmp_path / "ns" / "messages.jsonl"
    assert len(store.path.read_text().splitlines()) == 5


def test_append_only_adds_bytes_it_never_rewrites(tmp_path):
    store = MessageStore(tmp_path, "ns", fsync="always")
    store.append(_records(1))
    before = store.path.read_bytes()
    store.append(_records(1))
    assert store.path.read_bytes().startswith(before)


def test_a_missing_log_reads_as_empty_and_appending_nothing_writes_nothing(tmp_path):
    store = MessageStore(tmp_path, "ns")
    assert list(store.read()) == []
    assert store.append([]) == 0
    assert not store.path.exists()


def test_a_torn_last_line_is_skipped_with_a_warning_and_left_in_place(tmp_path, caplog):
    store = MessageStore(tmp_path, "ns")
    good = _records(2)
    store.append(good)
    torn = b'{"schema":1,"id":"abc","namesp'
    with open(store.path, "ab") as handle:
        handle.write(torn)
    with caplog.at_level(logging.WARNING):
        assert list(store.read()) == good
    assert "torn last line 3" in caplog.text
    assert store.path.read_bytes().endswith(torn)  # the reader never rewrites


def test_an_append_after_a_torn_tail_starts_on_a_fresh_line(tmp_path, caplog):
    store = MessageStore(tmp_path, "ns")
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b'{"schema":1,"id":"abc"')
    later = _records(2)
    store.append(later)
    with caplog.at_level(logging.WARNING):
        assert list(store.read()) == later
    assert "unreadable line 1" in caplog.text


def test_archive_moves_the_log_away_and_keeps_every_byte(tmp_path):
    store = MessageStore(tmp_path, "ns")
    store.append(_records(3))
    content = store.path.read_bytes()
    moved = store.archive()
    assert moved.parent == tmp_path / "ns" / "archive" and moved.read_bytes() == content
    assert list(store.read()) == []
    assert store.archive() is None


def test_a_bad_namespace_is_refused_before_any_path_exists(tmp_path):
    with pytest.raises(InvalidNamespaceError):
        MessageStore(tmp_path, "../escape")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_raises_store_error_naming_the_path(tmp_path):
    (tmp_path / "ns").write_text("a file where the folder should be")
    with pytest.raises(StoreError, match="messages.jsonl"):
        MessageStore(tmp_path, "ns").append(_records(1))


def test_namespaces_are_listed_from_their_logs(tmp_path):
    MessageStore(tmp_path, "b").append(_records(1, "b"))
    MessageStore(tmp_path, "a").append(_records(1, "a"))
    (tmp_path / "not-a-log").mkdir()
    assert list_namespaces(tmp_path) == ["a", "b"]
    assert list_namespaces(tmp_path / "missing") == []


def _writer(root, worker, count):
    store = MessageStore(root, "shared", fsync="never")
    for i in range(count):
        store.append([Record.new("shared", f"w{worker}", "human", f"{worker}-{i} " + "x" * 300)])


def test_concurrent_processes_never_interleave_lines(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(tmp_path, w, 500)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    lines = (tmp_path / "shared" / "messages.jsonl").read_text().splitlines()
    assert len(lines) == 2000
    records = [Record.from_dict(json.loads(line)) for line in lines]  # every line parses whole
    assert len({record.id for record in records}) == 2000
    for worker in range(4):  # each writer's own order is kept
        mine = [r.content.split()[0] for r in records if r.session_id == f"w{worker}"]
        assert mine == [f"{worker}-{i}" for i in range(500)]


def _write_forever(root):
    store = MessageStore(root, "killed", fsync="never")
    i = 0
    while True:
        store.append([Record.new("killed", "s", "human", f"{i} " + "y" * 5000)])
        i += 1


def test_a_writer_killed_mid_loop_leaves_every_complete_line_readable(tmp_path):
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_write_forever, args=(tmp_path,))
    process.start()
    path = tmp_path / "killed" / "messages.jsonl"
    while not path.exists() or path.stat().st_size < 500_000:
        assert process.is_alive()
        time.sleep(0.01)
    os.kill(process.pid, 9)
    process.join(10)
    complete = path.read_bytes().count(b"\n")
    records = list(MessageStore(tmp_path, "killed").read())
    assert len(records) == complete > 0
    assert [r.content.split()[0] for r in records] == [str(i) for i in range(complete)]


def test_encode_gives_the_bytes_of_to_json(tmp_path):
    from dataclasses import dataclass

    from my_llm.log import encode

    @dataclass
    class Point:
        x: int

    odd = Record.new(
        "ns",
        "s",
        "ai",
        'héllo \u2603 "quoted"\nline',
        usage={"input_tokens": 1, "output_tokens": 2, "cost_usd": None},
        metadata={"bytes": b"\x00\x01", "point": Point(3), "nested": [{"a": (1, 2)}]},
        message={"type": "ai", "data": {"content": [{"type": "text", "text": "x"}], "tool_calls": []}},
    )
    assert encode(odd) == odd.to_json().encode("utf-8")
    store = MessageStore(tmp_path, "ns")
    store.append([odd])
    assert store.path.read_bytes() == odd.to_json().encode("utf-8") + b"\n"


def test_the_append_lock_excludes_a_filelock_holder(tmp_path):
    import threading

    from filelock import FileLock

    store = MessageStore(tmp_path, "ns")
    store.append(_records(1))
    appended = threading.Event()
    with FileLock(str(store.folder / "messages.jsonl.lock")):  # what older processes take
        writer = threading.Thread(target=lambda: (store.append(_records(1)), appended.set()))
        writer.start()
        assert not appended.wait(0.3)
    assert appended.wait(10)
    writer.join()
    assert len(list(store.read())) == 2
