"""A scripted OpenAI-compatible upstream for the eval tests and benchmark: a real HTTP server in a child
process (``python tests/test_eval_upstream.py PORT SCRIPT.json``), started with :class:`ServerProcess`.

It answers ``POST /v1/chat/completions`` with the reply of the first script rule whose ``match`` is in the
last user message (else ``default``), with usage (``prompt_tokens`` = words in, ``completion_tokens`` =
words out). A rule may add ``"delay_s"``; ``"rate_limit_once": true`` answers 429 the first time that rule
matches. ``GET /stats`` gives ``{"requests": N}`` (chat completions only); ``GET /v1/models`` is the readiness
probe. No test lives here: this module is imported by ``test_eval*.py`` and ``benchmarks/eval.py``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from my_llm.testing import ServerProcess, free_port


@contextmanager
def scripted_upstream(folder: Path, rules: list[dict], default: str = "OK"):
    """Start the upstream with ``rules``; yields its OpenAI base URL ``http://127.0.0.1:PORT/v1``."""
    script = folder / "upstream-script.json"
    script.write_text(json.dumps({"rules": rules, "default": default}))
    port = free_port()
    argv = [sys.executable, __file__, str(port), str(script)]
    with ServerProcess(argv, port, folder / "upstream.log", name="The scripted upstream", ready_path="/v1/models"):
        yield f"http://127.0.0.1:{port}/v1"


def upstream_requests(base_url: str) -> int:
    """How many chat completions the upstream at ``base_url`` has answered (429s included)."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(base_url.removesuffix("/v1") + "/stats", timeout=5) as response:
        return json.loads(response.read())["requests"]


def _serve(port: int, script_path: str) -> None:
    script = json.loads(Path(script_path).read_text())
    lock, state = threading.Lock(), {"requests": 0, "limited": set()}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/stats":
                return self._send(200, {"requests": state["requests"]})
            return self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            text = body["messages"][-1]["content"]
            text = text if isinstance(text, str) else json.dumps(text)
            rule = next((r for r in script["rules"] if r["match"] in text), None)
            with lock:
                state["requests"] += 1
                limited = bool(rule and rule.get("rate_limit_once") and rule["match"] not in state["limited"])
                if limited:
                    state["limited"].add(rule["match"])
            if limited:
                error = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
                return self._send(429, {"error": error})
            time.sleep((rule or {}).get("delay_s", 0))
            reply = rule["reply"] if rule else script["default"]
            usage = {"prompt_tokens": len(text.split()), "completion_tokens": len(reply.split())}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
            answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time())}
            self._send(200, {**answer, "model": body.get("model", "scripted"), "choices": [choice], "usage": usage})

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2])
