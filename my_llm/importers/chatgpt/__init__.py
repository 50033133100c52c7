"""ChatGPT data export import: the face of ``my_llm.importers.chatgpt``.

:mod:`.files` finds an export's files and streams their conversations; :mod:`.parse` turns one
conversation into records (pure); :mod:`.importer` appends them through a :class:`my_llm.history.ChatHistory`.
"""

from my_llm.importers.chatgpt.files import ExportError, ExportFile, export_files, iter_conversations
from my_llm.importers.chatgpt.importer import import_chatgpt_export
from my_llm.importers.chatgpt.report import ImportReport
from my_llm.importers.chatgpt.parse import (
    ConversationError,
    active_branch,
    branches,
    conversation_records,
    message_to_text,
    record_id,
)

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
