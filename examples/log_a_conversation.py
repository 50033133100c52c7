"""Chat with a model while every prompt and reply is logged by my_llm.

The history's messages are sent with each question, so the model sees the conversation so far.
Runs offline with the bundled SmolLM2-135M; set MY_LLM_MODEL (e.g. openai:gpt-4o-mini) for a real
model and GOOGLE_CLOUD_PROJECT or PUBSUB_EMULATOR_HOST to publish to Pub/Sub as well.

    python examples/log_a_conversation.py
"""

from langchain_core.messages import HumanMessage, SystemMessage

from my_llm import PubSubChatMessageHistory, get_chat_model

history = PubSubChatMessageHistory("examples")
chat = get_chat_model()
for text in ("Name a random animal.", "Which animal did you just name?"):
    question = HumanMessage(text)
    reply = chat.invoke([SystemMessage("You are a concise assistant."), *history.messages, question])
    history.add_messages([question, reply])
    print(f"> {text}\n{reply.content}\n")
history.close()
print(f"Logged {len(history.messages)} messages to {history.path}")
