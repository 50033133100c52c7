"""Bounded parsing of ChatGPT exports (issue 13): nesting depth and the bytes of one conversation are capped.

Before, ``ijson.items`` kept a prefix string per nesting level, so a 120 KB file of nested brackets needed
more than 8 GB and ended in a raw traceback. The memory tests run the import in a child process under an
address-space limit (``RLIMIT_AS``, 1 GB), so a regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import ijson
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from my_llm import PubSubChatMessageHistory
from my_llm.importers.chatgpt import ExportError, bounded, import_chatgpt_export, iter_conversations
from my_llm.importers.chatgpt.files import ExportFile, read_conversations
from tests.test_chatgpt import SAMPLE, chat, write_export

ROOT = Path(__file__).resolve().parents[1]
NESTED = b"[" * 60_000 + b"]" * 60_000  # 120 KB: 60,000 levels
DEEP = "nests arrays and objects more than 256 levels deep"
WHAT_TO_DO = "this one is not: remove it and run the import again (what is already imported is skipped)"
ADDRESS_SPACE = 1_000_000_000  # the child's RLIMIT_AS: the interpreter with my_llm imported takes about 200 MB

_CHILD = """
import json, resource, sys, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from my_llm import PubSubChatMessageHistory, Settings
from my_llm.importers.chatgpt import ExportError, import_chatgpt_export
history = PubSubChatMessageHistory("chatgpt", settings=Settings.from_env())
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
try:
    import_chatgpt_export(history, sys.argv[1])
    error = None
except ExportError as refused:
    error = refused
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
print(json.dumps({{
    "message": str(error) if error else None,
    "index": error and error.index, "conversation_id": error and error.conversation_id,
    "conversations": error and error.report.conversations, "peak": peak, "rss_growth": rss_growth,
}}))
"""


@pytest.fixture
def history(settings):
    return PubSubChatMessageHistory("chatgpt", settings=settings)


def import_in_child(export: Path) -> dict:
    """Import ``export`` in a child process limited to 1 GB of address space; what it reports as a dict.

    ``peak``: Python allocations during the import (tracemalloc); ``rss_growth``: how much the import
    raised the child's peak resident set, in bytes.
    """
    code = _CHILD.format(limit=ADDRESS_SPACE)
    done = subprocess.run(
        [sys.executable, "-c", code, str(export)], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]  # a MemoryError or any traceback fails here
    return json.loads(done.stdout.strip().splitlines()[-1])


def sessions(history) -> list[str]:
    return [record.session_id for record in history.records()]


def deep_conversation() -> bytes:
    """A conversation, id first, with the 120 KB of nested brackets as the parts of a message deep inside."""
    head = json.dumps({"id": "deep", "title": "deep"})[:-1]
    node = '{"id": "n1", "parent": null, "children": [], "message": {"content": {"content_type": "text", "parts": '
    return f'{head}, "mapping": {{"n1": {node}'.encode() + NESTED + b"}}}}"


# --- nested brackets ------------------------------------------------------------------------------------


def test_a_file_of_nested_brackets_is_refused_naming_it_in_bounded_memory(tmp_path, history):
    export = tmp_path / "conversations.json"
    export.write_bytes(NESTED)
    seen = import_in_child(export)
    expected = f"{export}, conversation #1 of the file (counting from 1), which has no id: {DEEP}"
    assert seen["message"].startswith(expected) and WHAT_TO_DO in seen["message"]
    assert (seen["index"], seen["conversation_id"], seen["conversations"]) == (1, None, 0)
    assert seen["peak"] < 20_000_000 and seen["rss_growth"] < 50_000_000  # was more than 8 GB
    assert history.records() == []


def test_nested_brackets_inside_a_conversation_after_a_good_one_refuse_only_that_one(tmp_path, history):
    export = tmp_path / "conversations.json"
    good, after = (json.dumps(chat(name, "q", "a")).encode() for name in ("good", "after"))
    export.write_bytes(b"[" + good + b", " + deep_conversation() + b", " + after + b"]")
    assert export.stat().st_size > 120_000
    seen = import_in_child(export)
    expected = f"{export}, conversation #2 of the file (counting from 1), id 'deep': {DEEP}"
    assert seen["message"].startswith(expected) and WHAT_TO_DO in seen["message"]
    assert (seen["index"], seen["conversation_id"], seen["conversations"]) == (2, "deep", 1)
    assert seen["peak"] < 20_000_000 and seen["rss_growth"] < 50_000_000
    assert sessions(history) == ["good", "good"]  # the one before is imported, nothing of 'deep' or after


def test_nested_brackets_in_the_zip_as_downloaded_are_refused_the_same_way(tmp_path, history):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("conversations.json", b"[" + json.dumps(chat("good", "q")).encode() + b"," + NESTED[1:])
    seen = import_in_child(archive)  # in the child: a regression must not take the test run's memory
    assert seen["message"].startswith(f"{archive}:conversations.json, conversation #2 of the file")
    assert DEEP in seen["message"] and seen["peak"] < 20_000_000
    assert sessions(history) == ["good"] and seen["conversations"] == 1


@pytest.mark.parametrize(("depth", "refused"), [(5, False), (6, True)])
def test_the_depth_limit_counts_the_conversation_as_level_one(tmp_path, depth, refused):
    nested = "[" * (depth - 1) + "]" * (depth - 1)  # inside the conversation object: depth levels in all
    export = tmp_path / "conversations.json"
    export.write_text(f'[{{"id": "first"}}, {{"id": "c", "x": {nested}}}]', encoding="utf-8")
    limits = bounded.Limits(depth=5)
    if not refused:
        assert [index for index, _, _ in read_conversations(ExportFile(export), limits)] == [1, 2]
        return
    with pytest.raises(ExportError) as raised:
        list(read_conversations(ExportFile(export), limits))
    message_text = str(raised.value)
    assert message_text.startswith(f"{export}, conversation #2 of the file (counting from 1), id 'c': ")
    assert "more than 5 levels deep" in message_text


# --- the bytes of one conversation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("big", "named"),
    [
        (chat("big", *(["x" * 10_000] * 100)), ", id 'big'"),  # the id comes first: it is known
        ({"title": "t", "mapping": {"n": ["y" * 1000] * 1000}, "id": "late"}, ", which has no id"),  # not yet read
        ("z" * 1_000_000, ", which has no id"),  # one string, no events until it ends
    ],
    ids=["id-first", "id-last", "string"],
)
def test_a_conversation_over_the_size_limit_is_refused_and_the_one_before_kept(
    tmp_path, history, monkeypatch, big, named
):
    monkeypatch.setattr(bounded, "LIMITS", bounded.Limits(item_bytes=256 * 1024))
    export = write_export(tmp_path / "conversations.json", [chat("good", "q", "a"), big, chat("after", "q")])
    assert export.stat().st_size > 900_000
    with pytest.raises(ExportError) as raised:
        import_chatgpt_export(history, export)
    message_text = str(raised.value)
    expected = f"{export}, conversation #2 of the file (counting from 1){named}: is larger than 0.25 MiB"
    assert message_text.startswith(expected) and WHAT_TO_DO in message_text
    assert sessions(history) == ["good", "good"] and raised.value.report.conversations == 1


def test_conversations_up_to_the_size_limit_are_read(tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "LIMITS", bounded.Limits(item_bytes=256 * 1024))
    many = [chat(f"c{i}", "q" * 250_000) for i in range(6)]  # each just under 256 KiB, several chunks apart
    export = write_export(tmp_path / "conversations.json", many)
    assert 250_000 < len(json.dumps(many[0])) < 256 * 1024
    assert [conversation["id"] for conversation in iter_conversations(export)] == [f"c{i}" for i in range(6)]


# --- the same items as before ---------------------------------------------------------------------------


def outcome(read, data: bytes) -> tuple[str, str | None]:
    """What ``read`` makes of ``data``: (repr of the items yielded, the error's type and text or None)."""
    items = []
    try:
        for item in read(io.BytesIO(data)):
            items.append(item)
    except ijson.JSONError as error:
        return repr(items), f"{type(error).__name__}: {error}"
    return repr(items), None


def before(handle):
    """What the importer read before: ``ijson.items`` (unbounded)."""
    return ijson.items(handle, "item", use_float=True)


def test_the_sample_and_a_multi_chunk_export_are_read_exactly_as_before():
    many = json.dumps([chat(f"c{i}", "q" * 900, "a" * 900, title=None) for i in range(300)]).encode()
    for data in (SAMPLE.read_bytes(), many):
        assert outcome(bounded.array_items, data) == outcome(before, data)
        assert len(list(bounded.array_items(io.BytesIO(data)))) > 1


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(JSON_VALUES, max_size=6), st.sampled_from(["", " trailing", "]", ",", "[1"]))
def test_any_json_array_or_broken_one_is_read_exactly_as_before(array, tail):
    """Items, numbers (floats, and big integers ijson refuses), duplicate keys, bad tails: the same outcome."""
    data = json.dumps(array).encode() + tail.encode()
    assert outcome(bounded.array_items, data) == outcome(before, data)


def test_duplicate_keys_keep_the_last_value_as_before():
    data = b'[{"a": 1, "a": {"b": [2]}, "c": [], "c": {"d": null}}]'
    assert outcome(bounded.array_items, data) == outcome(before, data)
    assert list(bounded.array_items(io.BytesIO(data))) == [{"a": {"b": [2.0]}, "c": {"d": None}}]
