"""ChatGPT export import: the sample, every content type and flag, branches, bad input, inputs, re-import."""

from __future__ import annotations

import json
import os
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from my_llm import PubSubChatMessageHistory, Settings
from my_llm.importers.chatgpt import (
    ExportError,
    active_branch,
    branches,
    conversation_records,
    export_files,
    import_chatgpt_export,
    iter_conversations,
    message_to_text,
    record_id,
)
from tests.pubsub_helpers import ensure_topic, pull_all, subscribe

SAMPLE = Path(__file__).resolve().parents[1] / "chatgpt_export" / "sample_conversations.json"
T0 = 1_700_000_000.0


# --- building small exports -------------------------------------------------------------------------


def message(node_id, role="user", content="hello", *, create_time=T0, **metadata):
    """An export message; ``content`` is the text of a text message, or a content object."""
    if isinstance(content, str):
        content = {"content_type": "text", "parts": [content]}
    return {
        "id": node_id,
        "author": {"role": role, "name": None, "metadata": {}},
        "create_time": create_time,
        "content": content,
        "metadata": metadata,
        "recipient": "all",
    }


def conversation(conversation_id, nodes, current=None, *, title="A title", create_time=T0):
    """``nodes``: (node id, parent id, message or None), in mapping order; children come from the parents."""
    mapping = {
        node_id: {"id": node_id, "parent": parent, "children": [], "message": msg} for node_id, parent, msg in nodes
    }
    for node_id, parent, _ in nodes:
        if parent in mapping:
            mapping[parent]["children"].append(node_id)
    return {
        "id": conversation_id,
        "title": title,
        "create_time": create_time,
        "update_time": create_time + 100 if create_time else None,
        "mapping": mapping,
        "current_node": current or nodes[-1][0],
    }


def chat(conversation_id, *texts, **kwargs):
    """A linear conversation: a null root, then user/assistant turns with the given texts."""
    nodes = [("root", None, None)]
    for i, text in enumerate(texts):
        role = "user" if i % 2 == 0 else "assistant"
        nodes.append((f"{conversation_id}-m{i}", nodes[-1][0], message(f"{conversation_id}-m{i}", role, text)))
    return conversation(conversation_id, nodes, **kwargs)


def write_export(path: Path, conversations) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(conversations), encoding="utf-8")
    return path


@pytest.fixture
def history(settings):
    return PubSubChatMessageHistory("chatgpt", settings=settings)


def contents(history):
    return [(record.session_id, record.role, record.content) for record in history.records()]


# --- the sample ----------------------------------------------------------------------------------------


def test_the_sample_imports_the_active_branches_with_every_kept_content_type(history):
    report = import_chatgpt_export(history, SAMPLE)
    assert report.files == [str(SAMPLE)]
    assert (report.conversations, report.messages_imported) == (3, 15)
    assert report.skipped == {
        "null message": 3,
        "system": 1,
        "user_editable_context": 1,
        "thoughts": 1,
        "reasoning_recap": 1,
        "hidden": 1,
        "empty": 2,
        "unknown type app_pairing_content": 1,
    }
    assert contents(history) == [
        ("conv-fork-0001", "human", "What is the capital of France?"),
        ("conv-fork-0001", "ai", "The capital of France is Paris."),
        ("conv-fork-0001", "human", "Tell me a short joke about Paris."),
        ("conv-fork-0001", "ai", "Paris never sleeps: too many lights."),
        ("conv-types-0002", "system", "Always answer in English."),
        ("conv-types-0002", "human", "[image]\nWhat does this whiteboard compute?"),
        ("conv-types-0002", "ai", "```python\nprint(2 + 2)\n```"),
        ("conv-types-0002", "tool", "4"),
        ("conv-types-0002", "ai", '```\nsearch("weather in Lyon")\n```'),
        ("conv-types-0002", "tool", "Weather in Lyon\n\nLyon: sunny, 21 C."),
        ("conv-types-0002", "tool", "Lyon weather\nhttps://example.org/lyon\n\nSunny all week."),
        ("conv-types-0002", "ai", "The browser tool timed out."),
        ("conv-types-0002", "ai", "The whiteboard computes 4, and Lyon is sunny."),
        ("conv-untitled-0003", "human", "Hello?"),
        ("conv-untitled-0003", "ai", "Hello! How can I help?"),
    ]


def test_sample_records_carry_session_source_times_title_model_and_export_ids(history):
    import_chatgpt_export(history, SAMPLE)
    records = {record.metadata["message_id"]: record for record in history.records()}
    answer = records["a-1b"]
    assert answer.id == record_id("chatgpt", "conv-fork-0001", "a-1b")
    assert (answer.session_id, answer.source, answer.namespace) == ("conv-fork-0001", "chatgpt_export", "chatgpt")
    assert answer.created_at == "2023-11-14T22:13:40.000000Z"  # T0 + 20 s
    assert answer.model == "openai:gpt-4o" and answer.metadata["model_slug"] == "gpt-4o"
    assert answer.metadata["title"] == "Capital of France" and answer.metadata["parent_id"] == "u-1"
    assert records["u-1"].model is None and records["u-1"].metadata["parent_id"] is None
    assert records["u-3"].metadata["asset_pointers"] == ["file-service://file-AbC123"]
    assert records["t-3"].metadata["tool_output"] is True and records["a-3"].metadata["recipient"] == "python"
    assert records["a-3"].metadata["language"] == "python"
    # null create_time: the conversation's time, flagged; null title stays null
    assert records["a-5"].created_at == "2023-11-16T02:00:00.000000Z"
    assert records["a-5"].metadata["create_time_missing"] is True
    assert records["u-6"].metadata["title"] is None and records["u-6"].created_at == "2023-11-17T05:46:40.000000Z"
    assert "create_time_missing" not in records["a-6"].metadata


def test_all_branches_keeps_the_side_branches_marked_and_linked_to_their_fork(history):
    report = import_chatgpt_export(history, SAMPLE, all_branches=True)
    assert report.messages_imported == 18
    fork = [record for record in history.records() if record.session_id == "conv-fork-0001"]
    assert [(r.metadata["message_id"], r.metadata["branch_id"], r.metadata["active_branch"]) for r in fork] == [
        ("u-1", "a-2e", True),
        ("a-1b", "a-2e", True),
        ("u-2e", "a-2e", True),
        ("a-2e", "a-2e", True),
        ("a-1", "a-1", False),
        ("u-2", "a-2", False),
        ("a-2", "a-2", False),
    ]
    parents = {r.metadata["message_id"]: r.metadata["parent_id"] for r in fork}
    assert parents == {
        "u-1": None,
        "a-1b": "u-1",
        "u-2e": "a-1b",
        "a-2e": "u-2e",
        "a-1": "u-1",
        "u-2": "a-1b",
        "a-2": "u-2",
    }


def test_include_thoughts_and_user_context_keep_what_is_skipped_by_default(history):
    report = import_chatgpt_export(history, SAMPLE, include_thoughts=True, include_user_context=True)
    kept = {record.metadata["message_id"]: record for record in history.records()}
    assert kept["th-3"].content == "Checking the sum\nThe code printed 4, which matches 2 + 2."
    assert kept["rr-3"].content == "Thought for 3 seconds"
    assert kept["ctx-2"].role == "system" and kept["ctx-2"].content == "I am a developer in Lyon.\n\nAnswer briefly."
    assert {"thoughts", "reasoning_recap", "user_editable_context"}.isdisjoint(report.skipped)
    assert report.messages_imported == 18


# --- one message at a time ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "text", "extra"),
    [
        ({"content_type": "text", "parts": ["one", "", "two"]}, "one\ntwo", {}),
        (
            {
                "content_type": "multimodal_text",
                "parts": ["look", {"content_type": "image_asset_pointer", "asset_pointer": "file-service://f1"}],
            },
            "look\n[image]",
            {"asset_pointers": ["file-service://f1"]},
        ),
        (
            {"content_type": "multimodal_text", "parts": [{"content_type": "audio_transcription", "text": "spoken"}]},
            "spoken",
            {},
        ),
        ({"content_type": "code", "language": "sql", "text": "select 1"}, "```sql\nselect 1\n```", {"language": "sql"}),
        ({"content_type": "code", "language": "unknown", "text": "x = 1"}, "```\nx = 1\n```", {}),
        ({"content_type": "execution_output", "text": "42"}, "42", {"tool_output": True}),
        ({"content_type": "tether_browsing_display", "result": "page", "summary": None}, "page", {"tool_output": True}),
        (
            {"content_type": "tether_quote", "url": "https://a.b", "title": "T", "text": "quoted"},
            "T\nhttps://a.b\n\nquoted",
            {"tool_output": True, "url": "https://a.b"},
        ),
        ({"content_type": "system_error", "name": "e", "text": "it broke"}, "it broke", {}),
        ({"content_type": "future_type", "parts": ["still text"]}, "still text", {}),
    ],
)
def test_each_content_type_becomes_text(content, text, extra):
    converted = message_to_text(message("m", "assistant", content))
    assert converted.skipped is None
    assert converted.text == text
    assert converted.metadata == {"content_type": content["content_type"], **extra}


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (None, "null message"),
        (message("m", content={"content_type": "text", "parts": [""]}), "empty"),
        (message("m", content={"content_type": "text", "parts": []}), "empty"),
        (message("m", content={"content_type": "text", "parts": ["  \n"]}), "empty"),
        (message("m", content={"content_type": "text"}), "empty"),
        (message("m", content={"content_type": "code", "language": "python", "text": ""}), "empty"),
        (
            message("m", content={"content_type": "thoughts", "thoughts": [{"summary": "s", "content": "c"}]}),
            "thoughts",
        ),
        (message("m", content={"content_type": "reasoning_recap", "content": "Thought for 2s"}), "reasoning_recap"),
        (
            message("m", content={"content_type": "user_editable_context", "user_profile": "me"}),
            "user_editable_context",
        ),
        (message("m", "user", "psst", is_visually_hidden_from_conversation=True), "hidden"),
        (message("m", "system", "You are ChatGPT."), "system"),
        (message("m", "system", "hidden", is_visually_hidden_from_conversation=True), "system"),
        (
            message("m", content={"content_type": "app_pairing_content", "workspaces": []}),
            "unknown type app_pairing_content",
        ),
        (message("m", content={"content_type": "mystery", "text": "   "}), "unknown type mystery"),
    ],
)
def test_messages_left_out_say_why(msg, reason):
    converted = message_to_text(msg)
    assert (converted.text, converted.skipped) == ("", reason)


def test_system_messages_follow_the_exports_own_flag():
    flagged = message(
        "m", "system", "Be brief.", is_user_system_message=True, is_visually_hidden_from_conversation=True
    )
    assert message_to_text(flagged).text == "Be brief."
    assert message_to_text(message("m", "system", "Be brief.")).skipped == "system"


def test_options_keep_thoughts_and_user_context():
    thoughts = message(
        "m", "assistant", {"content_type": "thoughts", "thoughts": [{"summary": "S", "content": "C"}, {"content": "D"}]}
    )
    assert message_to_text(thoughts, include_thoughts=True).text == "S\nC\n\nD"
    context = message(
        "m",
        "system",
        {"content_type": "user_editable_context", "user_instructions": "brief"},
        is_user_system_message=True,
    )
    assert message_to_text(context, include_user_context=True).text == "brief"


def test_roles_map_and_tool_output_is_a_tool_record():
    nodes = [
        ("r", None, None),
        ("u", "r", message("u", "user", "run it")),
        ("a", "u", message("a", "assistant", "ok")),
        ("t", "a", message("t", "tool", "done")),
        ("b", "t", message("b", "assistant", {"content_type": "execution_output", "text": "7"})),
        ("c", "b", message("c", "critic", "odd author")),
    ]
    parsed = conversation_records(conversation("c1", nodes), "ns")
    assert [(r.metadata["message_id"], r.role) for r in parsed.records] == [
        ("u", "human"),
        ("a", "ai"),
        ("t", "tool"),
        ("b", "tool"),
    ]
    assert parsed.skipped == {"null message": 1, "unknown role critic": 1}


def test_create_time_falls_back_to_the_conversation_then_its_update_time_then_the_epoch():
    nodes = [("m", None, message("m", create_time=None))]
    first = conversation("c", nodes)
    assert conversation_records(first, "ns").records[0].created_at == "2023-11-14T22:13:20.000000Z"
    second = conversation("c", nodes, create_time=None) | {"update_time": T0 + 5}
    assert conversation_records(second, "ns").records[0].created_at == "2023-11-14T22:13:25.000000Z"
    third = conversation("c", nodes, create_time=None)
    record = conversation_records(third, "ns").records[0]
    assert record.created_at == "1970-01-01T00:00:00.000000Z" and record.metadata["create_time_missing"] is True


def test_conversation_id_may_come_from_conversation_id_and_titles_may_be_null():
    convo = chat("ignored", "hi", "hello", title=None)
    convo["conversation_id"] = "real-id"
    records = conversation_records(convo, "ns").records
    assert {r.session_id for r in records} == {"real-id"} and {r.metadata["title"] for r in records} == {None}


# --- the tree --------------------------------------------------------------------------------------------


def test_active_branch_walks_up_from_current_node_whatever_the_mapping_order():
    nodes = [
        ("b2", "a1", message("b2", "assistant", "second answer")),
        ("a1", "root", message("a1", "user", "question")),
        ("root", None, None),
        ("b1", "a1", message("b1", "assistant", "first answer")),
    ]
    convo = conversation("c", nodes, current="b2")
    assert [node["id"] for node in active_branch(convo)] == ["root", "a1", "b2"]
    convo["current_node"] = "b1"
    assert [node["id"] for node in active_branch(convo)] == ["root", "a1", "b1"]


def test_side_branches_follow_the_parents_children_order():
    nodes = [("r", None, None)] + [(name, "r", message(name, "assistant", name)) for name in ("x", "y", "z")]
    convo = conversation("c", nodes, current="y")
    convo["mapping"]["r"]["children"] = ["z", "y", "x"]
    assert [(b.branch_id, b.active, b.node_ids) for b in branches(convo)] == [
        ("y", True, ("r", "y")),
        ("z", False, ("z",)),
        ("x", False, ("x",)),
    ]


def test_a_current_node_that_is_not_a_leaf_keeps_its_descendants_as_a_side_branch():
    convo = chat("c", "q", "a", "q2", "a2")
    convo["current_node"] = "c-m1"
    parsed = conversation_records(convo, "ns", all_branches=True)
    assert [(r.content, r.metadata["active_branch"], r.metadata["parent_id"]) for r in parsed.records] == [
        ("q", True, None),
        ("a", True, "c-m0"),
        ("q2", False, "c-m1"),
        ("a2", False, "c-m2"),
    ]


@st.composite
def trees(draw):
    """A random valid tree: (conversation, active message ids in order, parent index per node, has a message)."""
    size = draw(st.integers(1, 25))
    parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, size)]
    with_message = [draw(st.integers(0, 5)) > 0 for _ in range(size)]
    roles = [draw(st.sampled_from(["user", "assistant", "tool"])) for _ in range(size)]
    current = draw(st.integers(0, size - 1))
    order = draw(st.permutations(range(size)))
    nodes = [
        (
            f"n{i}",
            None if parents[i] is None else f"n{parents[i]}",
            message(f"n{i}", roles[i], f"text {i}", create_time=T0 + i) if with_message[i] else None,
        )
        for i in order
    ]
    convo = conversation("tree", nodes, current=f"n{current}")
    for node in convo["mapping"].values():
        draw(st.randoms()).shuffle(node["children"])
    path, walk = [], current
    while walk is not None:
        path.append(walk)
        walk = parents[walk]
    expected = [f"n{i}" for i in reversed(path) if with_message[i]]
    return convo, expected, parents, with_message


@given(trees())
@hypothesis_settings(max_examples=300, deadline=None)
def test_random_trees_yield_exactly_the_active_branch_in_order(tree):
    convo, expected, _, _ = tree
    records = conversation_records(convo, "ns").records
    assert [r.metadata["message_id"] for r in records] == expected
    assert [r.content for r in records] == [f"text {node_id[1:]}" for node_id in expected]
    assert [r.metadata["parent_id"] for r in records] == [None, *expected][: len(expected)]


@given(trees())
@hypothesis_settings(max_examples=300, deadline=None)
def test_random_trees_with_all_branches_yield_every_message_once_linked_to_its_nearest_ancestor(tree):
    convo, expected, parents, with_message = tree
    records = conversation_records(convo, "ns", all_branches=True).records
    ids = [r.metadata["message_id"] for r in records]
    assert ids[: len(expected)] == expected and len(ids) == len(set(ids))
    assert set(ids) == {f"n{i}" for i, kept in enumerate(with_message) if kept}
    for record in records:
        walk = parents[int(record.metadata["message_id"][1:])]
        while walk is not None and not with_message[walk]:
            walk = parents[walk]
        assert record.metadata["parent_id"] == (None if walk is None else f"n{walk}")
        assert record.metadata["active_branch"] == (record.metadata["message_id"] in expected)
    position = {node_id: i for i, node_id in enumerate(ids)}
    assert all(
        position[r.metadata["parent_id"]] < position[r.metadata["message_id"]]
        for r in records
        if r.metadata["parent_id"]
    )


@given(trees(), trees())
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_importing_random_trees_logs_the_active_branches_in_order_and_only_once(first, second):
    second[0]["id"] = "tree-2"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(message_history=Path(tmp) / "logs", chroma_db_path=Path(tmp) / "chroma")
        history = PubSubChatMessageHistory("trees", settings=settings)
        export = write_export(Path(tmp) / "conversations.json", [first[0], second[0]])
        import_chatgpt_export(history, export)
        import_chatgpt_export(history, export)
        logged = [(r.session_id, r.metadata["message_id"]) for r in history.records()]
    assert logged == [("tree", i) for i in first[1]] + [("tree-2", i) for i in second[1]]


# --- bad input -------------------------------------------------------------------------------------------


def _cycle():
    convo = chat("bad", "q", "a", "q2")
    convo["mapping"]["root"]["parent"] = "bad-m2"
    return convo


def _dangling():
    convo = chat("bad", "q", "a")
    convo["mapping"]["bad-m1"]["parent"] = "gone"
    return convo


def _side_cycle():  # the active branch is fine; a side branch loops
    convo = chat("bad", "q", "a")
    convo["mapping"] |= {"s1": {"parent": "s2", "message": None}, "s2": {"parent": "s1", "message": None}}
    return convo


BAD_CONVERSATIONS = {
    "cycle": (_cycle, "cycle through node"),
    "side cycle": (_side_cycle, "cycle through node"),
    "dangling parent": (_dangling, "parent 'gone', which is not in 'mapping'"),
    "missing current_node": (
        lambda: {k: v for k, v in chat("bad", "q").items() if k != "current_node"},
        "has no 'current_node'",
    ),
    "null current_node": (lambda: chat("bad", "q") | {"current_node": None}, "has no 'current_node'"),
    "unknown current_node": (
        lambda: chat("bad", "q") | {"current_node": "nope"},
        "'current_node' 'nope' is not in 'mapping'",
    ),
    "mapping not an object": (lambda: chat("bad", "q") | {"mapping": []}, "'mapping' is missing or not an object"),
    "no mapping": (lambda: {"id": "bad", "current_node": "x"}, "'mapping' is missing or not an object"),
    "node not an object": (lambda: chat("bad", "q") | {"mapping": {"x": 3}}, "node 'x' is not an object"),
    "message content not an object": (
        lambda: (
            chat("bad", "q", "a")
            | {
                "mapping": chat("bad", "q", "a")["mapping"]
                | {"bad-m1": {"parent": "bad-m0", "message": {"author": {"role": "assistant"}, "content": "flat"}}}
            }
        ),
        "the message of node 'bad-m1' is not an object with author and content",
    ),
}


@pytest.mark.parametrize("case", BAD_CONVERSATIONS)
def test_a_bad_conversation_stops_the_import_naming_file_and_id_and_keeps_the_ones_before(history, tmp_path, case):
    make, problem = BAD_CONVERSATIONS[case]
    export = write_export(
        tmp_path / "conversations.json", [chat("good-1", "q1", "a1"), make(), chat("good-2", "q2", "a2")]
    )
    with pytest.raises(ExportError) as raised:
        import_chatgpt_export(history, export)
    message_text = str(raised.value)
    assert message_text.startswith(f"{export}, conversation #2 of the file (counting from 1), id 'bad': ")
    assert problem in message_text and "fix or remove it and run the import again" in message_text
    assert (raised.value.file, raised.value.index, raised.value.conversation_id) == (str(export), 2, "bad")
    assert contents(history) == [("good-1", "human", "q1"), ("good-1", "ai", "a1")]  # nothing of 'bad', nothing after
    assert raised.value.report.conversations == 1 and raised.value.report.messages_imported == 2


@pytest.mark.parametrize(
    ("item", "problem"),
    [(42, "is a JSON number, not an object"), ("text", "is a JSON string"), ({"title": "no id"}, "has no 'id'")],
)
def test_a_conversation_without_an_id_is_named_by_its_position_far_into_the_file(history, tmp_path, item, problem):
    good = [chat(f"c{i}", "q" * 500, "a") for i in range(150)]  # about 120 KB: the parser reads 16 KiB chunks
    export = write_export(tmp_path / "conversations.json", [*good, item, chat("after", "q")])
    with pytest.raises(ExportError) as raised:
        import_chatgpt_export(history, export)
    expected = f"{export}, conversation #151 of the file (counting from 1), which has no id: {problem}"
    assert str(raised.value).startswith(expected)
    assert (raised.value.file, raised.value.index, raised.value.conversation_id) == (str(export), 151, None)
    assert len(history.records()) == 300 and raised.value.report.conversations == 150


def test_truncated_json_names_the_byte_where_it_ends_and_keeps_whole_conversations(history, tmp_path):
    full = json.dumps([chat("one", "q1", "a1"), chat("two", "q2", "a2"), chat("three", "q3", "a3")])
    cut = full[: full.index('"three"') + 40]
    export = tmp_path / "conversations.json"
    export.write_text(cut, encoding="utf-8")
    with pytest.raises(ExportError) as raised:
        import_chatgpt_export(history, export)
    assert str(raised.value).startswith(f"{export}, after conversation #2 of the file (counting from 1), id 'two': ")
    assert "truncated" in str(raised.value)
    assert (raised.value.index, raised.value.conversation_id, raised.value.after) == (2, "two", True)
    assert [s for s, _, _ in contents(history)] == ["one", "one", "two", "two"]


@pytest.mark.parametrize(
    ("broken", "needle"),
    [
        (lambda good: good[:-1] + ', {"id": nope}]', "nope"),
        (lambda good: good + " trailing", "trailing"),
        (lambda good: good[:-1] + ', {"id": "x" "y"}]', '"y"'),
    ],
)
def test_invalid_json_names_the_last_conversation_read_far_into_the_file(history, tmp_path, broken, needle):
    many = [chat(f"c{i}", "q" * 500, "a" * 500) for i in range(200)]  # about 250 KB: several parser chunks
    export = tmp_path / "conversations.json"
    export.write_text(broken(json.dumps(many)), encoding="utf-8")
    with pytest.raises(ExportError) as raised:
        import_chatgpt_export(history, export)
    message_text = str(raised.value)
    assert message_text.startswith(f"{export}, after conversation #200 of the file (counting from 1), id 'c199': ")
    assert "not valid JSON" in message_text and needle in message_text  # ijson's text around the error
    assert (raised.value.file, raised.value.index, raised.value.conversation_id) == (str(export), 200, "c199")
    assert len({r.session_id for r in history.records()}) == 200  # everything before the bad bytes


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b'{"conversations": []}', "holds a JSON object"),
        (b"hello", "does not start with a JSON array"),
        (b'[{"id": "a\xff"}]', "not valid JSON"),
    ],
)
def test_files_that_are_not_a_json_array_are_refused(history, tmp_path, data, problem):
    export = tmp_path / "conversations.json"
    export.write_bytes(data)
    with pytest.raises(ExportError, match=problem) as raised:
        import_chatgpt_export(history, export)
    assert str(raised.value).startswith(str(export)) and history.records() == []
    assert raised.value.file == str(export) and raised.value.conversation_id is None


def test_a_utf8_bom_and_an_empty_array_are_fine(history, tmp_path):
    export = tmp_path / "conversations.json"
    export.write_bytes(b"\xef\xbb\xbf " + json.dumps([chat("c", "q")]).encode())
    assert import_chatgpt_export(history, export).messages_imported == 1
    export.write_bytes(b"[]")
    assert import_chatgpt_export(history, export).conversations == 0


def test_missing_paths_and_folders_without_an_export_are_refused(tmp_path, history):
    with pytest.raises(ExportError, match="does not exist"):
        import_chatgpt_export(history, tmp_path / "nowhere.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="holds no conversations.json"):
        import_chatgpt_export(history, tmp_path / "empty")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ExportError, match="not a readable zip"):
        import_chatgpt_export(history, tmp_path / "bad.zip")


# --- inputs: zip, split files, folders ------------------------------------------------------------------------


def test_the_zip_as_downloaded_is_read_without_extracting(history, tmp_path, monkeypatch):
    def no_extracting(*args, **kwargs):
        raise AssertionError("the export must be read from the archive, not extracted")

    monkeypatch.setattr(zipfile.ZipFile, "extract", no_extracting)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", no_extracting)
    archive = tmp_path / "export" / "chatgpt-export.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("user-123/conversations.json", SAMPLE.read_bytes())
        zipped.writestr("chat.html", "<html></html>")
        zipped.writestr("__MACOSX/._conversations.json", "junk")
    before = sorted(os.listdir(tmp_path / "export"))
    report = import_chatgpt_export(history, archive)
    assert report.files == [f"{archive}:user-123/conversations.json"] and report.messages_imported == 15
    assert sorted(os.listdir(tmp_path / "export")) == before
    assert import_chatgpt_export(history, archive.parent).messages_imported == 0  # a folder holding the zip
    assert len(history.records()) == 15


def test_split_files_are_read_in_order_from_a_folder_or_a_zip(history, tmp_path, settings):
    folder = tmp_path / "export"
    for number, name in ((10, "c10"), (2, "c2"), (0, "c0")):
        write_export(folder / f"conversations-{number:03d}.json", [chat(name, f"q{name}")])
    write_export(folder / "other.json", [chat("ignored", "x")])
    assert [Path(f.name).name for f in export_files(folder)] == [f"conversations-{n:03d}.json" for n in (0, 2, 10)]
    report = import_chatgpt_export(history, folder)
    assert [s for s, _, _ in contents(history)] == ["c0", "c2", "c10"] and len(report.files) == 3
    archive = tmp_path / "split.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.glob("conversations-*.json"), reverse=True):
            zipped.write(path, path.name)
    other = PubSubChatMessageHistory("from-zip", settings=settings)
    import_chatgpt_export(other, archive)
    assert [s for s, _, _ in contents(other)] == ["c0", "c2", "c10"]


@pytest.mark.parametrize("packed", [False, True])
def test_an_error_in_a_later_split_file_names_that_file_and_its_conversation(history, tmp_path, packed):
    folder = tmp_path / "export"
    write_export(folder / "conversations-000.json", [chat("first", "q"), chat("second", "q")])
    cut = json.dumps([chat("third", "q")])[:-1] + ', {"id": '
    (folder / "conversations-001.json").write_text(cut, encoding="utf-8")
    (folder / "conversations-002.json").write_text("[]", encoding="utf-8")
    bad, source = str(folder / "conversations-001.json"), folder
    if packed:
        source = tmp_path / "export.zip"
        with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in sorted(folder.iterdir()):
                zipped.write(path, f"user/{path.name}")
        bad = f"{source}:user/conversations-001.json"
    with pytest.raises(ExportError) as raised:
        import_chatgpt_export(history, source)
    assert str(raised.value).startswith(f"{bad}, after conversation #1 of the file (counting from 1), id 'third': ")
    assert "truncated" in str(raised.value)
    assert (raised.value.file, raised.value.index, raised.value.conversation_id) == (bad, 1, "third")
    assert [s for s, _, _ in contents(history)] == ["first", "second", "third"]


@pytest.mark.parametrize("count", [1, 100])
def test_a_damaged_zip_member_names_the_member_and_keeps_what_was_read(history, tmp_path, count):
    data = json.dumps([chat(f"c{i}", f"{i:03d}" + "q" * 2000) for i in range(count)]).encode()
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        zipped.writestr("conversations.json", data)
    packed = archive.read_bytes()
    at = packed.rindex(b"q" * 2000)
    archive.write_bytes(packed[:at] + b"x" + packed[at + 1 :])  # still JSON, but the CRC no longer matches
    with pytest.raises(ExportError) as raised:
        import_chatgpt_export(history, archive)
    message_text, index = str(raised.value), raised.value.index
    assert "cannot be read" in message_text and "CRC" in message_text
    if count == 1:  # the member is read whole before parsing starts
        assert message_text.startswith(f"{archive}:conversations.json: cannot be read") and index is None
        assert history.records() == []
    else:  # the check fails when the last chunk is read: the conversations parsed before it are kept
        assert 0 < index < count and raised.value.conversation_id == f"c{index - 1}"
        where = f"{archive}:conversations.json, after conversation #{index} of the file (counting from 1)"
        assert message_text.startswith(where)
        assert [s for s, _, _ in contents(history)] == [f"c{i}" for i in range(index)]


def test_bad_json_before_the_first_conversation_says_so(history, tmp_path):
    export = tmp_path / "conversations.json"
    export.write_text('[{"id": ', encoding="utf-8")
    with pytest.raises(ExportError) as raised:
        import_chatgpt_export(history, export)
    assert str(raised.value).startswith(f"{export}, before the first conversation: the file ends early")
    assert (raised.value.index, raised.value.conversation_id) == (0, None)


def test_iter_conversations_streams_one_conversation_at_a_time(tmp_path):
    export = tmp_path / "conversations.json"
    export.write_text(json.dumps([chat("first", "q")])[:-1] + ", oops", encoding="utf-8")
    stream = iter_conversations(export)
    assert next(stream)["id"] == "first"  # read before the parser ever reaches the bad bytes
    with pytest.raises(ExportError, match="after conversation #1 of the file .counting from 1., id 'first'"):
        next(stream)
    write_export(export, [chat("first", "q"), [1, 2]])
    with pytest.raises(
        ExportError, match="conversation #2 of the file .counting from 1., which has no id: is not a JSON object"
    ):
        list(iter_conversations(export))


def test_memory_stays_bounded_on_a_large_export(tmp_path):
    export = tmp_path / "conversations.json"
    with open(export, "w", encoding="utf-8") as handle:
        handle.write("[")
        for i in range(400):
            handle.write(("," if i else "") + json.dumps(chat(f"c{i}", *(["x" * 2000] * 10))))
        handle.write("]")
    assert export.stat().st_size > 8_000_000
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_conversations(export))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 400 and peak < 1_000_000  # a conversation is about 21 KB; the file is 8 MB


# --- re-import, interruption, progress ------------------------------------------------------------------------


def test_reimporting_the_same_export_adds_nothing(history):
    first = import_chatgpt_export(history, SAMPLE, all_branches=True)
    size = history.path.stat().st_size
    again = import_chatgpt_export(history, SAMPLE, all_branches=True)
    assert again.messages_imported == 0 and again.skipped["already imported"] == first.messages_imported
    assert history.path.stat().st_size == size
    assert import_chatgpt_export(history, SAMPLE).messages_imported == 0  # the active branch is a subset


def test_archived_records_count_as_imported(history):
    import_chatgpt_export(history, SAMPLE)
    history.clear()
    assert import_chatgpt_export(history, SAMPLE).messages_imported == 0


def test_another_namespace_gets_its_own_records(history, settings):
    import_chatgpt_export(history, SAMPLE)
    other = PubSubChatMessageHistory("other", settings=settings)
    assert import_chatgpt_export(other, SAMPLE).messages_imported == 15
    assert {r.id for r in other.records()}.isdisjoint(r.id for r in history.records())


def test_an_interrupted_import_completes_when_run_again(history, tmp_path):
    export = write_export(tmp_path / "conversations.json", [chat(f"c{i}", "q", "a", "q2") for i in range(5)])

    def interrupt(done, _read, _total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_chatgpt_export(history, export, on_conversation=interrupt)
    assert len(history.records()) == 6
    report = import_chatgpt_export(history, export)
    assert report.messages_imported == 9 and report.skipped["already imported"] == 6
    ids = [r.id for r in history.records()]
    assert len(ids) == 15 == len(set(ids))


def test_a_log_torn_inside_a_conversation_is_completed_when_run_again(history, tmp_path):
    export = write_export(tmp_path / "conversations.json", [chat(f"c{i}", "q", "a", "q2") for i in range(3)])
    import_chatgpt_export(history, export)
    full = {r.id for r in history.records()}
    data = history.path.read_bytes()
    lines = data.splitlines(keepends=True)
    history.path.write_bytes(b"".join(lines[:4]) + lines[4][:30])  # killed while writing c1's second record
    assert len(history.records()) == 4
    import_chatgpt_export(history, export)
    ids = [r.id for r in history.records()]
    assert set(ids) == full and len(ids) == len(full)


def test_a_failed_import_completes_after_the_fix(history, tmp_path):
    good = [chat(f"c{i}", "q", "a") for i in range(4)]
    broken = good[:2] + [_cycle()] + good[2:]
    export = write_export(tmp_path / "conversations.json", broken)
    with pytest.raises(ExportError):
        import_chatgpt_export(history, export)
    write_export(export, good[:2] + [chat("bad", "fixed")] + good[2:])
    report = import_chatgpt_export(history, export)
    assert report.messages_imported == 5 and report.skipped["already imported"] == 4
    assert [s for s, _, _ in contents(history)] == ["c0", "c0", "c1", "c1", "bad", "c2", "c2", "c3", "c3"]


@pytest.mark.parametrize("packed", [False, True])
def test_progress_is_reported_after_each_conversation_up_to_the_total(history, tmp_path, packed):
    folder = tmp_path / "export"
    write_export(folder / "conversations-000.json", [chat("a", "q"), chat("b", "q")])
    write_export(folder / "conversations-001.json", [chat("c", "q")])
    total = sum(path.stat().st_size for path in folder.iterdir())
    source = folder
    if packed:  # progress in the members' uncompressed bytes
        source = tmp_path / "export.zip"
        with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in folder.iterdir():
                zipped.write(path, path.name)
    calls = []
    import_chatgpt_export(history, source, on_conversation=lambda *args: calls.append((*args, len(history.records()))))
    assert [(done, seen) for done, _, _, seen in calls] == [(1, 1), (2, 2), (3, 3)]  # called after the append
    assert {t for _, _, t, _ in calls} == {total}
    assert 0 < calls[0][1] <= calls[1][1] < calls[2][1] == total  # bytes the parser has read (16 KiB chunks)


def test_progress_on_a_large_file_moves_with_the_parser(history, tmp_path):
    export = write_export(tmp_path / "conversations.json", [chat(f"c{i}", "q" * 2000) for i in range(200)])
    reads = []
    import_chatgpt_export(history, export, on_conversation=lambda _done, read, _total: reads.append(read))
    assert reads == sorted(reads) and len(set(reads)) > 5 and reads[0] < export.stat().st_size // 2
    assert reads[-1] == export.stat().st_size


def test_duplicate_conversations_across_files_are_imported_once(history, tmp_path):
    folder = tmp_path / "export"
    write_export(folder / "conversations.json", [chat("same", "q", "a")])
    write_export(folder / "conversations-000.json", [chat("same", "q", "a")])
    report = import_chatgpt_export(history, folder)
    assert report.messages_imported == 2 and report.skipped["already imported"] == 2


# --- through the real Pub/Sub emulator --------------------------------------------------------------------------


@pytest.mark.emulator
def test_the_sample_is_published_through_the_emulator(emulator_env, tmp_path):
    history = PubSubChatMessageHistory("chatgpt-sample", settings=Settings.from_env())
    topic = ensure_topic(emulator_env, history.publisher.topic_id)
    subscriber, subscription = subscribe(emulator_env, topic, "chatgpt-sample-check")
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as zipped:
        zipped.write(SAMPLE, "conversations.json")
    report = import_chatgpt_export(history, export, all_branches=True)
    assert history.flush(timeout=60) == 0
    pulled = pull_all(subscriber, subscription, expected=report.messages_imported)
    history.close()
    imported = {record.id: record for record in history.records()}
    assert len(imported) == report.messages_imported == 18
    assert set(pulled) == set(imported)
    some = imported[record_id("chatgpt-sample", "conv-types-0002", "t-5")]
    assert json.loads(pulled[some.id].data) == json.loads(some.to_json())
    assert pulled[some.id].ordering_key == "conv-types-0002"
    assert history.outbox.pending() == []
