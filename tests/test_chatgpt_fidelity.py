"""ChatGPT import fidelity (issue 12): citations, tool calls, Code Interpreter images, branch copies, memory writes.

Every fixture is a small hand-made conversation in the shape real exports carry. Where the shapes come from:
- messages, ``recipient``, ``author.name``, ``metadata.aggregate_result``, ``metadata.citations`` and
  ``metadata.content_references``: the types of ``pionxzh/chatgpt-exporter`` (``src/api.ts``) and its
  ``src/utils/citations.ts``;
- a ``grouped_webpages`` reference with ``matched_text``/``alt``/``items``/``safe_urls``: the excerpt of a real
  export in ``Laumss/loominary`` issue 17;
- the private-use markers (U+E200 open, U+E202 separator, U+E201 close, U+E203/U+E204 a span):
  ``pionxzh/chatgpt-exporter`` issue 259 and ``danny-avila/LibreChat`` ``client/src/utils/citations.ts``;
- ``【n†source】`` with ``metadata.citations`` (``start_ix``/``end_ix``, ``tether_og``): ``src/api.ts`` above.
"""

from __future__ import annotations

import copy
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, ToolMessage

from my_llm import PubSubChatMessageHistory
from my_llm.history import to_message
from my_llm.importers.chatgpt import conversation_records, import_chatgpt_export, message_to_text
from my_llm.importers.chatgpt.citations import resolve_citations
from my_llm.importers.chatgpt.copies import COPY_REASON
from my_llm.importers.chatgpt.tools import tool_call_id

T0 = 1_730_000_000.0
CITE = "\ue200cite\ue202turn0search4\ue201"
CITE_TWO = "\ue200cite\ue202turn2view3\ue202turn1search0\ue201"
PRIVATE_USE = range(0xE000, 0xF900)


def uid(label: str) -> str:
    """A message id as real exports have them (a UUID), stable per label."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, label))


def msg(node_id, role, content, *, name=None, recipient="all", when=0.0, channel=None, **metadata):
    """An export message with the fields real exports carry; ``content`` is text or a content object."""
    if isinstance(content, str):
        content = {"content_type": "text", "parts": [content]}
    if role == "assistant":
        metadata = {"model_slug": "gpt-4o", "finish_details": {"type": "stop"}, "is_complete": True} | metadata
    return {
        "id": node_id,
        "author": {"role": role, "name": name, "metadata": {}},
        "create_time": T0 + when,
        "update_time": None,
        "content": content,
        "status": "finished_successfully",
        "end_turn": role == "assistant" and recipient == "all",
        "weight": 1.0,
        "metadata": metadata,
        "recipient": recipient,
        "channel": channel,
    }


def convo(conversation_id, *messages, title="A title"):
    """A linear conversation: a ``client-created-root`` with a null message, then ``messages`` in order."""
    mapping = {"client-created-root": {"id": "client-created-root", "parent": None, "children": [], "message": None}}
    parent = "client-created-root"
    for message in messages:
        mapping[message["id"]] = {"id": message["id"], "parent": parent, "children": [], "message": message}
        mapping[parent]["children"].append(message["id"])
        parent = message["id"]
    return {
        "id": conversation_id,
        "conversation_id": conversation_id,
        "title": title,
        "create_time": T0,
        "update_time": T0 + 100,
        "mapping": mapping,
        "current_node": parent,
        "moderation_results": [],
        "is_archived": False,
        "safe_urls": [],
    }


def export(tmp_path, *conversations):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(list(conversations)), encoding="utf-8")
    return path


@pytest.fixture
def history(settings):
    return PubSubChatMessageHistory("fidelity", settings=settings)


def by_message_id(records):
    return {record.metadata["message_id"]: record for record in records}


def has_private_use(text: str) -> bool:
    return any(ord(char) in PRIVATE_USE for char in text)


# --- 1. citation markers ---------------------------------------------------------------------------------------


GROUPED = {  # as Laumss/loominary issue 17 shows it
    "matched_text": CITE_TWO,
    "start_idx": 20,
    "end_idx": 50,
    "safe_urls": ["https://example.org/lyon", "https://meteo.example/lyon"],
    "refs": [],
    "alt": "([Lyon weather](https://example.org/lyon))",
    "prompt_text": None,
    "type": "grouped_webpages",
    "items": [
        {
            "title": "Lyon weather",
            "url": "https://example.org/lyon",
            "pub_date": None,
            "snippet": None,
            "attribution_segments": None,
            "supporting_websites": [{"title": "Meteo", "url": "https://meteo.example/lyon", "attribution": "Meteo"}],
            "refs": [{"turn_index": 2, "ref_type": "view", "ref_index": 3}],
            "hue": None,
            "attributions": None,
        }
    ],
}


def test_new_style_markers_take_the_text_the_export_gives_for_them():
    footnote = {"matched_text": " ", "start_idx": 90, "end_idx": 90, "type": "sources_footnote", "sources": []}
    no_alt = {"matched_text": CITE, "type": "grouped_webpages", "alt": None} | {
        "items": [{"title": "Paris facts", "url": "https://example.org/paris"}, {"title": "Wiki", "url": "https://w"}]
    }
    hidden = {"matched_text": "\ue200filecite\ue202turn0file0\ue201", "type": "hidden", "alt": ""}
    text = (
        f"Lyon is sunny today {CITE_TWO}. Paris is big {CITE} and old.\n"
        "See the notes \ue200filecite\ue202turn0file0\ue201 and a lost one \ue200cite\ue202turn9search9\ue201."
    )
    answer = msg("a", "assistant", text, content_references=[GROUPED, footnote, no_alt, hidden])
    converted = message_to_text(answer)
    assert converted.text == (
        "Lyon is sunny today ([Lyon weather](https://example.org/lyon)). "
        "Paris is big ([Paris facts](https://example.org/paris), [Wiki](https://w)) and old.\n"
        "See the notes and a lost one."
    )
    assert converted.metadata["sources"] == [
        {"title": "Lyon weather", "url": "https://example.org/lyon"},
        {"title": "Meteo", "url": "https://meteo.example/lyon"},
        {"title": "Paris facts", "url": "https://example.org/paris"},
        {"title": "Wiki", "url": "https://w"},
    ]


def test_spans_keep_their_text_entities_their_label_and_nothing_private_is_left():
    text = (
        f'\ue203Lyon has two rivers{CITE}\ue204 and \ue200entity\ue202["city","Lyon","France"]\ue201 '
        "is in France\ue206. Cut short \ue200cite\ue202turn0sea"
    )
    converted = message_to_text(msg("a", "assistant", text))
    assert converted.text == "Lyon has two rivers and Lyon is in France. Cut short"
    assert "sources" not in converted.metadata


def test_product_links_without_a_url_keep_their_label():
    product = {"matched_text": "\ue200product\ue202turn0product1\ue201", "type": "product", "alt": "[Kettle X]()"}
    text = "Buy the \ue200product\ue202turn0product1\ue201 now."
    assert message_to_text(msg("a", "assistant", text, content_references=[product])).text == "Buy the Kettle X now."


def test_old_style_source_markers_use_the_references_or_the_citations_positions():
    text = "Lyon is sunny 【3†source】. It has rivers 【5:1†source】 and a lost one 【9†source】."
    start = text.index("【3")
    citations = [  # 2023: tether_og citations by position
        {
            "start_ix": start,
            "end_ix": start + len("【3†source】"),
            "citation_format_type": "tether_og",
            "metadata": {
                "type": "webpage",
                "title": "Lyon weather",
                "url": "https://example.org/lyon",
                "text": "",
                "extra": {"cited_message_idx": 3, "evidence_text": "source"},
            },
        }
    ]
    webpage = {  # 2024: the same markers as content references
        "matched_text": "【5:1†source】",
        "type": "webpage",
        "title": "Rivers of Lyon",
        "url": "https://example.org/rivers",
        "attribution": "example.org",
        "alt": "([example.org](https://example.org/rivers))",
    }
    converted = message_to_text(msg("a", "assistant", text, citations=citations, content_references=[webpage]))
    assert converted.text == (
        "Lyon is sunny ([Lyon weather](https://example.org/lyon)). "
        "It has rivers ([example.org](https://example.org/rivers)) and a lost one."
    )
    assert [source["url"] for source in converted.metadata["sources"]] == [
        "https://example.org/rivers",
        "https://example.org/lyon",
    ]


def test_a_users_own_text_is_left_as_typed():
    typed = "I pasted 【1†source】 from somewhere"
    assert message_to_text(msg("u", "user", typed)).text == typed


def test_an_answer_that_is_only_markers_is_empty():
    assert message_to_text(msg("a", "assistant", f" {CITE} ")).skipped == "empty"


MARKER_PIECES = st.sampled_from(
    [CITE, CITE_TWO, "\ue200", "\ue201", "\ue202", "\ue203", "\ue204", "\ue206", "【2†source】", "cite", "turn0", " "]
)


@given(st.lists(st.one_of(MARKER_PIECES, st.text(max_size=5)), max_size=12), st.booleans())
@hypothesis_settings(max_examples=300, deadline=None)
def test_no_marker_character_survives_whatever_the_text(pieces, with_reference):
    text = "".join(pieces)
    references = [GROUPED, {"matched_text": CITE, "type": "hidden"}] if with_reference else []
    resolved, _ = resolve_citations(text, {"content_references": references})
    assert not any(0xE200 <= ord(char) <= 0xE2FF for char in resolved)


def test_citations_are_resolved_in_the_imported_record(history, tmp_path):
    answer = msg(uid("a1"), "assistant", f"Sunny {CITE_TWO}.", when=2, content_references=[GROUPED])
    path = export(tmp_path, convo(uid("c1"), msg(uid("u1"), "user", "Weather in Lyon?", when=1), answer))
    import_chatgpt_export(history, path)
    record = by_message_id(history.records())[uid("a1")]
    assert record.content == "Sunny ([Lyon weather](https://example.org/lyon))."
    assert not has_private_use(record.content) and record.metadata["sources"][0]["title"] == "Lyon weather"


# --- 2. tool calls ---------------------------------------------------------------------------------------------


def python_run(cid):
    """user -> code to python -> execution_output from python -> the answer (pionxzh ``src/api.ts`` shapes)."""
    return convo(
        cid,
        msg(uid(f"{cid}u"), "user", "What is 2 + 2?", when=1),
        msg(uid(f"{cid}c"), "assistant", {"content_type": "code", "language": "python", "text": "2 + 2"},
            recipient="python", when=2),
        msg(uid(f"{cid}t"), "tool", {"content_type": "execution_output", "text": "4"}, name="python", when=3,
            aggregate_result={"status": "success", "code": "2 + 2", "final_expression_output": "4", "messages": []}),
        msg(uid(f"{cid}a"), "assistant", "It is 4.", when=4),
    )  # fmt: skip


def test_a_python_call_and_its_output_become_a_tool_call_and_its_answer():
    cid = uid("py")
    records = conversation_records(python_run(cid), "ns").records
    human, call, output, answer = records
    call_id = tool_call_id(cid, uid(f"{cid}c"))
    assert (call.role, call.content) == ("ai", "```python\n2 + 2\n```")  # the flat text stays readable
    assert call.message["type"] == "ai" and call.message["data"]["tool_calls"] == [
        {"name": "python", "args": {"code": "2 + 2"}, "id": call_id, "type": "tool_call"}
    ]
    assert call.metadata["tool_call_id"] == call_id and call.metadata["recipient"] == "python"
    assert (output.role, output.content) == ("tool", "4")
    assert output.message["type"] == "tool"
    assert (output.message["data"]["tool_call_id"], output.message["data"]["name"]) == (call_id, "python")
    assert output.metadata["tool_name"] == "python" and "tool_call_missing" not in output.metadata
    assert human.message is None and answer.message is None  # plain text stays plain
    assert conversation_records(python_run(cid), "ns").records == records  # stable ids


def test_json_calls_keep_their_arguments_and_every_answer_answers_the_open_call():
    cid = uid("web")
    search = json.dumps({"search_query": [{"q": "weather Lyon", "recency": 1}], "response_length": "short"})
    conversation = convo(
        cid,
        msg(uid("wu"), "user", "Weather in Lyon?", when=1),
        msg(uid("wc"), "assistant", {"content_type": "code", "language": "unknown", "text": search},
            recipient="web.run", channel="analysis", when=2),
        msg(uid("wt1"), "tool", {"content_type": "tether_browsing_display", "result": "Lyon: sunny", "summary": None},
            name="web.run", when=3),
        msg(uid("wt2"), "tool", {"content_type": "tether_quote", "url": "https://example.org/lyon",
            "domain": "example.org", "title": "Lyon", "text": "Sunny all week."}, name="web.run", when=4),
        msg(uid("wd"), "assistant", {"content_type": "code", "language": "json",
            "text": '{"prompt": "a sunny Lyon", "size": "1024x1024"}'}, recipient="dalle.text2im", when=5),
        msg(uid("wi"), "tool", {"content_type": "multimodal_text", "parts": [{"content_type": "image_asset_pointer",
            "asset_pointer": "file-service://file-Dalle1", "width": 1024, "height": 1024, "size_bytes": 1}]},
            name="dalle.text2im", when=6),
    )  # fmt: skip
    records = by_message_id(conversation_records(conversation, "ns").records)
    call = records[uid("wc")].message["data"]["tool_calls"][0]
    assert (call["name"], call["args"]) == ("web.run", json.loads(search))
    assert [records[uid(i)].message["data"]["tool_call_id"] for i in ("wt1", "wt2")] == [call["id"], call["id"]]
    dalle = records[uid("wd")].message["data"]["tool_calls"][0]
    assert dalle["args"] == {"prompt": "a sunny Lyon", "size": "1024x1024"}
    image = records[uid("wi")]
    assert image.content == "[image]" and image.message["data"]["tool_call_id"] == dalle["id"]
    assert image.message["data"]["content"][1] == {"type": "image", "url": "file-service://file-Dalle1"}


def test_a_tool_answer_with_no_call_above_it_gets_its_own_id_and_says_so():
    cid = uid("orphan")
    conversation = convo(
        cid,
        msg(uid("ou"), "user", "Find my notes", when=1),
        msg(uid("ot"), "tool", {"content_type": "text", "parts": ["3 files found"]}, name="file_search", when=2),
    )
    tool = conversation_records(conversation, "ns").records[1]
    assert tool.metadata["tool_call_missing"] is True
    assert tool.message["data"]["tool_call_id"] == tool_call_id(cid, uid("ot"))
    assert tool.message["data"]["name"] == "file_search"


def test_an_imported_tool_conversation_reads_back_as_langchain_tool_messages(history, tmp_path, settings):
    cid = uid("readback")
    import_chatgpt_export(history, export(tmp_path, python_run(cid)))
    messages = [to_message(record) for record in history.records()]
    call, output = messages[1], messages[2]
    assert isinstance(call, AIMessage) and call.tool_calls[0]["name"] == "python"
    assert call.tool_calls[0]["args"] == {"code": "2 + 2"}
    assert isinstance(output, ToolMessage) and output.tool_call_id == call.tool_calls[0]["id"]
    assert (output.name, output.content) == ("python", "4")
    session = PubSubChatMessageHistory("fidelity", session_id=cid, settings=settings)
    assert [type(m).__name__ for m in session.messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert import_chatgpt_export(history, export(tmp_path, python_run(cid))).messages_imported == 0


# --- 3. Code Interpreter images ---------------------------------------------------------------------------------


def plot_output(text, *image_urls):
    entries = [
        {"message_type": "image", "image_url": url, "sender": "server", "time": T0, "width": 800, "height": 600}
        for url in image_urls
    ]
    stream = {"message_type": "stream", "stream_name": "stdout", "sender": "server", "text": "done", "time": T0}
    result = {"status": "success", "run_id": "r1", "code": "plt.show()", "messages": [stream, *entries]}
    content = {"content_type": "execution_output", "text": text}
    return msg(uid(f"plot{len(image_urls)}{text}"), "tool", content, name="python", aggregate_result=result)


def test_code_interpreter_images_are_kept_as_image_parts():
    output = plot_output("\n<<ImageDisplayed>>", "file-service://file-Plot1", "file-service://file-Plot2")
    converted = message_to_text(output)
    assert converted.text == "[image]\n[image]"
    assert converted.metadata["asset_pointers"] == ["file-service://file-Plot1", "file-service://file-Plot2"]
    alone = message_to_text(plot_output("", "file-service://file-Plot3"))  # no text: kept, not "empty"
    assert (alone.skipped, alone.text) == (None, "[image]")


def test_an_imported_plot_is_a_tool_message_with_its_image(history, tmp_path):
    cid = uid("plot")
    code = {"content_type": "code", "language": "python", "text": "plt.plot([1, 2]); plt.show()"}
    conversation = convo(
        cid,
        msg(uid("pu"), "user", "Plot it", when=1),
        msg(uid("pc"), "assistant", code, recipient="python", when=2),
        plot_output("<<ImageDisplayed>>", "file-service://file-Plot9") | {"create_time": T0 + 3},
    )
    import_chatgpt_export(history, export(tmp_path, conversation))
    output = to_message(history.records()[2])
    assert isinstance(output, ToolMessage) and output.content[1] == {
        "type": "image",
        "url": "file-service://file-Plot9",
    }
    assert history.records()[2].metadata["asset_pointers"] == ["file-service://file-Plot9"]


# --- 4. branch copies ---------------------------------------------------------------------------------------------


def original_and_branch():
    """Branching in a new chat after the first answer: the new chat starts with copies of the first two messages."""
    first = [msg(uid("q1"), "user", "Plan a trip to Lyon", when=1), msg(uid("a1"), "assistant", "Day 1: ...", when=2)]
    original = convo(uid("orig"), *first, msg(uid("q2"), "user", "Add day 2", when=3),
                     msg(uid("a2"), "assistant", "Day 2: ...", when=4))  # fmt: skip
    branch = convo(uid("branch"), *first, msg(uid("q3"), "user", "Make it a food trip", when=10),
                   msg(uid("a3"), "assistant", "Day 1: bouchons", when=11), title="Branch · A title")  # fmt: skip
    return original, branch


@pytest.mark.parametrize("order", ["original first", "branch first"])
def test_messages_copied_into_a_branch_are_stored_once(history, tmp_path, order):
    original, branch = original_and_branch()
    conversations = (original, branch) if order == "original first" else (branch, original)
    report = import_chatgpt_export(history, export(tmp_path, *conversations))
    stored = [(r.session_id, r.metadata["message_id"]) for r in history.records()]
    assert report.messages_imported == 6 and report.skipped[COPY_REASON] == 2
    assert sorted(message_id for _, message_id in stored) == sorted(
        uid(i) for i in ("q1", "a1", "q2", "a2", "q3", "a3")
    )
    first, later = conversations[0]["id"], conversations[1]["id"]
    assert {s for s, m in stored if m in (uid("q1"), uid("a1"))} == {first}
    linked = by_message_id(history.records())[uid("q3") if later == uid("branch") else uid("q2")]
    assert linked.metadata["parent_id"] == uid("a1") and linked.metadata["parent_session_id"] == first
    again = import_chatgpt_export(history, export(tmp_path, *conversations))
    assert again.messages_imported == 0 and again.skipped[COPY_REASON] == 2


def test_the_log_decides_which_copy_is_kept_whatever_the_next_exports_order(history, tmp_path):
    original, branch = original_and_branch()
    import_chatgpt_export(history, export(tmp_path, branch))
    report = import_chatgpt_export(history, export(tmp_path, original, branch))
    assert report.messages_imported == 2 and report.skipped[COPY_REASON] == 2
    assert {r.session_id for r in history.records() if r.metadata["message_id"] == uid("q1")} == {uid("branch")}


def test_a_copy_whose_text_changed_or_an_id_that_is_no_uuid_is_not_a_copy(history, tmp_path):
    original, branch = original_and_branch()
    branch = copy.deepcopy(branch)  # its copies are the original's message objects
    branch["mapping"][uid("a1")]["message"]["content"]["parts"] = ["Day 1: edited"]
    hand_made = [convo(f"hand-{i}", msg("m1", "user", "hello", when=1)) for i in range(2)]
    report = import_chatgpt_export(history, export(tmp_path, original, branch, *hand_made))
    assert report.messages_imported == 4 + 3 + 2 and report.skipped[COPY_REASON] == 1


# --- 5. memory writes -----------------------------------------------------------------------------------------


def memory_chat():
    """The "Memory updated" tool: the assistant writes to ``bio``, the tool acknowledges."""
    return convo(
        uid("bio"),
        msg(uid("bu"), "user", "I am vegetarian, remember that.", when=1),
        msg(uid("bw"), "assistant", "User is vegetarian.", recipient="bio", channel="commentary", when=2),
        msg(uid("bt"), "tool", "Model set context updated.", name="bio", when=3),
        msg(uid("ba"), "assistant", "Noted!", when=4),
    )


def test_memory_writes_are_skipped_and_counted_unless_user_context_is_asked_for(history, tmp_path, settings):
    report = import_chatgpt_export(history, export(tmp_path, memory_chat()))
    assert [r.content for r in history.records()] == ["I am vegetarian, remember that.", "Noted!"]
    assert report.skipped == {"null message": 1, "bio": 2}
    kept = PubSubChatMessageHistory("with-context", settings=settings)
    assert import_chatgpt_export(kept, export(tmp_path, memory_chat()), include_user_context=True).skipped == {
        "null message": 1
    }
    write, answer = kept.records()[1:3]
    call = to_message(write).tool_calls[0]
    assert (call["name"], call["args"]) == ("bio", {"text": "User is vegetarian."})
    assert to_message(answer).tool_call_id == call["id"]
