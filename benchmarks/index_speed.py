"""Benchmark: read-repo indexing speed against LangChain's naive pipeline, on a real corpus.

    .venv/bin/python benchmarks/index_speed.py [--corpus DIR] [--embeddings SPEC] [--help-runs 5]

The corpus defaults to the installed ``langchain_core`` package source (.py files). In one run, each
step in its own fresh process (so peak RSS and start-up are per step):
  1. ours, first index (structural summaries, tree-sitter chunks, hybrid retriever) into a fresh folder;
  2. ours, re-index with nothing changed;
  3. ours, re-index after touching one file (one line appended to a copy of the corpus);
  4. LangChain's naive pipeline: DirectoryLoader + RecursiveCharacterTextSplitter.from_language(PYTHON,
     chunk_size=1000, chunk_overlap=200) + Chroma.from_documents, with the same weights run as a LangChain
     user runs them (sentence-transformers, as HuggingFaceEmbeddings does: ``local:sentence-transformers``);
  5. the same naive pipeline with our embedder (``--embeddings``), to separate the runtime's share of the
     speed-up from the pipeline's.
Then the median retrieval time of 20 questions (no LLM), and the median wall time of ``my-llm --help`` and
``read-repo --help`` (--help-runs runs each). Each step's ``*_s`` is timed inside its process from before the
index is opened (imports of the library excluded, loading the embedder included); ``*_process_s`` is the
whole fresh process up to the end of the re-index, interpreter start and imports included (until
2026-11-30 it also counted the 20 timed questions asked after it). The machine has 2 cores shared with other
work: times vary by 10-30% between runs; compare ratios from one run. Prints a table and a final JSON line:
{"files", "chunks", "embeddings", "first_s", "naive_first_s", "speedup", "naive_onnx_first_s", "speedup_same_runtime",
 "reindex_unchanged_s", "reindex_unchanged_share", "reindex_one_file_s", "reindex_one_file_process_s",
 "reindex_one_file_embedded", "peak_rss_mb", "naive_peak_rss_mb", "query_p50_ms", "my_llm_help_s",
 "read_repo_help_s"}.

Two runs on langchain_core (187 files, 2,668 chunks; ONNX float32 embedder; run 1 on a heavily loaded machine):
    first_s 88.2 / 34.5; naive with sentence-transformers 364.0 / 125.1 (speedup 4.13 / 3.63); naive with the
    ONNX embedder 183.7 / 62.0 (1.8-2.1x); unchanged re-index 2.17 / 1.45 s; one-file re-index 4.29 / 2.06 s
    in-process, 7.4 / 3.4 s for the whole process; peak RSS 467 / 460 MB (naive about 1,000); query p50
    10.3 / 6.5 ms; my-llm --help 0.88 / 0.73 s, read-repo --help 1.07 / 0.88 s. Of a one-file re-index
    (2.75 s in a profile), the secret scan of every file took 1.7 s, opening Chroma 0.74 s, the embedder 0.19 s.

After issue 18 (lazy faces, no re-read or re-scan of files with an unchanged stat), two runs on a quiet machine
(2026-11-30): first_s 29.48 / 28.43; naive 110.55 / 114.18 (speedup 3.75 / 4.02); naive with the ONNX embedder
60.84 / 58.72 (2.06 / 2.07x); unchanged re-index 0.02 s (0.05% of the first); one-file re-index 0.58 s
in-process, 0.84 s for the whole process (second run; the first run's 1.63 s counted the 20 questions too);
peak RSS 438 MB (naive 1,018-1,029); query p50 6.7 ms; my-llm --help 0.13 s, read-repo --help 0.09 s.

With read-repo's int8 embedder (``qna.index.REPO_EMBEDDINGS``, the default since 2026-11-30; the same
MiniLM weights, MatMuls int8-quantised), three runs on a quiet machine the same day, int8 / int8 / float32
(``--embeddings local``): first_s 22.44 / 22.57 / 30.88; naive 110.47 / 116.23 / 114.54 (speedup
4.92 / 5.15 / 3.71); naive with our embedder 42.11 / 40.48 / 61.22; unchanged re-index 0.02 s (0.08%);
one-file re-index 0.60 / 0.57 / 0.66 s in-process, 0.89 / 0.86 / 0.97 s for the whole process; peak RSS
482 / 488 / 443 MB (naive 1,038 / 1,038 / 986); query p50 8.4 / 6.9 / 8.5 ms; my-llm --help 0.13-0.15 s,
read-repo --help 0.09-0.10 s. Of the first index, embedding 2,668 chunk heads is about 23 s of 30 in
float32 and about 15 s of 22 in int8.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTIONS = [
    "How do I stream tokens from a chat model?",
    "Where are tool calls parsed from an AI message?",
    "How does a runnable retry on failure?",
    "What does trim_messages do?",
    "How are callbacks passed to a runnable?",
    "Where is the prompt template formatted?",
    "How do I bind tools to a chat model?",
    "What is a RunnableLambda?",
    "How are message chunks merged?",
    "Where is the output parser for JSON?",
]


def _ours(corpus: str, folder: str, spec: str, queue) -> None:
    from my_llm import get_embeddings
    from qna.files import discover, parse_extensions
    from qna.index import RepoIndex

    started = time.perf_counter()
    index = RepoIndex(Path(corpus), Path(folder), get_embeddings(spec))
    found = discover(Path(corpus), parse_extensions(".py"))
    report = index.update(found.files)
    elapsed = time.perf_counter() - started
    queue.put({"phase": "indexed"})  # the end of the re-index, for process_s (the queries below come after)
    timings = []
    for question in QUESTIONS * 2:
        before = time.perf_counter()
        index.search(question, k=6)
        timings.append(time.perf_counter() - before)
    queue.put(
        {
            "s": elapsed,
            "files": len(found.files),
            "indexed": len(report.indexed),
            "chunks": index.retriever.count(),
            "embedded": report.embedded,
            "query_p50_ms": statistics.median(timings[len(QUESTIONS) :]) * 1000,  # warm
        }
    )


def _naive(corpus: str, folder: str, spec: str, queue) -> None:
    from langchain_chroma import Chroma
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

    from my_llm import get_embeddings

    started = time.perf_counter()
    loader = DirectoryLoader(corpus, glob="**/*.py", loader_cls=TextLoader, silent_errors=True)
    splitter = RecursiveCharacterTextSplitter.from_language(Language.PYTHON, chunk_size=1000, chunk_overlap=200)
    chunks = splitter.split_documents(loader.load())
    Chroma.from_documents(chunks, get_embeddings(spec), persist_directory=folder)
    queue.put({"s": time.perf_counter() - started, "chunks": len(chunks)})


def run_step(target, *args) -> tuple[dict, float]:
    """Run ``target`` in a fresh process; returns its result (with ``process_s``, the process's wall time
    from start to the end of its indexing, or to its result when it does not say when indexing ended) and
    that process's peak RSS in MB."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    process.start()
    result = queue.get()
    process_s = time.perf_counter() - started
    if result.get("phase") == "indexed":
        result = queue.get()
    result["process_s"] = process_s
    process.join()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return result, max(peak, before) / 1024


def help_seconds(command: str, runs: int) -> float:
    """Median wall time (s) of ``<venv>/bin/<command> --help`` over ``runs`` runs."""
    path = Path(sys.executable).with_name(command)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(path), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    import os

    import langchain_core

    from qna.index import REPO_EMBEDDINGS

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the machine is shared: do not spin on idle cores
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(Path(langchain_core.__file__).parent), help="folder to index")
    parser.add_argument(
        "--embeddings", default=REPO_EMBEDDINGS, help=f"our embeddings spec [{REPO_EMBEDDINGS}: read-repo's default]"
    )
    parser.add_argument("--naive-embeddings", default="local:sentence-transformers", help="the naive pipeline's")
    parser.add_argument("--help-runs", type=int, default=5, help="runs of each --help [5]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(args.corpus, corpus, ignore=shutil.ignore_patterns("__pycache__"))
        folder = str(Path(tmp) / "ours")
        first, peak_first = run_step(_ours, str(corpus), folder, args.embeddings)
        unchanged, _ = run_step(_ours, str(corpus), folder, args.embeddings)
        touched = sorted(corpus.rglob("*.py"))[0]
        with open(touched, "a", encoding="utf-8") as handle:
            handle.write("\n# touched by the benchmark\n")
        one_file, _ = run_step(_ours, str(corpus), folder, args.embeddings)
        naive, peak_naive = run_step(_naive, str(corpus), str(Path(tmp) / "naive"), args.naive_embeddings)
        naive_ours, _ = run_step(_naive, str(corpus), str(Path(tmp) / "naive-ours"), args.embeddings)
    result = {
        "files": first["files"],
        "chunks": first["chunks"],
        "embeddings": args.embeddings,
        "first_s": round(first["s"], 2),
        "naive_embeddings": args.naive_embeddings,
        "naive_first_s": round(naive["s"], 2),
        "naive_chunks": naive["chunks"],
        "speedup": round(naive["s"] / first["s"], 2),
        "naive_onnx_first_s": round(naive_ours["s"], 2),
        "speedup_same_runtime": round(naive_ours["s"] / first["s"], 2),
        "reindex_unchanged_s": round(unchanged["s"], 2),
        "reindex_unchanged_share": round(unchanged["s"] / first["s"], 4),
        "reindex_one_file_s": round(one_file["s"], 2),
        "reindex_one_file_process_s": round(one_file["process_s"], 2),
        "reindex_one_file_embedded": one_file["embedded"],
        "peak_rss_mb": round(peak_first, 1),
        "naive_peak_rss_mb": round(peak_naive, 1),
        "query_p50_ms": round(first["query_p50_ms"], 2),
        "my_llm_help_s": round(help_seconds("my-llm", args.help_runs), 2),
        "read_repo_help_s": round(help_seconds("read-repo", args.help_runs), 2),
    }
    from rich.console import Console
    from rich.table import Table

    table = Table("figure", "value", title="read-repo indexing")
    for key, value in result.items():
        table.add_row(key, str(value))
    Console().print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
