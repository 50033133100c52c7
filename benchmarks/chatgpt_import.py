"""Benchmark: importing a large ChatGPT export to disk (Pub/Sub off).

    .venv/bin/python benchmarks/chatgpt_import.py [--mb 200] [--seed 7] [--keep PATH]

Writes a synthetic export of about --mb megabytes to a temp file (streamed: one conversation in memory at
a time): realistic trees (a client-created root with a null message, a hidden system message, regenerated
answers and edited prompts as side branches, 5% of conversations branched in a new chat from the one
before) with mixed content types (text, multimodal_text with images, calls to python + execution_output
with plots now and then, memory writes to bio, thoughts, reasoning_recap, tether_browsing_display,
tether_quote, answers with citation markers) and the per-message metadata real exports carry. Then
imports it (active branches, the defaults) in a child process into a temp MESSAGE_HISTORY with no Google
Cloud project, and prints a table, then one line of JSON:

    {"bytes": ..., "messages": ..., "messages_per_s": ..., "peak_rss_mb": ..., ...}

- messages: records appended to the log; messages_per_s = messages / import wall time (in the child,
  from the call of import_chatgpt_export to its return, reading existing ids and fsyncs included).
- peak_rss_mb: the child's peak resident set (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), i.e. the
  interpreter + libraries + the import. The child's RSS just before importing is reported too.
- parse_only_mb_per_s: the same file through ``ijson.items`` alone (what the parser costs).
- with --cpu-time: import_cpu_s and messages_per_cpu_s, the child's CPU time (user + system) over the same
  span: steadier than wall time on a machine shared with other work.
Targets (issue 5): >= 5,000 messages/s and peak RSS <= 400 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "the model answers with a short plan then code and tests for each step while the user asks about "
    "memory retrieval embeddings latency python pandas docker kubernetes sql index cache budget travel "
    "recipe paris lyon history physics proof lemma theorem function class error stack trace deploy"
).split()
MODELS = ("gpt-4o", "gpt-4o-mini", "o3", "gpt-4-1")


def _uuid(rng: random.Random) -> str:
    hexa = f"{rng.getrandbits(128):032x}"
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"


class _Text:
    """Cheap varied prose: slices of one long random text."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.corpus = " ".join(rng.choice(WORDS) for _ in range(200_000))

    def __call__(self, low: int, high: int) -> str:
        size = int(min(high, max(low, self.rng.lognormvariate(6.3, 0.9))))
        start = self.rng.randrange(0, len(self.corpus) - size)
        return self.corpus[start : start + size]


def _message(rng, node_id, role, content, when, model=None, *, recipient="all", name=None, **metadata):
    meta = {"timestamp_": "absolute", "message_type": None, "is_complete": True}
    if model:
        meta |= {"model_slug": model, "default_model_slug": model, "request_id": _uuid(rng)[:20]}
        meta |= {"finish_details": {"type": "stop", "stop_tokens": [200002]}, "citations": [], "content_references": []}
    return {
        "id": node_id, "author": {"role": role, "name": name, "metadata": {}}, "create_time": when,
        "update_time": None, "content": content, "status": "finished_successfully",
        "end_turn": role == "assistant" and recipient == "all", "weight": 1.0, "metadata": meta | metadata,
        "recipient": recipient, "channel": None,
    }  # fmt: skip


def _cited(rng, text):
    """An answer citing a web page as real exports do: a private-use marker and its content reference."""
    marker = f"\ue200cite\ue202turn0search{rng.randrange(10)}\ue201"
    url = f"https://example.org/{rng.choice(WORDS)}"
    reference = {
        "matched_text": marker, "start_idx": 0, "end_idx": 0, "safe_urls": [url], "refs": [], "prompt_text": None,
        "alt": f"([{rng.choice(WORDS)}]({url}))", "type": "grouped_webpages",
        "items": [{"title": text(10, 40), "url": url, "pub_date": None, "snippet": None, "supporting_websites": []}],
    }  # fmt: skip
    body = f"{text(80, 2000)} {marker}. {text(40, 1000)}"
    return ("assistant", {"content_type": "text", "parts": [body]}, {"content_references": [reference]})


def _reply(rng, text, model, when):
    """One assistant turn: a list of (role, content, extra metadata) messages, mixed content types."""
    roll = rng.random()
    answer = ("assistant", {"content_type": "text", "parts": [text(80, 4000)]}, {})
    if roll < 0.08:  # Code Interpreter: a call to python, its output (a plot now and then), the answer
        code = {"content_type": "code", "language": "python", "text": text(40, 600)}
        shown = [{"message_type": "image", "image_url": f"file-service://file-{_uuid(rng)[:22]}", "sender": "server"}]
        result = {"status": "success", "messages": shown if rng.random() < 0.3 else []}
        output = {"content_type": "execution_output", "text": text(5, 300)}
        return [
            ("assistant", code, {"recipient": "python"}),
            ("tool", output, {"name": "python", "aggregate_result": result}),
            answer,
        ]
    if roll < 0.09:  # a memory write ("Memory updated"): skipped by default
        return [
            ("assistant", {"content_type": "text", "parts": [text(20, 120)]}, {"recipient": "bio"}),
            ("tool", {"content_type": "text", "parts": ["Model set context updated."]}, {"name": "bio"}),
            answer,
        ]
    if roll < 0.13:
        thought = {"summary": text(10, 60), "content": text(100, 800)}
        recap = {"content_type": "reasoning_recap", "content": "Thought for 12 seconds"}
        return [
            ("assistant", {"content_type": "thoughts", "thoughts": [thought]}, {}),
            ("assistant", recap, {}),
            answer,
        ]
    if roll < 0.16:
        shown = {"content_type": "tether_browsing_display", "result": text(200, 2000), "summary": text(10, 80)}
        return [("tool", shown, {}), answer]
    if roll < 0.18:
        quote = {"content_type": "tether_quote", "url": "https://example.org/a", "title": text(10, 40)}
        return [("tool", quote | {"text": text(50, 500), "domain": "example.org"}, {}), answer]
    if roll < 0.25:
        return [_cited(rng, text)]
    return [answer]


def _prompt(rng, text):
    if rng.random() < 0.05:
        image = {"content_type": "image_asset_pointer", "asset_pointer": f"file-service://file-{_uuid(rng)[:22]}"}
        return {"content_type": "multimodal_text", "parts": [image | {"width": 640, "height": 480}, text(20, 400)]}
    return {"content_type": "text", "parts": [text(20, 800)]}


def _copied_prefix(rng: random.Random, previous: dict, mapping: dict[str, dict]) -> str:
    """ "Branch in new chat": copy the first nodes of ``previous``'s active path into ``mapping``; the last one."""
    path, walk = [], previous["current_node"]
    while walk is not None:
        path.append(walk)
        walk = previous["mapping"][walk]["parent"]
    path = path[::-1][: rng.randrange(2, len(path) + 1)]
    for index, node_id in enumerate(path):
        children = path[index + 1 : index + 2]
        mapping[node_id] = previous["mapping"][node_id] | {"children": children}
    return path[-1]


def _conversation(rng: random.Random, text: _Text, started: float, branch_of: dict | None = None) -> dict:
    """A conversation tree: root -> hidden system -> turns; side branches for regenerations and edits.

    ``branch_of``: a conversation whose first messages this one starts with (same ids), as "Branch in new
    chat" makes them.
    """
    mapping: dict[str, dict] = {}
    when = [started]

    def add(parent, role, content, model=None, **metadata):
        node_id = _uuid(rng)
        when[0] += rng.uniform(1, 90)
        message = _message(rng, node_id, role, content, when[0], model if role == "assistant" else None, **metadata)
        mapping[node_id] = {"id": node_id, "parent": parent, "children": [], "message": message}
        mapping[parent]["children"].append(node_id)
        return node_id

    if branch_of is not None:
        tip = _copied_prefix(rng, branch_of, mapping)
    else:
        root = _uuid(rng)
        mapping[root] = {"id": root, "parent": None, "children": [], "message": None}
        tip = add(root, "system", {"content_type": "text", "parts": [""]}, is_visually_hidden_from_conversation=True)
    model = rng.choice(MODELS)
    for _ in range(max(1, int(rng.expovariate(1 / 7)))):
        if rng.random() < 0.05:  # an edited prompt: the old one stays as a side branch with its answer
            add(
                add(tip, "user", _prompt(rng, text)),
                "assistant",
                {"content_type": "text", "parts": [text(80, 2000)]},
                model,
            )
        tip = add(tip, "user", _prompt(rng, text))
        if rng.random() < 0.12:  # a regenerated answer: the first one stays as a side branch
            add(tip, "assistant", {"content_type": "text", "parts": [text(80, 2000)]}, model)
        for role, content, metadata in _reply(rng, text, model, when):
            tip = add(tip, role, content, model, **metadata)
    conversation_id = _uuid(rng)
    return {
        "title": text(10, 50), "create_time": started, "update_time": when[0], "mapping": mapping,
        "moderation_results": [], "current_node": tip, "plugin_ids": None, "conversation_id": conversation_id,
        "id": conversation_id, "default_model_slug": model, "is_archived": False, "safe_urls": [],
    }  # fmt: skip


def write_export(path: Path, target_bytes: int, seed: int) -> dict:
    """Stream a synthetic export of about ``target_bytes`` to ``path``; returns its figures."""
    rng = random.Random(seed)
    text = _Text(rng)
    written = conversations = nodes = 0
    started = 1_700_000_000.0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[")
        previous = None
        while written < target_bytes:
            copied = previous is not None and rng.random() < 0.05
            conversation = previous = _conversation(rng, text, started, previous if copied else None)
            started += 3600
            data = ("," if conversations else "") + json.dumps(conversation, ensure_ascii=False)
            handle.write(data)
            written += len(data.encode("utf-8"))
            conversations += 1
            nodes += len(conversation["mapping"])
        handle.write("]")
    return {"bytes": path.stat().st_size, "conversations": conversations, "nodes": nodes}


def child_import(export: Path, root: Path) -> None:
    """Run in the child process: import with Pub/Sub off, print one JSON line."""
    from my_llm import PubSubChatMessageHistory, Settings
    from my_llm.importers.chatgpt import import_chatgpt_export

    settings = Settings(message_history=root / "logs", chroma_db_path=root / "chroma", google_cloud_project=None)
    history = PubSubChatMessageHistory("chatgpt-bench", settings=settings)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu_started = time.perf_counter(), time.process_time()
    report = import_chatgpt_export(history, export)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    figures = {"messages": report.messages_imported, "conversations": report.conversations, "seconds": seconds}
    figures["cpu_seconds"] = cpu_seconds
    figures |= {"rss_before_import_mb": rss_before, "skipped": report.skipped, "log_bytes": history.path.stat().st_size}
    print(json.dumps(figures))


def child_parse_only(export: Path) -> None:
    import ijson

    started = time.perf_counter()
    with open(export, "rb") as handle:
        count = sum(1 for _ in ijson.items(handle, "item", use_float=True))
    print(json.dumps({"conversations": count, "seconds": time.perf_counter() - started}))


def _run_child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the child process failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=200, help="size of the synthetic export in MB [200]")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="also keep the export at this path")
    parser.add_argument("--cpu-time", action="store_true", help="also report the import's CPU time")
    parser.add_argument("--child-import", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-parse", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        return child_import(*args.child_import)
    if args.child_parse:
        return child_parse_only(args.child_parse)

    with tempfile.TemporaryDirectory() as tmp:
        export = args.keep or Path(tmp) / "conversations.json"
        started = time.perf_counter()
        made = write_export(export, int(args.mb * 1_000_000), args.seed)
        generate_s = time.perf_counter() - started
        imported = _run_child("--child-import", str(export), tmp)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        parsed = _run_child("--child-parse", str(export))
    _print(made, generate_s, imported, peak_rss_mb, parsed, cpu_time=args.cpu_time)


def _print(
    made: dict, generate_s: float, imported: dict, peak_rss_mb: float, parsed: dict, *, cpu_time: bool = False
) -> None:
    from rich.console import Console
    from rich.table import Table

    result = {
        "bytes": made["bytes"],
        "messages": imported["messages"],
        "messages_per_s": round(imported["messages"] / imported["seconds"]),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "conversations": imported["conversations"],
        "nodes": made["nodes"],
        "import_s": round(imported["seconds"], 2),
        "import_mb_per_s": round(made["bytes"] / 1e6 / imported["seconds"], 1),
        "rss_before_import_mb": round(imported["rss_before_import_mb"], 1),
        "parse_only_mb_per_s": round(made["bytes"] / 1e6 / parsed["seconds"], 1),
        "log_mb": round(imported["log_bytes"] / 1e6, 1),
        "generate_s": round(generate_s, 1),
    }
    if cpu_time:
        result["import_cpu_s"] = round(imported["cpu_seconds"], 2)
        result["messages_per_cpu_s"] = round(imported["messages"] / imported["cpu_seconds"])
    table = Table("figure", "value", title=f"ChatGPT export import, {made['bytes'] / 1e6:.0f} MB, Pub/Sub off")
    for key, value in result.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    for reason, count in sorted(imported["skipped"].items()):
        table.add_row(f"skipped: {reason}", f"{count:,}")
    table.add_row("targets", ">= 5,000 messages/s, peak RSS <= 400 MB")
    Console().print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
