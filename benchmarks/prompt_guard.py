"""Benchmark: the prompt guard of ``POST /v1/code`` on its labelled set, ``rules`` vs ``model``.

    .venv/bin/python benchmarks/prompt_guard.py [--data tests/data/prompt_guard.jsonl] \
        [--base-url http://127.0.0.1:PORT/v1] [--model openai:local] [--rules-only] [--show-errors]

The set (``tests/data/prompt_guard.jsonl``, one ``{"text", "label", "source"}`` per line): ordinary coding
requests (label ``coding``, to allow), off-topic requests (``not_coding``) and prompt injections / jailbreaks
in the style of public examples (``injection``; DAN, developer mode, HackAPrompt's "I have been PWNED",
Riley Goodside's "Ignore the above", the grandma exploit, AIM, STAN), both to refuse.

The positive class is *refused*: precision = refused and should be / refused; recall = refused and should be /
should be refused. ``model`` mode is :func:`server.guard.check_with_model` (the injection rules first, then
the chat model as a classifier). Without ``--base-url`` the bundled SmolLM2-135M is served by
``python -m llama_cpp.server`` on a free port for the run (as the tests' ``llama_server`` fixture does).

Prints one row per mode, then as the last line one JSON object:
    {"n", "rules": {"precision", "recall", "tp", "fp", "fn", "tn"}, "model": {... , "model", "fallbacks", "s"}}
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from my_llm import Settings, get_chat_model  # noqa: E402
from my_llm.testing import ServerProcess, free_port  # noqa: E402
from server.guard import Verdict, check_rules, check_with_model  # noqa: E402

DATA = ROOT / "tests" / "data" / "prompt_guard.jsonl"


def load(path: Path) -> list[dict]:
    """The labelled prompts of ``path`` (JSONL)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(rows: list[dict], judge: Callable[[str], Verdict]) -> dict:
    """Precision and recall of refusal (rounded to 3 places), the confusion counts, the misjudged prompts."""
    tp = fp = fn = tn = 0
    wrong, sources = [], {}
    for row in rows:
        verdict = judge(row["text"])
        sources[verdict.source] = sources.get(verdict.source, 0) + 1
        refuse, refused = row["label"] != "coding", not verdict.allowed
        tp, fp = tp + (refuse and refused), fp + (refused and not refuse)
        fn, tn = fn + (refuse and not refused), tn + (not refuse and not refused)
        if refuse != refused:
            wrong.append(f"{row['label']:>10} {'refused' if refused else 'allowed'}: {row['text'][:90]!r}")
    return {
        "precision": round(tp / max(1, tp + fp), 3),
        "recall": round(tp / max(1, tp + fn), 3),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "decided_by": sources,
        "wrong": wrong,
    }  # fmt: skip


def local_server(stack: ExitStack) -> str:
    """Serve the bundled GGUF with llama.cpp's OpenAI-compatible server; its base URL."""
    from my_llm.models import local_gguf_path

    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(local_gguf_path()),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]  # fmt: skip
    log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "llama.log"
    server = ServerProcess(argv, port, log, name="The llama.cpp server", ready_path="/v1/models", timeout_s=120)
    stack.enter_context(server)
    return f"{server.url}/v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--base-url", help="an OpenAI-compatible server (default: start llama.cpp's)")
    parser.add_argument("--model", default="openai:local", help="the classifier's chat model spec")
    parser.add_argument("--rules-only", action="store_true")
    parser.add_argument("--show-errors", action="store_true", help="print the misjudged prompts")
    args = parser.parse_args()
    rows = load(args.data)
    result: dict = {"n": len(rows), "refuse": sum(r["label"] != "coding" for r in rows)}
    result["rules"] = score(rows, check_rules)
    if not args.rules_only:
        with ExitStack() as stack:
            base_url = args.base_url or local_server(stack)
            settings = Settings.from_env({"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "not-needed"})
            chat = get_chat_model(args.model, settings)
            started = time.perf_counter()
            result["model"] = score(rows, lambda text: check_with_model(text, chat))
            result["model"].update(model=args.model, s=round(time.perf_counter() - started, 1))
    for mode in ("rules", "model"):
        if mode in result:
            row = result[mode]
            print(f"{mode:>6}: precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                  f"tp {row['tp']} fp {row['fp']} fn {row['fn']} tn {row['tn']}  by {row['decided_by']}")  # fmt: skip
            if args.show_errors:
                print("\n".join(f"        {line}" for line in row["wrong"]))
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "wrong"} if isinstance(v, dict) else v)
                      for k, v in result.items()}))  # fmt: skip


if __name__ == "__main__":
    main()
