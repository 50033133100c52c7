"""Benchmark: read-repo indexing speed against LangChain's naive pipeline, on a real corpus.

    .venv/bin/python benchmarks/index_speed.py [--corpus DIR] [--queries 20]

The corpus defaults to the installed ``langchain_core`` package source (.py files). In one run, each
step in its own process (so peak RSS is per step):
  1. ours, first index (structural summaries, tree-sitter chunks, hybrid retriever) into a fresh folder;
  2. ours, re-index with nothing changed;
  3. ours, re-index after touching one file (one line appended to a copy of the corpus);
  4. LangChain's naive pipeline: DirectoryLoader + RecursiveCharacterTextSplitter.from_language(PYTHON,
     chunk_size=1000, chunk_overlap=200) + Chroma.from_documents, with the same embedder.
Then the median retrieval time of --queries questions (no LLM). Prints a table and a final JSON line:
{"files", "chunks", "first_s", "naive_first_s", "speedup", "reindex_unchanged_s", "reindex_one_file_s",
 "peak_rss_mb", "query_p50_ms"}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import statistics
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


def _ours(corpus: str, folder: str, queue) -> None:
    from my_llm import get_embeddings
    from qna.files import discover, parse_extensions
    from qna.index import RepoIndex

    started = time.perf_counter()
    index = RepoIndex(Path(corpus), Path(folder), get_embeddings("local"))
    found = discover(Path(corpus), parse_extensions(".py"))
    report = index.update(found.files)
    elapsed = time.perf_counter() - started
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


def _naive(corpus: str, folder: str, queue) -> None:
    from langchain_chroma import Chroma
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

    from my_llm import get_embeddings

    started = time.perf_counter()
    loader = DirectoryLoader(corpus, glob="**/*.py", loader_cls=TextLoader, silent_errors=True)
    splitter = RecursiveCharacterTextSplitter.from_language(Language.PYTHON, chunk_size=1000, chunk_overlap=200)
    chunks = splitter.split_documents(loader.load())
    Chroma.from_documents(chunks, get_embeddings("local"), persist_directory=folder)
    queue.put({"s": time.perf_counter() - started, "chunks": len(chunks)})


def run_step(target, *args) -> tuple[dict, float]:
    """Run ``target`` in a fresh process; returns its result and that process's peak RSS in MB."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    process.start()
    result = queue.get()
    process.join()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return result, max(peak, before) / 1024


def main() -> None:
    import langchain_core

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(Path(langchain_core.__file__).parent), help="folder to index")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(args.corpus, corpus, ignore=shutil.ignore_patterns("__pycache__"))
        folder = str(Path(tmp) / "ours")
        first, peak_first = run_step(_ours, str(corpus), folder)
        unchanged, _ = run_step(_ours, str(corpus), folder)
        touched = sorted(corpus.rglob("*.py"))[0]
        with open(touched, "a", encoding="utf-8") as handle:
            handle.write("\n# touched by the benchmark\n")
        one_file, _ = run_step(_ours, str(corpus), folder)
        naive, peak_naive = run_step(_naive, str(corpus), str(Path(tmp) / "naive"))
    result = {
        "files": first["files"],
        "chunks": first["chunks"],
        "first_s": round(first["s"], 2),
        "naive_first_s": round(naive["s"], 2),
        "naive_chunks": naive["chunks"],
        "speedup": round(naive["s"] / first["s"], 2),
        "reindex_unchanged_s": round(unchanged["s"], 2),
        "reindex_unchanged_share": round(unchanged["s"] / first["s"], 4),
        "reindex_one_file_s": round(one_file["s"], 2),
        "reindex_one_file_embedded": one_file["embedded"],
        "peak_rss_mb": round(peak_first, 1),
        "naive_peak_rss_mb": round(peak_naive, 1),
        "query_p50_ms": round(first["query_p50_ms"], 2),
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
