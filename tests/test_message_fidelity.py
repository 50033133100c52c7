"""Nothing of a message is lost: written by one process, read back by another (and through the real Pub/Sub
emulator), every field of every kind of LangChain message comes back as it went in (record schema 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage, messages_from_dict

from my_llm import ChatHistory, Record, Settings, to_message
from my_llm.testing import ensure_topic, pull_all, subscribe

ROOT = Path(__file__).resolve().parent.parent

# Reads the history of a session in a fresh interpreter and prints its messages as LangChain dicts.
READ_BACK = """
import json, sys
from langchain_core.messages import messages_to_dict
from my_llm import ChatHistory
history = ChatHistory(sys.argv[1], session_id=sys.argv[2])
print(json.dumps(messages_to_dict(history.messages)))
"""

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
ids = st.one_of(st.none(), st.text(alphabet="abcdef0123456789-", min_size=1, max_size=24))
names = st.one_of(st.none(), st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**9), 10**9), text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), inner, max_size=3)
    ),
    max_leaves=6,
)
kwargs_dicts = st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), json_values, max_size=3)
image_block = st.builds(
    lambda url: {"type": "image_url", "image_url": {"url": url}},
    st.sampled_from(["https://example.com/cat.png", "data:image/png;base64,iVBORw0KGgo="]),
)
content = st.one_of(
    text,
    st.lists(st.one_of(st.builds(lambda t: {"type": "text", "text": t}, text), image_block), min_size=1, max_size=3),
)
tool_calls = st.lists(
    st.builds(
        lambda name, args, call_id: {"name": name, "args": args, "id": call_id, "type": "tool_call"},
        st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True),
        st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), st.integers(-100, 100), max_size=3),
        st.text(alphabet="abcdef0123456789_", min_size=1, max_size=16),
    ),
    max_size=2,
)
usage = st.one_of(
    st.none(),
    st.builds(
        lambda i, o: {"input_tokens": i, "output_tokens": o, "total_tokens": i + o},
        st.integers(0, 10**6),
        st.integers(0, 10**6),
    ),
)


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(["system", "human", "ai", "tool"]))
    common = {"id": draw(ids), "name": draw(names), "additional_kwargs": draw(kwargs_dicts)}
    if kind == "system":
        return SystemMessage(content=draw(text), **common)
    if kind == "human":
        return HumanMessage(content=draw(content), **common)
    if kind == "tool":
        return ToolMessage(
            content=draw(text), tool_call_id=draw(st.text(alphabet="abc123", min_size=1, max_size=8)),
            artifact=draw(st.one_of(st.none(), json_values)), status=draw(st.sampled_from(["success", "error"])),
            **common,
        )  # fmt: skip
    return AIMessage(
        content=draw(text),
        tool_calls=draw(tool_calls),
        usage_metadata=draw(usage),
        response_metadata=draw(st.one_of(st.just({}), st.just({"model_name": "gpt-4o-mini", "finish_reason": "stop"}))),
        **common,
    )


def read_in_a_new_process(namespace: str, session_id: str) -> list:
    done = subprocess.run(
        [sys.executable, "-c", READ_BACK, namespace, session_id],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return messages_from_dict(json.loads(done.stdout))


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conversation=st.lists(messages(), min_size=1, max_size=6))
def test_any_conversation_reads_back_field_for_field_in_a_new_process(conversation, isolated_env, tmp_path_factory):
    namespace = "fidelity"
    history = ChatHistory(namespace, session_id=tmp_path_factory.mktemp("s").name)
    history.add_messages(conversation)
    history.close()
    assert read_in_a_new_process(namespace, history.session_id) == conversation


def test_a_tool_calling_turn_keeps_its_calls_ids_and_usage(settings):
    call = {"name": "add", "args": {"a": 2, "b": 3}, "id": "call_1", "type": "tool_call"}
    turn = [
        HumanMessage("What is 2 + 3?", id="h1"),
        AIMessage(
            "", tool_calls=[call], id="a1", usage_metadata={"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}
        ),
        ToolMessage("5", tool_call_id="call_1", name="add", id="t1", artifact={"raw": 5}),
        AIMessage("2 + 3 = 5.", id="a2", response_metadata={"model_name": "gpt-4o-mini"}),
    ]
    history = ChatHistory("tools", settings=settings)
    history.add_messages(turn)
    back = ChatHistory("tools", session_id=history.session_id, settings=settings).messages
    assert back == turn
    assert back[1].tool_calls[0]["args"] == {"a": 2, "b": 3} and back[2].tool_call_id == "call_1"
    records = history.records()
    assert records[1].usage["input_tokens"] == 5 and records[1].content == ""  # flat fields for analytics
    assert len({r.id for r in records}) == 4 and "a1" not in {r.id for r in records}  # record ids are their own


def test_a_message_added_twice_is_two_records_and_both_come_back(settings):
    message = HumanMessage("again", id="same-id")
    history = ChatHistory("twice", settings=settings)
    history.add_messages([message, message])
    records = history.records()
    assert len(records) == 2 and records[0].id != records[1].id
    assert history.messages == [message, message]


@pytest.mark.emulator
def test_what_pubsub_delivers_parses_back_to_the_same_messages(emulator_env, settings):
    conversation = [
        SystemMessage("Be brief.", id="s1"),
        HumanMessage(
            content=[
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
            ]
        ),
        AIMessage("", tool_calls=[{"name": "look", "args": {"q": "x"}, "id": "c9", "type": "tool_call"}], name="bot"),
        ToolMessage("a cat", tool_call_id="c9", name="look"),
        AIMessage("A cat.", usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}),
    ]
    topic_path = ensure_topic(emulator_env, "my-llm-fidelity-pubsub")
    subscriber, subscription = subscribe(emulator_env, topic_path, "fidelity-sub")
    history = ChatHistory("fidelity-pubsub", settings=Settings.from_env())
    history.add_messages(conversation)
    assert history.flush(timeout=60) == 0
    pulled = pull_all(subscriber, subscription, expected=len(conversation))
    history.close()
    in_log_order = [record.id for record in history.records()]
    assert set(pulled) == set(in_log_order)
    assert [to_message(Record.from_json(pulled[record_id].data)) for record_id in in_log_order] == conversation
