"""Memory: request_llm, summaries, incremental embedding and questions, with fake chat models (pure logic)
and the real embedder and Chroma."""

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from my_llm import MyLLMError, PubSubChatMessageHistory, get_embeddings, request_llm, to_message
from my_llm.models import count_tokens


class RecordingChat(FakeListChatModel):
    """A fake chat model that keeps every prompt it was sent; ``n_ctx`` sets its context window."""

    seen: list = []
    n_ctx: int = 8192
    model_name: str = "gpt-4o-mini"

    def _call(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        return super()._call(messages, stop, run_manager, **kwargs)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        yield from super()._stream(messages, stop, run_manager, **kwargs)


@pytest.fixture(scope="module")
def embeddings():
    return get_embeddings("local")


def _chat(*responses, n_ctx=8192):
    return RecordingChat(responses=list(responses), seen=[], n_ctx=n_ctx)


def test_request_llm_sends_the_history_and_logs_both_turns_with_cost(settings):
    memory = PubSubChatMessageHistory("requests", settings=settings)
    chat = _chat("first answer", "second answer")
    assert request_llm("first question", chat, memory) == "first answer"
    assert request_llm("second question", chat, memory) == "second answer"
    assert [m.content for m in chat.seen[1]] == ["first question", "first answer", "second question"]
    records = memory.records()
    assert [(r.role, r.content) for r in records] == [
        ("human", "first question"),
        ("ai", "first answer"),
        ("human", "second question"),
        ("ai", "second answer"),
    ]
    ai = records[-1]
    assert ai.model == "gpt-4o-mini"
    # The fake reports no usage: counted offline (cl100k), priced from the table.
    assert ai.usage["input_tokens"] == 3 * (2 + 3) + 3 and ai.usage["output_tokens"] == 2
    assert ai.usage["cost_usd"] == pytest.approx((18 * 0.15 + 2 * 0.6) / 1e6)


def test_request_llm_trims_old_history_to_the_context_window(settings):
    memory = PubSubChatMessageHistory("trimmed", settings=settings)
    for i in range(200):
        memory.add_messages([HumanMessage(f"old question {i} " + "word " * 40), AIMessage(f"old answer {i}")])
    chat = _chat("ok", n_ctx=1024)
    request_llm("new question", chat, memory)
    sent = chat.seen[0]
    assert sent[-1].content == "new question" and isinstance(sent[0], HumanMessage)
    assert 1 < len(sent) < 40 and sent[-2].content == "old answer 199"


def test_a_summary_is_logged_as_a_summary_record(settings):
    memory = PubSubChatMessageHistory("summaries", settings=settings, chat=_chat("They talked about cats."))
    memory.add_user_message("I like cats")
    memory.add_ai_message("Cats are great")
    memory.add_user_message("Tell me more")
    assert memory.apply_summarise_to_memory(n=2) == "They talked about cats."
    summary = memory.records()[-1]
    assert summary.role == "summary" and summary.content == "They talked about cats."
    assert summary.metadata["messages"] == 2 and summary.metadata["calls"] == 1
    assert summary.metadata["first_id"] == memory.records()[1].id
    assert summary.model == "gpt-4o-mini" and summary.usage["output_tokens"] == count_tokens(summary.content)
    prompt = memory.chat.seen[0][1].content
    assert "assistant: Cats are great" in prompt and "I like cats" not in prompt
    assert isinstance(to_message(summary), SystemMessage)  # context a model can be given explicitly...
    assert [m.content for m in memory.messages] == ["I like cats", "Cats are great", "Tell me more"]  # ...not a turn


def test_a_long_conversation_is_summarised_by_map_reduce(settings):
    chat = _chat("part summary", n_ctx=1000)  # 300 tokens a part after the reserve
    memory = PubSubChatMessageHistory("long", settings=settings, chat=chat)
    for i in range(60):
        memory.add_user_message(f"message number {i} about the weather in Copenhagen and the north pole")
    memory.apply_summarise_to_memory()
    summary = memory.records()[-1]
    maps = [p for p in chat.seen if "Summarise" in p[0].content]
    reduces = [p for p in chat.seen if "Combine" in p[0].content]
    assert len(maps) >= 3 and len(reduces) == 1
    assert summary.metadata["calls"] == len(chat.seen)
    assert summary.usage["input_tokens"] > 60 * 15  # every call's tokens are added up
    assert "message number 59" in "\n".join(p[1].content for p in maps)


def test_nothing_to_summarise_is_a_clear_error(settings):
    memory = PubSubChatMessageHistory("empty", settings=settings, chat=_chat("x"))
    with pytest.raises(MyLLMError, match="no messages yet"):
        memory.apply_summarise_to_memory()


@pytest.mark.slow
def test_saving_the_vectorstore_is_incremental(settings, embeddings):
    memory = PubSubChatMessageHistory("vectors", settings=settings, embeddings=embeddings)
    memory.add_user_message("My favourite animal is the axolotl")
    memory.add_ai_message("Noted: the axolotl")
    assert memory.save_vectorstore_memory() == 2
    assert memory.save_vectorstore_memory() == 0
    memory.add_user_message("And I live in Copenhagen")
    assert memory.save_vectorstore_memory() == 1
    assert (settings.message_history / "vectors" / "chroma").is_dir()
    memory.clear()
    memory.add_user_message("fresh start")
    assert memory.save_vectorstore_memory() == 1  # the archived records left the store


@pytest.mark.slow
def test_question_memory_answers_from_retrieved_messages_and_logs_the_turn(settings, embeddings):
    chat = _chat("You said the axolotl.")
    memory = PubSubChatMessageHistory("questions", settings=settings, chat=chat, embeddings=embeddings)
    memory.add_user_message("Name a random animal")
    memory.add_ai_message("ANIMAL: axolotl")
    for i in range(20):
        memory.add_user_message(f"Unrelated note {i} about train timetables")
    result = memory.question_memory("What random animal have you said?", k=3)
    assert result.answer == "You said the axolotl." and str(result) == result["result"] == result.answer
    assert result["source_documents"] == result.messages
    assert "ANIMAL: axolotl" in [r.content for r in result.messages]
    prompt = chat.seen[0][1].content
    assert "assistant: ANIMAL: axolotl" in prompt and prompt.count("\n[") == 3  # 3 excerpts, with times
    asked, answered = memory.records()[-2:]
    assert asked.content == "What random animal have you said?" and asked.metadata["task"] == "question_memory"
    assert answered.metadata["sources"] == [r.id for r in result.messages]
    again = memory.question_memory("What random animal have you said?", k=3)
    assert all(r.metadata.get("task") != "question_memory" for r in again.messages)
