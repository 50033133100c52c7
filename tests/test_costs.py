import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from my_llm.models import cost_usd, count_message_tokens, count_tokens, price_key, usage_for, with_counted_usage


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("openai:gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("anthropic:claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("local:SmolLM2-135M-Instruct", "local (in-process)"),
        ("openai:local", "local"),
        (None, None),
    ],
)
def test_model_names_map_to_price_keys(model, key):
    assert price_key(model) == key


def test_cost_is_priced_per_million_tokens():
    assert cost_usd("openai:gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert cost_usd("gpt-4o", 2000, 500) == pytest.approx((2000 * 2.5 + 500 * 10) / 1e6)
    assert cost_usd("local:SmolLM2-135M-Instruct", 500, 500) == 0.0


def test_an_unknown_price_or_count_is_null_not_zero():
    assert cost_usd("openai:local", 10, 10) is None  # a server's model called "local" may well be paid for
    assert cost_usd("some-new-model", 10, 10) is None
    assert cost_usd(None, 10, 10) is None
    assert cost_usd("gpt-4o-mini", None, 10) is None


def test_tokens_are_counted_offline_with_cl100k():
    assert count_tokens("hello world") == 2
    assert count_tokens("") == 0
    assert count_tokens("<|endoftext|>") > 1  # special tokens in user text are plain text, not an error
    assert count_message_tokens([SystemMessage("hello world"), HumanMessage("hello world")]) == 2 + 3 + 2 + 3 + 3


def test_usage_comes_from_usage_metadata_with_its_cost():
    reply = AIMessage("x", usage_metadata={"input_tokens": 100, "output_tokens": 20, "total_tokens": 120})
    assert usage_for(reply, "gpt-4o-mini") == {
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": pytest.approx((100 * 0.15 + 20 * 0.6) / 1e6),
    }
    assert usage_for(reply, "unknown-model")["cost_usd"] is None
    assert usage_for(AIMessage("x"), "gpt-4o-mini") is None


def test_missing_usage_is_counted_and_reported_usage_is_kept():
    prompt = [HumanMessage("hello world")]
    counted = with_counted_usage(AIMessage("hello world"), prompt)
    assert counted.usage_metadata == {"input_tokens": 8, "output_tokens": 2, "total_tokens": 10}
    reported = AIMessage("x", usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
    assert with_counted_usage(reported, prompt) is reported
