"""Benchmark: retrieving the evidence turns of LoCoMo questions through the memory's own path.

    .venv/bin/python benchmarks/locomo.py --data ../shared/data/locomo/locomo10.json \
        [--conversations 0-9] [--out-dir DIR] [--threads 1] [--embeddings local]

LoCoMo (Maharana et al. 2024, "Evaluating Very Long-Term Conversational Memory of LLM Agents"): 10
conversations, 5,882 turns, 1,986 questions. Each conversation is logged as a user of the library would log
an import: one human ``Record`` per turn (the turn's text, plus the image's BLIP caption for image turns;
``metadata.speaker`` = the speaker's name, ``dia_id``; ``session_id`` = ``session_<n>``; ``created_at`` =
the session's date) added to a ``ChatHistory`` of its own namespace under a temporary MESSAGE_HISTORY,
saved with ``save_vectorstore_memory`` and searched with ``memory_retriever(...).search`` and the filter
``question_memory`` uses. So the documents (:func:`my_llm.memory.memory_documents`) and the retriever's
settings (``MEMORY_DOCUMENTS``, ``MEMORY_FUSION``) are the library's own, not a copy: what users get.

Metric (the paper's): recall@k = share of a question's evidence turns among the top k retrieved turns,
averaged over the questions with evidence, all categories. Evidence is split on ';'; ids that do not parse
or name no turn of the conversation are skipped and counted. Top-k is the first k of one top-50 search
(the retriever fuses at least 50 candidates per side, so that is what a search with k would return).

Prints a table per split (conversations 0-4, on which the settings were chosen; 5-9, held out; all), then
per category and mode, then as the last line one JSON object:
    {"questions", "embeddings", "recall@5": {"bm25", "dense", "hybrid"}, "recall@10", "recall@25", "recall@50",
     "splits": {"0-4": {"questions", "recall@5", "recall@10"}, "5-9": {...}, "all": {...}}, "query_p50_ms"}
recall in percent (hybrid in "splits"); query_p50_ms = median wall time of one hybrid search as
question_memory makes it (query embedding and filter included). Published reference (paper, Table 3,
DRAGON over turns, all ten): recall@5 56.7, @10 66.2, @25 76.7, @50 82.7. --out-dir keeps document
embeddings across runs (keyed by model and text). --turn-repeat and the other setting flags override the
library's settings for exploration; the table then says so.

Settings were chosen on conversations 0-4 only (997 questions), with the ONNX embedder, hybrid recall@5 / @10:
    a transcript line per record, as stored before issue 18, with its fusion (k=10, dense 0.5, b=0.75)  58.8 / 66.6
      (with RRF k=60, equal weights: 50.7 / 59.9)
    turn "speaker: text", once; RRF k=5-10, dense weight 0.5, b=0.5                            59.1 / 67.2
    + the date (``8 May 2023``) in the BM25 text                                                61.0 / 69.0
    BM25: the turn and date 3 times, then the 2 turns before it in its session;
      embedded: the turn, then the 2 turns before it (the shipped MEMORY_DOCUMENTS)            73.4 / 81.2
    the same with the 2 turns after it in the BM25 text too (73.9 / 81.9): not shipped, since a
      document would then change when later turns arrive, and saving after every turn would
      store something else than the benchmark measures
    1 or 3-4 turns before (BM25), 1 embedded, turn repeated 2 or 4 times                      70.4-73.7 / 78.3-81.4
    RRF k=60 with equal weights and b=0.75 on the shipped documents                             62.8 / 73.8
Dense side candidates on the shipped documents (0-4; hybrid, dense alone):
    all-MiniLM-L6-v2, ONNX float32 (= sentence-transformers)   73.4 / 81.2   dense 46.9 / 56.3
    the same, ONNX int8 (local:int8)                             73.0 / 81.3   dense 47.9 / 56.6
    model2vec distilled from the same weights, 384 dims          71.4 / 80.5   dense 46.9 / 56.5
    model2vec, PCA to 256 dims                                   70.8 / 80.1   dense 44.2 / 55.0
    (model2vec embeds the 3,000 turns in about 1 s instead of 27 s, but needs torch and transformers < 5.4 to
    distil, and costs 2 points of recall@5 here: not shipped.)
Tried on 0-4 without a gain worth keeping: a convex combination of min-max-normalised scores instead of RRF
(73.9 / 81.8 at dense weight 0.3-0.4), speaker names left out of the neighbours or of the embedded text.

Second round (after the first round's held-out run missed the targets, so 5-9 is seen a second time; no
5-9 figure was looked at while choosing), on 0-4 only, over the shipped documents;
kept only with > 0.5 points at @5 or @10 and no loss at the other (hybrid R@5 / R@10; base 73.4 / 81.2):
    neighbour credit: a turn gets 0.3 / 0.1 of the fused score of the 1st / 2nd turn after it in its
      session, whose documents carry it as a neighbour (HybridRetriever context_weights, metadata
      "context"; a document of a later turn quoting the evidence otherwise outranks it)  SHIPPED  74.7 / 82.1
      (weights 0.25-0.4 / 0.05-0.2: 74.2-74.8 / 81.6-82.1; 0.1 / 0: 73.6 / 81.4; 0.5 / 0.2: 73.6 / 81.8;
      credit to the turns after instead, 0.1: 73.2 / 81.2)
    with the credit, retuned fusion: RRF k 5 / 20: 74.0 / 81.8, 73.6 / 81.6; dense weight 0.35 / 0.7:
      73.9 / 81.0, 74.4 / 81.9 (k = 10, dense 0.5 kept)
    RM3 pseudo-relevance feedback on the BM25 side (top 3 documents' 10 best tf-idf terms, query weight
      0.7): 72.9 / 82.0; other depths 71.6-72.9 / 81.2-81.5; with the credit 74.6 / 82.7 (no gain at @5)
    speaker names in the BM25 query weighted 0 / 0.5 / 2: 73.3-73.4 / 81.2-81.3
      (question words are already bm25s stopwords)
    candidates per side 100 / 100: 73.5 / 81.4; dense 25: 73.0 / 81.4; BM25 25: 73.4 / 80.8
    a third RRF list, BM25 over the turn alone (no neighbours), weight 0.25-1: 66.9-72.8 / 77.0-80.6
    the dense query moved towards the BM25 top hit's vector (Rocchio, 0.2 / 0.4): 73.3 / 81.1, 72.0 / 80.9;
      a second dense list from that vector, weight 0.25: 73.0 / 80.9
    dedup (MMR-like): a document demoted below the rest when a turn within 1 / 3 of it in its session
      ranks higher: 56.8 / 60.3, 44.5 / 46.3 (evidence is often next to a better-ranked neighbour: hence the credit)

Third round (after the second round's held-out @10 missed 80 by 1.5 points), on 0-4 only; kept only with
> 0.5 points at @10, no loss at @5, and @10 not down on any of the five conversations (hybrid R@5 / R@10;
base 74.7 / 82.1; ranks recomputed exactly in numpy, within 0.1 of this script):
    speaker prior (HybridRetriever speaker_key / speaker_weight, metadata "speaker"): a question naming
      exactly one speaker is split into who and what: the dense query leaves the name (and its 's) out, and
      that speaker's turns get 1.3 times their final score                                SHIPPED  75.2 / 83.6
      (this script; per conversation 0-4, @5 +0.6 -1.1 +1.7 +0.1 +1.4, @10 +2.9 +1.7 +0.5 +0.4 +2.4 (--conversations
      i-i, --speaker-weight 0 vs 0.3); per category @10: multi-hop 43.8 -> 45.9, temporal 85.8 -> 87.1,
      open-domain 36.9 -> 44.9, single-hop 91.8 -> 92.4, adversarial 93.9 -> 95.6, but adversarial @5
      88.0 -> 81.4: those questions often name the wrong speaker on purpose)
      (factor 1.2 / 1.25 / 1.4 / 1.5 / 1.7: 74.8 / 83.0, 75.4 / 83.2, 75.1 / 83.7, 74.4 / 83.8, 73.4 / 83.7;
      name out of the dense query whenever any speaker is named: 75.2 / 83.5; name replaced by "they" /
      "someone": 75.1 / 83.4, 75.2 / 83.6)
    the prior alone, names kept in the dense query, factor 1.1 / 1.3 / 1.5: 74.9 / 82.2, 74.3 / 82.8, 73.6 / 82.8;
      additive (+0.02-0.1 of the top score): 74.7-74.9 / 82.1-82.6
    names out of the dense query alone (no prior): 73.8 / 81.9 ("they": 73.4 / 82.1)
    BM25 k1 0.9 / 1.5 / 2.0 (was 1.2): 74.4 / 82.0, 74.3 / 81.8, 74.2 / 81.4; with the prior (0.9 / 1.5):
      75.0 / 83.5, 74.9 / 83.5
    session evidence (hierarchical): every candidate turn gets lambda times its session's best / top-3-sum
      fused score, lambda 0.05-0.3: 74.5-75.0 / 81.9-82.0, 74.4-74.9 / 82.0-82.5; with the prior (0.1):
      75.2 / 83.7, 75.2 / 83.5
    a second dense list, the turn embedded alone (no neighbours), RRF weight 0.1-0.5: 73.7-74.8 / 82.1-82.7;
      max of the two cosines: 73.8 / 81.3; with the prior (0.2): 75.7 / 84.3, @5 down on 3 of the five
      (-0.1 to -0.5): not shipped (it would also embed every turn twice and need a second collection)
    with the prior, retuned fusion: b 0.4 / 0.6: 75.4 / 83.6, 74.9 / 83.7; dense weight 0.4 / 0.6: 74.8 / 82.9,
      75.4 / 83.9; RRF k 20: 74.3 / 83.0; credit 0.4 / 0.1: 75.1 / 83.6 (kept as they were)

The shipped settings (third round, with the speaker prior), run once on all ten after they were fixed
(2026-11-30; ONNX float32, this script's defaults; 5-9 seen for the third time, no 5-9 figure looked at while
choosing):
    conversations   questions   hybrid R@5 / R@10   BM25 alone    dense alone   query p50
    0-4 (tuned)       997         75.3 / 83.6        70.1 / 78.6   46.9 / 56.3
    5-9 (held out)    981         73.5 / 80.1        68.3 / 75.3   40.9 / 49.4
    all ten          1978         74.4 / 81.9        69.2 / 77.0   43.9 / 52.9    9.0 ms
The held-out split meets issue 18's targets (70 / 80), @10 by 0.1 point: within the run-to-run wobble of
Chroma's HNSW (below), so read it as "at the target", not above it. All ten by category, @5 / @10: multi-hop
36.7 / 46.1, adversarial 82.2 / 94.1 (the prior costs adversarial @5: those questions name the wrong speaker).
Second round (the neighbour credit, before the speaker prior), run once the same way:
    0-4 (tuned)       997         74.7 / 82.1
    5-9 (held out)    981         70.5 / 78.5
    all ten          1978         72.6 / 80.3                                     9.1 ms
(5-9 alone gave 70.4 / 78.5, 9.2 ms: Chroma's HNSW is not bit-for-bit repeatable; in the third round a second
run of 5-9 alone, made only to check that, gave the same 73.5 / 80.1, 9.2 ms.) Before the neighbour credit (first
round): 0-4 73.4 / 81.2, 5-9 68.5 / 77.3, all 70.9 / 79.3, 11.4 ms; the old script's 72.3 / 80.3 were tuned on all ten
with documents the product did not store. First-round figures with other runtimes of the same weights
(--embeddings, without the credit), hybrid R@5 / R@10 on 0-4, 5-9, all, and query p50 (a busy machine):
    local:sentence-transformers   73.4 / 81.4   68.5 / 77.3   70.9 / 79.3   21.4 ms
    local:int8                    73.2 / 81.5   68.5 / 76.8   70.8 / 79.2    7.0 ms
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

from my_llm import Record, Settings, get_embeddings
from my_llm.history import ChatHistory
from my_llm.memory import (
    MEMORY_DOCUMENTS,
    MEMORY_FUSION,
    QUESTION_TASK,
    DocumentSettings,
    memory_retriever,
    save_vectorstore_memory,
    sync_records,
)
from my_llm.retrieval import HybridRetriever

KS = (5, 10, 25, 50)
MODES = ("bm25", "dense", "hybrid")
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
PUBLISHED = {"DRAGON (paper)": (56.7, 66.2, 76.7, 82.7)}
SPLITS = {"0-4 (tuned)": range(0, 5), "5-9 (held out)": range(5, 10), "all": range(0, 10)}
QUESTION_FILTER = {"task": {"$ne": QUESTION_TASK}}  # what question_memory searches with
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


@dataclass
class Question:
    conversation: int
    text: str
    category: int
    evidence: set[str]
    found: dict[str, list[str]] = field(default_factory=dict)  # mode -> retrieved dia_ids, best first


@dataclass
class Skipped:
    malformed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    no_evidence: int = 0


@dataclass(frozen=True)
class Overrides:
    """Settings other than the library's, for exploration (None: the library's own path)."""

    documents: DocumentSettings | None = None
    fusion: dict | None = None


def session_time(text: str) -> datetime:
    """``"1:56 pm on 8 May, 2023"`` -> a naive datetime (LoCoMo gives no time zone; read as UTC)."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y")


def turn_records(history: ChatHistory, sample: dict) -> list[Record]:
    """One human record per turn, sessions in order, as an import would log them: the text (with the
    image's caption), the speaker's name in ``metadata.speaker``, the session's date as ``created_at``."""
    conversation = sample["conversation"]
    numbers = sorted(int(m.group(1)) for key in conversation if (m := _SESSION.fullmatch(key)))
    records = []
    for number in numbers:
        when = session_time(conversation[f"session_{number}_date_time"])
        for turn in conversation[f"session_{number}"]:
            content = turn["text"] + (f" [shares {turn['blip_caption']}]" if turn.get("blip_caption") else "")
            metadata = {"dia_id": turn["dia_id"], "speaker": turn["speaker"]}
            records.append(
                Record.new(history.namespace, f"session_{number}", "human", content, metadata=metadata, created_at=when)
            )
    return records


def index_conversation(
    root: Path, sample: dict, embeddings: Embeddings, overrides: Overrides
) -> tuple[HybridRetriever, dict[str, str]]:
    """Log the conversation through the library and save its memory; returns the retriever and
    record id -> dia_id."""
    settings = Settings(message_history=root, chroma_db_path=root, publish=False)
    history = ChatHistory(f"locomo-{sample['sample_id']}", settings=settings)
    history.add_records(turn_records(history, sample))
    if overrides.documents is None and overrides.fusion is None:
        save_vectorstore_memory(history, embeddings)
        retriever = memory_retriever(history, embeddings)
    else:
        fusion = overrides.fusion or MEMORY_FUSION
        retriever = HybridRetriever(history.store.folder / "chroma", embeddings, settings=settings, **fusion)
        sync_records(retriever, history.records(), settings=overrides.documents or MEMORY_DOCUMENTS)
    history.close()
    return retriever, {r.id: r.metadata["dia_id"] for r in history.records()}


def questions_of(index: int, sample: dict, dia_ids: set[str], skipped: Skipped) -> list[Question]:
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
            questions.append(Question(index, qa["question"], int(qa["category"]), evidence))
        else:
            skipped.no_evidence += 1
    return questions


def run_searches(
    retriever: HybridRetriever, dia_of: dict[str, str], questions: list[Question], timings: list[float]
) -> None:
    """Fill ``question.found`` for every mode; appends hybrid search wall times (s) to ``timings``."""
    for question in questions:
        for mode in MODES:
            started = time.perf_counter()
            hits = retriever.search(question.text, k=max(KS), where=QUESTION_FILTER, mode=mode)
            if mode == "hybrid":
                timings.append(time.perf_counter() - started)
            question.found[mode] = [dia_of[hit.id] for hit in hits]


def recall(questions: Sequence[Question], mode: str, k: int) -> float:
    """Mean share of evidence in the top k, in percent (0 for no questions)."""
    if not questions:
        return 0.0
    shares = [len(q.evidence & set(q.found[mode][:k])) / len(q.evidence) for q in questions]
    return 100 * sum(shares) / len(shares)


def print_tables(console: Console, questions: list[Question]) -> None:
    splits = Table("conversations", "n", "retriever", *(f"R@{k}" for k in KS), title="LoCoMo recall@k (%) by split")
    for label, members in SPLITS.items():
        group = [q for q in questions if q.conversation in members]
        for mode in MODES:
            first = mode == MODES[0]
            splits.add_row(label if first else "", str(len(group)) if first else "", mode, *cells(group, mode))
        splits.add_section()
    console.print(splits)
    table = Table("questions", "n", "retriever", *(f"R@{k}" for k in KS), title="LoCoMo evidence recall@k (%)")
    groups = [("overall", questions)] + [
        (f"{c} {name}", [q for q in questions if q.category == c]) for c, name in CATEGORIES.items()
    ]
    for label, group in groups:
        for mode in MODES:
            first = mode == MODES[0]
            table.add_row(label if first else "", str(len(group)) if first else "", mode, *cells(group, mode))
        table.add_section()
    for name, figures in PUBLISHED.items():
        table.add_row("overall", "1982", name, *(f"{f:.1f}" for f in figures))
    console.print(table)


def cells(group: list[Question], mode: str) -> list[str]:
    return [f"{recall(group, mode, k):.1f}" for k in KS]


def conversation_range(text: str) -> range:
    """``"0-4"`` -> range(0, 5); ``"7"`` -> range(7, 8)."""
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="locomo10.json")
    parser.add_argument("--conversations", type=conversation_range, default=range(0, 10), help="e.g. 0-4 [0-9]")
    parser.add_argument("--out-dir", type=Path, default=None, help="keep document embeddings here across runs")
    parser.add_argument("--threads", type=int, default=1, help="embedder CPU threads [1]")
    parser.add_argument("--embeddings", default="local", help="embeddings spec (get_embeddings) [local]")
    parser.add_argument("--turn-repeat", type=int, help="override: times a turn is repeated for BM25")
    parser.add_argument("--bm25-before", type=int, help="override: turns before a turn in its BM25 text")
    parser.add_argument("--bm25-after", type=int, help="override: turns after a turn in its BM25 text")
    parser.add_argument("--embed-before", type=int, help="override: turns before a turn embedded with it")
    parser.add_argument("--rrf-k", type=int, help="override: RRF constant k")
    parser.add_argument("--dense-weight", type=float, help="override: RRF weight of the dense list")
    parser.add_argument("--bm25-b", type=float, help="override: BM25 length normalisation b")
    parser.add_argument("--bm25-k1", type=float, help="override: BM25 term-frequency saturation k1")
    parser.add_argument("--speaker-weight", type=float, help="override: speaker prior weight (0: none)")
    return parser.parse_args()


def overrides_of(args: argparse.Namespace) -> Overrides:
    names = ("turn_repeat", "bm25_before", "bm25_after", "embed_before")
    documents = None
    if any(getattr(args, name) is not None for name in names):
        given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
        documents = DocumentSettings(**{**MEMORY_DOCUMENTS.__dict__, **given})
    fusion = None
    pairs = {
        "rrf_k": args.rrf_k,
        "dense_weight": args.dense_weight,
        "bm25_b": args.bm25_b,
        "bm25_k1": args.bm25_k1,
        "speaker_weight": args.speaker_weight,
    }
    if any(value is not None for value in pairs.values()):
        fusion = {**MEMORY_FUSION, **{key: value for key, value in pairs.items() if value is not None}}
    return Overrides(documents, fusion)


def load_embeddings(args: argparse.Namespace) -> CachedEmbeddings:
    inner = get_embeddings(args.embeddings)
    if hasattr(inner, "threads"):
        inner.threads = args.threads  # the ONNX embedder: read when it loads
    elif "sentence" in type(inner).__name__.lower():
        import torch

        torch.set_num_threads(args.threads)
    return CachedEmbeddings(inner, args.out_dir / "embeddings-cache.npz" if args.out_dir else None)


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # do not spin on a core the machine shares
    console = Console()
    samples = json.loads(args.data.read_text(encoding="utf-8"))
    embeddings, overrides = load_embeddings(args), overrides_of(args)
    questions: list[Question] = []
    skipped, timings = Skipped(), []
    index_s = 0.0
    with tempfile.TemporaryDirectory(prefix="locomo-") as tmp:
        for index in args.conversations:
            sample = samples[index]
            started = time.perf_counter()
            retriever, dia_of = index_conversation(Path(tmp), sample, embeddings, overrides)
            retriever.search("warm up the BM25 index", k=1, where=QUESTION_FILTER)  # not part of query time
            index_s += time.perf_counter() - started
            mine = questions_of(index, sample, set(dia_of.values()), skipped)
            run_searches(retriever, dia_of, mine, timings)
            questions.extend(mine)
            console.print(f"{index} {sample['sample_id']}: {len(dia_of)} turns, {len(mine)} questions", highlight=False)
    embeddings.save()
    console.print(
        f"skipped evidence ids: {len(skipped.malformed)} malformed {skipped.malformed}, "
        f"{len(skipped.unknown)} naming no turn {skipped.unknown}; {skipped.no_evidence} questions without "
        f"usable evidence left out. Indexing {index_s:.1f} s ({embeddings.computed} turns embedded, "
        f"the rest from the cache). Embeddings: {embeddings.model}.",
        highlight=False,
    )
    shipped = overrides.documents is None and overrides.fusion is None
    console.print(
        "settings: the library's own (MEMORY_DOCUMENTS, MEMORY_FUSION)"
        if shipped
        else f"settings OVERRIDDEN (not what the library ships): {overrides}",
        highlight=False,
    )
    print_tables(console, questions)
    result = {"questions": len(questions), "embeddings": args.embeddings, "shipped_settings": shipped}
    for k in KS:
        result[f"recall@{k}"] = {mode: round(recall(questions, mode, k), 1) for mode in MODES}
    result["splits"] = {}
    for label, members in SPLITS.items():
        group = [q for q in questions if q.conversation in members]
        if group:
            result["splits"][label.split()[0]] = {
                "questions": len(group),
                **{f"recall@{k}": round(recall(group, "hybrid", k), 1) for k in (5, 10)},
            }
    result["query_p50_ms"] = round(statistics.median(timings) * 1000, 1) if timings else None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
