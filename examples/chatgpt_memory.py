"""The seed README's second script: load a ChatGPT export into memory, summarise it, ask about it.

    python examples/chatgpt_memory.py [PATH]

PATH is your export (`conversations.json`, a folder or the downloaded `.zip`; see chatgpt_export/README.md);
by default the small sample in chatgpt_export/ is used. Offline with the bundled models by default.
"""

import sys
from pathlib import Path

from my_llm.langchain_class import PubSubChatMessageHistory

default = Path(__file__).resolve().parent.parent / "chatgpt_export" / "sample_conversations.json"
export = Path(sys.argv[1]) if len(sys.argv) > 1 else default

memory = PubSubChatMessageHistory("chatgpt-example")
memory.clear()  # archives what an earlier run imported; nothing is deleted

report = memory.load_chatgpt_export(export)
print(
    f"Imported {report.messages_imported} messages from {report.conversations} conversations; skipped {report.skipped}"
)

summary = memory.apply_summarise_to_memory(n=10)
print("Summary of the last 10 messages:")
print(summary)

memory.save_vectorstore_memory()
answer = memory.question_memory("What did we talk about?")
print("## Answer:", answer)
print("== Messages used:")
for record in answer.messages:
    print(f" - [{record.created_at[:19]}] {record.metadata.get('title') or ''} {record.role}: {record.content[:80]!r}")
memory.close()
