"""The memory page, ``/memory``: a question over every namespace of the signed-in user (``user-<name>`` and its
``user-<name>.key-<label>`` ones), answered by :class:`server.memory_answers.MemoryAnswers` (the same service,
and the same instance, as ``POST /v1/memory/ask``); the answer is shown with the records it cites, each linking
to its conversation (``/conversation?ns=&id=``). Asking logs the question and answer as a new conversation in
the user's own namespace, so it is a CSRF-checked ``POST``. A user only ever searches their own namespaces."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from my_llm import ModelCallError, MyLLMError
from server.deps import State
from server.routes.memory import memory_answers
from server.web.auth import CsrfChecked, PageUser
from server.web.templating import render

router = APIRouter(include_in_schema=False)
MAX_QUESTION_CHARS = 4000
RECORDS = 8  # records retrieved per question, as the API's default


@router.get("/memory")
async def memory_page(request: Request, user: PageUser) -> Response:
    """The question box."""
    return render(request, "memory.html", user, question="", reply=None, error=None)


@router.post("/memory", dependencies=[CsrfChecked])
async def ask(request: Request, user: PageUser, state: State) -> Response:
    """Answer the form's ``question`` from the user's memory: the answer and its cited records (oldest first).
    An empty or too long question is a 400 page with the form; a model that fails is 502, one that cannot be
    loaded (or a store that cannot be read) 503, each with the reason and the question kept in the box."""
    question = (await request.form()).get("question")
    question = question.strip() if isinstance(question, str) else ""
    if not question or len(question) > MAX_QUESTION_CHARS:
        error = f"Write a question of 1 to {MAX_QUESTION_CHARS} characters."
        return render(request, "memory.html", user, 400, question=question[:MAX_QUESTION_CHARS], reply=None,
                      error=error)  # fmt: skip
    answers = await memory_answers(request, state)
    status, reply, error = 200, None, None
    try:
        reply = await anyio.to_thread.run_sync(lambda: answers.ask(user.namespace, user.name, question, RECORDS))
    except ModelCallError as failure:
        status, error = 502, f"The model did not answer: {failure}"
    except MyLLMError as failure:
        status, error = 503, f"The server cannot answer now: {failure}"
    return render(request, "memory.html", user, status, question=question, reply=reply, error=error)
