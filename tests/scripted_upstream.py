"""A scripted OpenAI-compatible upstream for tests whose answers must be known: a real HTTP server in this
process (``ThreadingHTTPServer`` on a free port) serving ``POST /v1/chat/completions`` as JSON or as
``stream: true`` chunks (with a usage chunk when ``stream_options.include_usage``) and ``GET /v1/models``.

    with ScriptedUpstream([{"match": "squares", "replies": [SQUARE]}]) as upstream:
        upstream.url        # http://127.0.0.1:PORT/v1
        upstream.received   # every request body, in order

Rules: the first whose ``match`` is in the last user message wins; its ``replies`` are given in turn, the last
one repeating. No rule matches: ``"I cannot help."``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = ("gpt-4o-mini", "scripted-coder")


class ScriptedUpstream:
    """The server (see the module's docstring); ``reset()`` forgets what was received and served."""

    def __init__(self, script: list[dict], chunk_chars: int = 12) -> None:
        self.script, self.chunk_chars = script, chunk_chars
        self.received: list[dict] = []
        self.served: dict[str, int] = {}
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedUpstream:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.served.clear()

    def reply_to(self, body: dict) -> str:
        """The scripted reply to a request body (and the request is remembered)."""
        last = body["messages"][-1]["content"]
        rule = next((r for r in self.script if r["match"] in last), None)
        with self.lock:
            self.received.append(body)
            n = self.served.get(rule["match"], 0) if rule else 0
            if rule:
                self.served[rule["match"]] = n + 1
        return rule["replies"][min(n, len(rule["replies"]) - 1)] if rule else "I cannot help."

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                models = {"object": "list", "data": [{"id": name, "object": "model"} for name in MODELS]}
                self._send(200, json.dumps(models).encode(), "application/json")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                reply = upstream.reply_to(body)
                self._answer(body, reply)

            def _answer(self, body: dict, reply: str) -> None:
                usage = {"prompt_tokens": len(json.dumps(body["messages"]).split()),
                         "completion_tokens": len(reply.split())}  # fmt: skip
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                head = {"id": "chatcmpl-1", "created": int(time.time()), "model": "gpt-4o-mini"}
                if not body.get("stream"):
                    choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                    answer = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
                    return self._send(200, json.dumps(answer).encode(), "application/json")
                size = upstream.chunk_chars
                pieces = [reply[i : i + size] for i in range(0, len(reply), size)]
                chunks = [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
                chunks += [{"index": 0, "delta": {"content": piece}, "finish_reason": None} for piece in pieces]
                chunks += [{"index": 0, "delta": {}, "finish_reason": "stop"}]
                events = [{**head, "object": "chat.completion.chunk", "choices": [choice]} for choice in chunks]
                if (body.get("stream_options") or {}).get("include_usage"):
                    events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
                data = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
                self._send(200, data.encode(), "text/event-stream")

        return Handler
