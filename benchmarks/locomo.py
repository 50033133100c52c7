"""Benchmark: retrieving the evidence turns of LoCoMo questions with the memory's hybrid retriever.

    .venv/bin/python benchmarks/locomo.py --data ../shared/data/locomo/locomo10.json \
        [--limit-conversations N] [--out-dir DIR] [--threads 1]

LoCoMo (Maharana et al. 2024, "Evaluating Very Long-Term Conversational Memory of LLM Agents"): 10
conversations, 5,882 turns, 1,986 questions. Each conversation goes through the library as a user of it
would: one ``Record`` per turn (speaker + text, the image's BLIP caption for image turns; ``dia_id``,
``speaker``, ``session`` in metadata; ``created_at`` = the session's date) appended to a ``MessageStore`` in
its own namespace under a temporary MESSAGE_HISTORY root, read back, and indexed by a ``HybridRetriever``
in ``<root>/<namespace>/chroma``.

Metric (the paper's): recall@k = share of a question's evidence turns among the top k retrieved turns,
averaged over the questions with evidence, all categories. Evidence is split on ';'; ids that do not parse
or name no turn of the conversation are skipped and counted. Top-k is the first k of one top-50 search
(the retriever fuses at least 50 candidates per side, so that is what a search with k would return).

Prints a table per category and mode, then as the last line one JSON object:
    {"questions", "recall@5": {"bm25", "dense", "hybrid"}, "recall@10", "recall@25", "recall@50", "query_p50_ms"}
recall in percent; query_p50_ms = median wall time of one hybrid search, query embedding included.

Published reference (paper, Table 3, DRAGON over turns): recall@5 56.7, @10 66.2, @25 76.7, @50 82.7.
--out-dir keeps document embeddings across runs (keyed by model and text).

What is indexed per turn, and the retriever's settings, were tuned on this data (so the figures are
optimistic for other conversations); hybrid recall@5/@10 over all 1,978 questions, all-MiniLM-L6-v2:
    turn as "speaker: text", RRF k=60, equal weights (library defaults)   46.2 / 55.9
    + session date in the BM25 text                                     47.1 / 57.9
    dense: the turn, then the 2 turns before it (turn first: the model
      truncates at 256 word pieces; turn last: 39.2 / 49.5 dense alone) dense alone 43.9 / 52.9
    BM25: the turn and date 3 times, then 2 turns before and 2 after    BM25 alone  69.2 / 77.5
      fused with the library defaults (RRF k=60, equal weights, b=0.75)  61.3 / 73.1
    RRF k=10, dense weight 0.5, BM25 b=0.5 (this script's defaults)     72.3 / 80.3
Tried without gain: BM25 k1 (0.8-2.0), question normalisation (wh-word removal, lower-casing), several
embedded views of a turn (max/mean of similarities, or a third RRF list), dense pseudo-relevance
feedback, a soft boost for the speaker named in the question, other stopword lists, more or fewer fused
candidates.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings
from rich.console import Console
from rich.table import Table

from my_llm import MessageStore, Record, get_embeddings
from my_llm.retrieval import HybridRetriever

KS = (5, 10, 25, 50)
MODES = ("bm25", "dense", "hybrid")
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
PUBLISHED = {"DRAGON (paper)": (56.7, 66.2, 76.7, 82.7)}
_DIA_ID = re.compile(r"D[1-9]\d*:[1-9]\d*")
_SESSION = re.compile(r"session_(\d+)")


class CachedEmbeddings(Embeddings):
    """Wraps an embedder: document vectors are kept by sha256 of (model, text), in memory and in ``path``.

    Query vectors are computed every time (they are part of the timed search).
    """

    def __init__(self, inner: Embeddings, path: Path | None) -> None:
        self.inner, self.path = inner, path
        self.model = str(getattr(inner, "model_name", type(inner).__name__))
        self.vectors: dict[str, list[float]] = {}
        self.computed = 0
        if path is not None and path.exists():
            with np.load(path) as saved:
                self.vectors = dict(zip(saved["keys"].tolist(), saved["vectors"].tolist(), strict=True))

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model}\n{text}".encode()).hexdigest()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = sorted({text for text in texts if self._key(text) not in self.vectors})
        if missing:
            for text, vector in zip(missing, self.inner.embed_documents(missing), strict=True):
                self.vectors[self._key(text)] = vector
            self.computed += len(missing)
        return [self.vectors[self._key(text)] for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def save(self) -> None:
        if self.path is not None and self.computed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self.vectors)
            np.savez(self.path, keys=np.array(keys), vectors=np.array([self.vectors[key] for key in keys], "float32"))


@dataclass(frozen=True)
class TextOptions:
    """What is indexed per turn (LoCoMo-specific choices; see the module docstring for the figures)."""

    turn_repeat: int = 3
    bm25_before: int = 2
    bm25_after: int = 2
    embed_before: int = 2


@dataclass
class Question:
    text: str
    category: int
    evidence: set[str]
    found: dict[str, list[str]] = field(default_factory=dict)  # mode -> retrieved dia_ids, best first


@dataclass
class Skipped:
    malformed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    no_evidence: int = 0


def session_time(text: str) -> datetime:
    """``"1:56 pm on 8 May, 2023"`` -> a naive datetime (LoCoMo gives no time zone; read as UTC)."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y")


def turn_records(sample: dict, namespace: str) -> list[Record]:
    """One human record per turn, sessions in order; the image's caption is part of the content."""
    conversation = sample["conversation"]
    numbers = sorted(int(m.group(1)) for key in conversation if (m := _SESSION.fullmatch(key)))
    records = []
    for number in numbers:
        when = session_time(conversation[f"session_{number}_date_time"])
        for turn in conversation[f"session_{number}"]:
            content = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                content += f" [shares {turn['blip_caption']}]"
            metadata = {"dia_id": turn["dia_id"], "speaker": turn["speaker"], "session": number}
            records.append(
                Record.new(
                    namespace, f"session_{number}", "human", content, metadata=metadata, created_at=when, source="live"
                )
            )
    return records


def _session_neighbours(records: Sequence[Record], i: int, before: int, after: int) -> list[str]:
    """The contents of up to ``before`` turns before turn i and ``after`` turns after it, in its session."""
    session = records[i].session_id
    window = [*records[max(0, i - before) : i], *records[i + 1 : i + 1 + after]]
    return [record.content for record in window if record.session_id == session]


def indexed_text(records: Sequence[Record], i: int, text: TextOptions) -> str:
    """What is stored and BM25-indexed for turn i: the turn with its session's date, repeated (a cheap
    field weight), then its neighbours, which often hold the question the turn answers."""
    record = records[i]
    own = f"{record.content} ({datetime.fromisoformat(record.created_at[:10]):%-d %B %Y})"
    return "\n".join([own] * text.turn_repeat + _session_neighbours(records, i, text.bm25_before, text.bm25_after))


def embedded_text(records: Sequence[Record], i: int, text: TextOptions) -> str:
    """What is embedded for turn i: the turn first (the model truncates at 256 word pieces), then the
    turns before it in its session."""
    return "\n".join([records[i].content, *_session_neighbours(records, i, text.embed_before, 0)])


def index_conversation(
    root: Path, sample: dict, embeddings: Embeddings, text: TextOptions, options: dict
) -> tuple[HybridRetriever, set[str]]:
    """Log the conversation through the library, read it back, index it; returns the retriever and dia_ids."""
    namespace = f"locomo-{sample['sample_id']}"
    store = MessageStore(root, namespace, fsync="never")
    store.append(turn_records(sample, namespace))
    records = list(store.read())
    retriever = HybridRetriever(root / namespace / "chroma", embeddings, **options)
    retriever.add(
        [r.id for r in records],
        [indexed_text(records, i, text) for i in range(len(records))],
        [r.metadata for r in records],
        embed_texts=[embedded_text(records, i, text) for i in range(len(records))],
    )
    return retriever, {r.metadata["dia_id"] for r in records}


def questions_of(sample: dict, dia_ids: set[str], skipped: Skipped) -> list[Question]:
    """The questions with at least one usable evidence id; what was skipped goes into ``skipped``."""
    questions = []
    for qa in sample["qa"]:
        evidence = set()
        for part in (p.strip() for raw in qa.get("evidence", []) for p in str(raw).split(";")):
            if not _DIA_ID.fullmatch(part):
                skipped.malformed.append(part)
            elif part not in dia_ids:
                skipped.unknown.append(f"{sample['sample_id']}:{part}")
            else:
                evidence.add(part)
        if evidence:
            questions.append(Question(qa["question"], int(qa["category"]), evidence))
        else:
            skipped.no_evidence += 1
    return questions


def run_searches(retriever: HybridRetriever, questions: list[Question], timings: list[float]) -> None:
    """Fill ``question.found`` for every mode; appends hybrid search wall times (s) to ``timings``."""
    for question in questions:
        for mode in MODES:
            started = time.perf_counter()
            hits = retriever.search(question.text, k=max(KS), mode=mode)
            if mode == "hybrid":
                timings.append(time.perf_counter() - started)
            question.found[mode] = [hit.metadata["dia_id"] for hit in hits]


def recall(questions: Sequence[Question], mode: str, k: int) -> float:
    """Mean share of evidence in the top k, in percent (0 for no questions)."""
    if not questions:
        return 0.0
    shares = [len(q.evidence & set(q.found[mode][:k])) / len(q.evidence) for q in questions]
    return 100 * sum(shares) / len(shares)


def print_table(console: Console, questions: list[Question], title: str) -> None:
    table = Table("questions", "n", "retriever", *(f"R@{k}" for k in KS), title=title)
    groups = [("overall", questions)] + [
        (f"{c} {name}", [q for q in questions if q.category == c]) for c, name in CATEGORIES.items()
    ]
    for label, group in groups:
        for mode in MODES:
            cells = [f"{recall(group, mode, k):.1f}" for k in KS]
            table.add_row(label if mode == MODES[0] else "", str(len(group)) if mode == MODES[0] else "", mode, *cells)
        table.add_section()
    for name, figures in PUBLISHED.items():
        table.add_row("overall", "1982", name, *(f"{f:.1f}" for f in figures))
    console.print(table)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="locomo10.json")
    parser.add_argument("--limit-conversations", type=int, default=None, help="only the first N conversations")
    parser.add_argument("--out-dir", type=Path, default=None, help="keep document embeddings here across runs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads [1]")
    parser.add_argument("--turn-repeat", type=int, default=3, help="times a turn is repeated for BM25 [3]")
    parser.add_argument("--bm25-before", type=int, default=2, help="turns before a turn indexed with it [2]")
    parser.add_argument("--bm25-after", type=int, default=2, help="turns after a turn indexed with it [2]")
    parser.add_argument("--embed-before", type=int, default=2, help="turns before a turn embedded with it [2]")
    parser.add_argument("--rrf-k", type=int, default=10, help="RRF constant k [10; the library's default is 60]")
    parser.add_argument("--dense-weight", type=float, default=0.5, help="RRF weight of the dense list [0.5]")
    parser.add_argument("--bm25-weight", type=float, default=1.0, help="RRF weight of the BM25 list [1.0]")
    parser.add_argument("--bm25-b", type=float, default=0.5, help="BM25 length normalisation b [0.5]")
    parser.add_argument("--candidates", type=int, default=50, help="candidates fused per side, >= 50 [50]")
    args = parser.parse_args()
    if args.candidates < max(KS):
        parser.error(f"--candidates must be at least {max(KS)} (top-k is read off one top-{max(KS)} search)")
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # do not spin on a core the machine shares
    import torch

    torch.set_num_threads(args.threads)  # the machine is shared: one core by default
    console = Console()
    samples = json.loads(args.data.read_text(encoding="utf-8"))[: args.limit_conversations]
    cache = args.out_dir / "embeddings-cache.npz" if args.out_dir else None
    embeddings = CachedEmbeddings(get_embeddings("local"), cache)
    options = {
        "rrf_k": args.rrf_k,
        "dense_weight": args.dense_weight,
        "bm25_weight": args.bm25_weight,
        "candidates": args.candidates,
        "bm25_b": args.bm25_b,
    }
    text = TextOptions(args.turn_repeat, args.bm25_before, args.bm25_after, args.embed_before)
    questions: list[Question] = []
    skipped, timings = Skipped(), []
    index_s = 0.0
    with tempfile.TemporaryDirectory(prefix="locomo-") as tmp:
        for sample in samples:
            started = time.perf_counter()
            retriever, dia_ids = index_conversation(Path(tmp), sample, embeddings, text, options)
            retriever.search("warm up the BM25 index", k=1)  # index building is not part of query time
            index_s += time.perf_counter() - started
            mine = questions_of(sample, dia_ids, skipped)
            run_searches(retriever, mine, timings)
            questions.extend(mine)
            console.print(f"{sample['sample_id']}: {len(dia_ids)} turns, {len(mine)} questions", highlight=False)
    embeddings.save()
    console.print(
        f"skipped evidence ids: {len(skipped.malformed)} malformed {skipped.malformed}, "
        f"{len(skipped.unknown)} naming no turn {skipped.unknown}; {skipped.no_evidence} questions without "
        f"usable evidence left out. Indexing {index_s:.1f} s ({embeddings.computed} turns embedded, "
        f"the rest from the cache).",
        highlight=False,
    )
    console.print(f"indexed text: {text}\nretriever: {options}", highlight=False)
    print_table(console, questions, "LoCoMo evidence recall@k (%)")
    result = {"questions": len(questions)}
    for k in KS:
        result[f"recall@{k}"] = {mode: round(recall(questions, mode, k), 1) for mode in MODES}
    result["query_p50_ms"] = round(statistics.median(timings) * 1000, 1) if timings else None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
