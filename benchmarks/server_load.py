"""Benchmark: my-llm-server's logging proxy, its added latency and its throughput.

    .venv/bin/python benchmarks/server_load.py [--requests 400] [--clients 50] [--duration 60]

Starts a stub OpenAI-compatible upstream that answers instantly (uvicorn, a raw ASGI app in a child process,
to isolate our overhead) and a real `my-llm-server serve` in front of it (SQLite users database, logs under
a temporary MESSAGE_HISTORY, Pub/Sub off), each on a free port. Then:

- latency: --requests non-streaming chat completions one after another, alternately straight to the stub and
  through the proxy (one keep-alive client each); p50 and p99 of each, and the proxy's added p50 and p99 in ms
  (target: <= 5 ms p50 added);
- load: --clients concurrent clients (asyncio + httpx) for --duration seconds through the proxy: requests/s,
  errors (target 0), and the records on disk afterwards: human and AI records == requests made (0 lost).

Prints a table, then one line of JSON: {"requests", "direct_p50_ms", "direct_p99_ms", "proxy_p50_ms",
"proxy_p99_ms", "added_p50_ms", "added_p99_ms", "clients", "duration_s", "load_requests", "load_rps",
"load_errors", "records_human", "records_ai", "lost"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from my_llm.testing import ServerProcess, free_port

REPLY = {
    "id": "chatcmpl-stub",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}]}


async def stub_app(scope, receive, send) -> None:
    """An OpenAI-compatible upstream that answers every request at once with :data:`REPLY`."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    data = json.dumps(REPLY).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def latency(stub_url: str, proxy_url: str, key: str, requests: int) -> dict[str, float]:
    """Alternate direct and proxied requests; p50/p99 of each in ms."""
    direct, proxied = [], []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=stub_url) as straight, httpx.Client(base_url=proxy_url, headers=headers) as proxy:
        for client in (straight, proxy):  # warm up connections and code paths
            for _ in range(20):
                client.post("/v1/chat/completions", json=BODY).raise_for_status()
        for _ in range(requests):
            for client, times in ((straight, direct), (proxy, proxied)):
                start = time.perf_counter()
                client.post("/v1/chat/completions", json=BODY).raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
    result = {
        "direct_p50_ms": statistics.median(direct),
        "direct_p99_ms": percentile(direct, 0.99),
        "proxy_p50_ms": statistics.median(proxied),
        "proxy_p99_ms": percentile(proxied, 0.99),
    }
    result["added_p50_ms"] = result["proxy_p50_ms"] - result["direct_p50_ms"]
    result["added_p99_ms"] = result["proxy_p99_ms"] - result["direct_p99_ms"]
    return {name: round(value, 2) for name, value in result.items()}


async def load(proxy_url: str, key: str, clients: int, duration_s: float) -> tuple[int, int]:
    """``clients`` loops posting through the proxy for ``duration_s``; returns (requests made, errors)."""
    deadline, made, errors = time.perf_counter() + duration_s, 0, 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=proxy_url, headers=headers, limits=limits, timeout=30) as client:

        async def one_client(number: int) -> None:
            nonlocal made, errors
            sent = 0
            while time.perf_counter() < deadline:
                body = {**BODY, "user": f"load-{number}-{sent}"}
                try:
                    response = await client.post("/v1/chat/completions", json=body)
                    errors += response.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                made, sent = made + 1, sent + 1

        await asyncio.gather(*(one_client(number) for number in range(clients)))
    return made, errors


def count_records(log: Path) -> tuple[int, int]:
    """(human, ai) records in a log."""
    roles = [json.loads(line)["role"] for line in log.read_text().splitlines() if line.strip()]
    return roles.count("human"), roles.count("ai")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        stub_port, proxy_port = free_port(), free_port()
        stub_argv = [sys.executable, "-m", "uvicorn", "server_load:stub_app", "--port", str(stub_port),
                     "--app-dir", str(Path(__file__).parent), "--log-level", "warning", "--no-access-log"]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST")}
        env.update(MESSAGE_HISTORY=str(tmp / "mh"), CHROMA_DB_PATH=str(tmp / "chroma"), CLOUDSDK_CONFIG=str(tmp / "g"),
                   MY_LLM_DATABASE_URL=f"sqlite:///{tmp / 'users.sqlite3'}", MY_LLM_PUBLISH="off",
                   OPENAI_BASE_URL=f"http://127.0.0.1:{stub_port}/v1", OPENAI_API_KEY="sk-stub",
                   MY_LLM_RATE_LIMIT="1000000/minute")  # fmt: skip
        cli = [sys.executable, "-m", "server.cli"]
        subprocess.run([*cli, "users", "add", "bench"], env=env, check=True, capture_output=True)
        key = subprocess.run([*cli, "users", "key", "bench"], env=env, check=True, capture_output=True, text=True)
        key = key.stdout.strip().splitlines()[-1]
        proxy_argv = [*cli, "serve", "--port", str(proxy_port)]
        with (
            ServerProcess(stub_argv, stub_port, tmp / "stub.log", name="The stub upstream", env=env) as stub,
            ServerProcess(proxy_argv, proxy_port, tmp / "proxy.log", name="my-llm-server", ready_path="/docs", env=env),
        ):
            figures = {
                "requests": args.requests,
                **latency(stub.url, f"http://127.0.0.1:{proxy_port}", key, args.requests),
            }
            start = time.perf_counter()
            made, errors = asyncio.run(load(f"http://127.0.0.1:{proxy_port}", key, args.clients, args.duration))
            elapsed = time.perf_counter() - start
        human, ai = count_records(tmp / "mh" / "user-bench" / "messages.jsonl")
        warm = 20 + args.requests  # proxied requests of the latency part (warm-up included)
        figures.update(clients=args.clients, duration_s=round(elapsed, 1), load_requests=made,
                       load_rps=round(made / elapsed, 1), load_errors=errors, records_human=human - warm,
                       records_ai=ai - warm, lost=made - min(human - warm, ai - warm))  # fmt: skip
    table = Table(title="my-llm-server proxy (stub upstream)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, str(value))
    Console().print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
