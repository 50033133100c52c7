import json
from datetime import datetime, timezone

import pytest
from langchain_core.messages import AIMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage

from my_llm import InvalidNamespaceError, Record, TimedChatMessage
from my_llm.history import role_of, to_message, to_timed_message
from my_llm.record import format_time, parse_time


def test_a_new_record_has_the_schema_2_fields_in_order():
    moment = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=timezone.utc)
    record = Record.new("debugger", "s1", "human", "héllo", created_at=moment, metadata={"k": 1})
    data = json.loads(record.to_json())
    assert list(data) == [
        "schema",
        "id",
        "namespace",
        "session_id",
        "role",
        "content",
        "created_at",
        "source",
        "model",
        "usage",
        "metadata",
        "message",
    ]
    assert data["schema"] == 2 and data["message"] is None and len(data["id"]) == 32 and int(data["id"], 16) >= 0
    assert data["created_at"] == "2026-11-21T10:00:00.123456Z"
    assert data["content"] == "héllo" and "héllo" in record.to_json()  # not \\u-escaped
    assert data["source"] == "live" and data["model"] is None and data["usage"] is None


def test_schema_1_lines_are_still_read():
    line = (
        '{"schema":1,"id":"a1","namespace":"ns","session_id":"s","role":"ai","content":"hi",'
        '"created_at":"2026-11-21T10:00:00.000000Z","source":"live","model":null,"usage":null,"metadata":{}}'
    )
    record = Record.from_json(line)
    assert record.schema == 1 and record.message is None and record.content == "hi"
    message = to_message(record)
    assert type(message) is AIMessage and message.content == "hi" and message.id == "a1"


def test_records_round_trip_through_json():
    record = Record.new(
        "ns",
        "s",
        "ai",
        "x",
        model="openai:gpt-4o-mini",
        usage={"input_tokens": 3, "output_tokens": 4, "cost_usd": None},
    )
    assert Record.from_json(record.to_json()) == record
    assert Record.from_json(record.to_json().encode()) == record


def test_two_records_never_share_an_id():
    assert len({Record.new("ns", "s", "human", "x").id for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"schema": 1, "id": "x"}', "missing the field"),
        ('{"schema": 3, "id": "x"}', "newer"),
        ("[1, 2]", "JSON object"),
        ('{"schema": 1, "id": "x", "names', "Unterminated"),
    ],
)
def test_bad_lines_raise_value_error(line, says):
    with pytest.raises(ValueError, match=says):
        Record.from_json(line)


def test_new_records_validate_their_namespace_and_role():
    with pytest.raises(InvalidNamespaceError):
        Record.new("../x", "s", "human", "x")
    with pytest.raises(ValueError, match="role"):
        Record.new("ns", "s", "robot", "x")


@pytest.mark.parametrize(
    ("role", "kind"),
    [
        ("human", HumanMessage),
        ("ai", AIMessage),
        ("system", SystemMessage),
        ("tool", ToolMessage),
        ("summary", SystemMessage),
    ],
)
def test_records_become_typed_langchain_messages(role, kind):
    record = Record.new("ns", "s", role, "text")
    message = to_message(record)
    assert type(message) is kind and message.content == "text" and message.id == record.id


@pytest.mark.parametrize(
    ("message", "role"),
    [
        (HumanMessage("x"), "human"),
        (AIMessage("x"), "ai"),
        (SystemMessage("x"), "system"),
        (ToolMessage("x", tool_call_id="t"), "tool"),
        (ChatMessage(content="x", role="user"), "human"),
        (ChatMessage(content="x", role="assistant"), "ai"),
    ],
)
def test_langchain_messages_map_to_record_roles(message, role):
    assert role_of(message) == role


def test_an_unknown_chat_role_is_refused():
    with pytest.raises(ValueError, match="wizard"):
        role_of(ChatMessage(content="x", role="wizard"))


def test_timed_message_keeps_the_record_time_and_metadata():
    record = Record.new("ns", "s", "ai", "x", metadata={"a": 1})
    timed = to_timed_message(record)
    assert isinstance(timed, TimedChatMessage)
    assert timed.role == "ai" and timed.metadata == {"a": 1}
    assert format_time(timed.timestamp) == record.created_at


def test_times_parse_with_z_or_offset_and_naive_is_utc():
    assert parse_time("2026-01-01T00:00:00Z") == parse_time("2026-01-01T01:00:00+01:00")
    assert format_time(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000000Z"
