"""A history per session: what a model is sent as the conversation is that session's turns only."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from my_llm import ChatHistory, PubSubChatMessageHistory, request_llm


class RecordingChat(FakeListChatModel):
    seen: list = []

    def _call(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append([m.content for m in messages])
        return super()._call(messages, stop, run_manager, **kwargs)


def test_two_sessions_through_runnable_with_message_history_never_see_each_other(settings):
    chat = RecordingChat(responses=["A1", "B1", "A2", "B2"], seen=[])
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
    chain = RunnableWithMessageHistory(
        prompt | chat,
        lambda session_id: PubSubChatMessageHistory("shared", session_id=session_id, settings=settings),
        input_messages_key="question",
        history_messages_key="history",
    )
    for session, question in [("a", "qa1"), ("b", "qb1"), ("a", "qa2"), ("b", "qb2")]:
        chain.invoke({"question": question}, config={"configurable": {"session_id": session}})
    assert chat.seen == [["qa1"], ["qb1"], ["qa1", "A1", "qa2"], ["qb1", "B1", "qb2"]]
    everything = ChatHistory("shared", settings=settings).records()
    assert len(everything) == 8 and {r.session_id for r in everything} == {"a", "b"}


def test_a_new_session_in_a_namespace_full_of_other_records_starts_empty(settings):
    old = PubSubChatMessageHistory("busy", session_id="imported", source="chatgpt_export", settings=settings)
    for i in range(50):
        old.add_user_message(f"imported question {i}")
        old.add_ai_message(f"imported answer {i}")
    fresh = PubSubChatMessageHistory("busy", settings=settings)
    assert fresh.messages == []
    chat = RecordingChat(responses=["hello"], seen=[])
    request_llm("hi", chat, fresh)
    assert chat.seen == [["hi"]]
    assert [m.content for m in fresh.messages] == ["hi", "hello"]
    assert len(old.messages) == 100  # the other session is whole


def test_summaries_memory_questions_and_tombstones_are_not_turns(settings):
    history = PubSubChatMessageHistory("kinds", session_id="s", settings=settings)
    history.add_user_message("q")
    history.add_records(
        [
            history.new_record("summary", "a summary", metadata={"task": "summary"}),
            history.new_record("human", "asked memory", metadata={"task": "question_memory"}),
            history.new_record("ai", "memory said", metadata={"task": "question_memory"}),
        ]
    )
    history.add_ai_message("a")
    assert [m.content for m in history.messages] == ["q", "a"]
    assert len(history.records()) == 5


def test_a_tool_result_without_its_call_reaches_the_model_as_a_note_not_an_orphan(settings):
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    history = PubSubChatMessageHistory("orphans", session_id="s", settings=settings)
    call = {"name": "add", "args": {"a": 1}, "id": "c1", "type": "tool_call"}
    history.add_messages(
        [
            HumanMessage("run it"),
            AIMessage("SQL: SELECT 1"),
            ToolMessage("1 row", tool_call_id="trigger-x", name="sql"),  # a trigger's outcome: no call before it
            HumanMessage("and add"),
            AIMessage("", tool_calls=[call]),
            ToolMessage("2", tool_call_id="c1", name="add"),
        ]
    )
    chat = RecordingChat(responses=["ok"], seen=[])
    request_llm("next", chat, history)
    sent = chat.seen[0]
    assert sent[2] == "[sql result] 1 row" and sent[5] == "2"  # the answered call stays a tool result
