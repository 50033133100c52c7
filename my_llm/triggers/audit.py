"""The audit record of a match: a ``tool`` record in the triggering record's session.

Every firing, refusal and error becomes one such record, so nothing a trigger did is invisible in the log,
in Pub/Sub or in BigQuery, and the conversation (and the next ``request_llm``) sees the result::

    {"role": "tool", "session_id": <the triggering record's>, "content": "3 rows in 1.2 ms from ...",
     "metadata": {"tool_call_id": "trigger-<record id>-<trigger>-<n>",
                  "trigger": {"name": "shop", "kind": "sql", "record_id": "<triggering record id>", "match": 0,
                              "decision": "fired|refused|error|unknown", "why": "...", "details": {...}}},
     "message": {"type": "tool", "data": {"content": ..., "tool_call_id": ..., "name": "shop", "status": ...}}}

Query ``metadata.trigger`` in BigQuery (``JSON_VALUE(metadata, '$.trigger.decision')``) to audit.
"""

from __future__ import annotations

from langchain_core.messages import ToolMessage

from my_llm.history import message_data
from my_llm.record import Record
from my_llm.triggers.base import FIRED, Match, Outcome, Trigger


def tool_record(match: Match, trigger: Trigger, outcome: Outcome) -> Record:
    """The audit/tool record of ``outcome`` (a new record id; stored in the ledger before it is logged).

    The content is what the model sees: the result when the trigger fired, else ``<kind> trigger
    '<name>' <decision>: <why>``.
    """
    if outcome.decision == FIRED:
        content = outcome.content
    else:
        content = f"{trigger.kind} trigger {trigger.name!r} {outcome.decision}: {outcome.why}"
    status = "success" if outcome.decision == FIRED else "error"
    message = ToolMessage(content=content, tool_call_id=match.tool_call_id, name=trigger.name, status=status)
    audit = {
        "name": trigger.name,
        "kind": trigger.kind,
        "record_id": match.record.id,
        "match": match.index,
        "decision": outcome.decision,
        "why": outcome.why,
        "details": outcome.details,
    }
    return Record.new(
        match.record.namespace,
        match.record.session_id,
        "tool",
        content,
        source=match.record.source,
        metadata={"tool_call_id": match.tool_call_id, "trigger": audit},
        message=message_data(message),
    )
