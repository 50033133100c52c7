"""Chat with a model through LangChain while every prompt and reply is logged by my_llm.

Runs offline with the bundled SmolLM2-135M; set MY_LLM_MODEL (e.g. openai:gpt-4o-mini) for a real
model and GOOGLE_CLOUD_PROJECT or PUBSUB_EMULATOR_HOST to publish to Pub/Sub as well.

    python examples/log_a_conversation.py
"""

from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from my_llm import PubSubChatMessageHistory, get_chat_model

history = PubSubChatMessageHistory("examples")
prompt = ChatPromptTemplate.from_messages(
    [("system", "You are a concise assistant."), MessagesPlaceholder("history"), ("human", "{question}")]
)
chain = RunnableWithMessageHistory(
    prompt | get_chat_model(),
    lambda session_id: history,
    input_messages_key="question",
    history_messages_key="history",
)
config = {"configurable": {"session_id": history.session_id}}
for question in ("Name a random animal.", "Which animal did you just name?"):
    reply = chain.invoke({"question": question}, config=config)
    print(f"> {question}\n{reply.content}\n")
history.close()
print(f"Logged {len(history.messages)} messages to {history.path}")
