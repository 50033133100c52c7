"""ChatGPT data export import: the face of ``my_llm.importers.chatgpt``.

:mod:`.files` finds an export's files and streams their conversations; :mod:`.parse` turns one
conversation into records (pure), with each message's text from :mod:`.content` (citations resolved by
:mod:`.citations`) and tool calls paired by :mod:`.tools`; :mod:`.importer` appends them through a
:class:`my_llm.history.ChatHistory`, dropping branch copies (:mod:`.copies`).
"""

from my_llm.importers.chatgpt.content import message_to_text
from my_llm.importers.chatgpt.files import ExportError, ExportFile, export_files, iter_conversations
from my_llm.importers.chatgpt.importer import import_chatgpt_export
from my_llm.importers.chatgpt.parse import (
    ConversationError,
    active_branch,
    branches,
    conversation_records,
    record_id,
)
from my_llm.importers.chatgpt.report import ImportReport

__all__ = [
    "ConversationError",
    "ExportError",
    "ExportFile",
    "ImportReport",
    "active_branch",
    "branches",
    "conversation_records",
    "export_files",
    "import_chatgpt_export",
    "iter_conversations",
    "message_to_text",
    "record_id",
]
