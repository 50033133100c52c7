"""The seed README's first script: talk, summarise, embed, then ask the memory a question.

Offline by default (the bundled SmolLM2-135M and all-MiniLM-L6-v2). Set MY_LLM_MODEL=openai:gpt-4o-mini
(and OPENAI_API_KEY), or OPENAI_BASE_URL for an OpenAI-compatible server such as
``python -m llama_cpp.server``, for a real model.

    python examples/memory_workflow.py
"""

import my_llm.standards as my_llm
from my_llm import get_chat_model
from my_llm.langchain_class import PubSubChatMessageHistory

chat = get_chat_model()

# Logs every message to disk, and to the Pub/Sub topic "my-llm-debugger" when a project is configured.
memory = PubSubChatMessageHistory("debugger")
memory.clear()  # archives earlier runs; nothing is deleted

# The animal is random, to show it is found by the memory search later.
prompt = (
    "How many ways are there to travel between the north pole and Copenhagen directly? "
    "Also output a random animal with prefix: ANIMAL:"
)
answer = my_llm.request_llm(prompt, chat, memory)
print(answer)

prompt2 = f"""
Repeat the answer below but in Danish, or if you don't know just say 'munch munch' a lot:
{answer}
"""
answer2 = my_llm.request_llm(prompt2, chat, memory)
print(answer2)

summary = memory.apply_summarise_to_memory()
print("Summary")
print(summary)

memory.save_vectorstore_memory()

answer3 = memory.question_memory("What random animal have you said?")
print("## Answer:", answer3)
print("== Messages used:")
for record in answer3.messages:
    print(f" - [{record.created_at[:19]}] {record.role}: {record.content[:80]!r}")

costs = [r.usage["cost_usd"] for r in memory.records() if r.usage and r.usage["cost_usd"] is not None]
print(f"Logged {len(memory.records())} records to {memory.path}; known cost: {sum(costs):.6f} USD")
memory.close()
