"""Benchmark: file localization from bug reports with read-repo's index (file-level Acc@k).

    .venv/bin/python benchmarks/localization.py --data benchmarks/data/localization_dev.jsonl \
        [--k 1,3,5,10] [--mode hybrid|dense|bm25] [--all-modes] [--cache-dir DIR] [--threads N] \
        [--sdist-cache DIR] [--embeddings SPEC]

Each line of the data file is one example:
    {"id": "click-1903", "repo_dir": "site-packages:click", "query": "<issue text>", "gold_files": ["core.py"]}
``repo_dir`` is ``site-packages:<import name>`` (the installed package's folder, found with importlib
at run time, so the file works on any machine where the project is installed), ``sdist:<name>==<version>``
(the project's whole source distribution, tests and docs included: downloaded on demand with
``pip download --no-deps --no-binary :all:`` from PyPI into ``--sdist-cache`` and unpacked there; the run
says when it downloads), or a path (relative paths are read from the data file's folder). ``gold_files``
are POSIX paths relative to that folder. Other keys (``source``, ``fix``, ...) are ignored.

For each distinct ``repo_dir`` the ``.py`` files are indexed once with ``qna.index.RepoIndex`` (tree-sitter
chunks + structural summaries, read-repo's embedder: int8 all-MiniLM-L6-v2 unless ``--embeddings``). For each
example the query is searched (top ``--hits`` chunks, doubled until at least ``max(k)`` distinct files are
ranked or the index runs out), hits are collapsed to distinct files (``RepoIndex.rank_files``: a file scores
the sum of its best three hit scores, with read-repo's shipped ranking, :class:`qna.ranking.Ranking`:
tests/docs/examples files scored down, long reports also searched part by part), and the example is a hit at k
when EVERY gold file ranks within the top k (file-level Acc@k, as in the SWE-bench file-localization figures
below).

Prints a table per example (gold file, its rank per mode) and a summary table (with the expected Acc@k of
a random file order, the floor that repository size sets), then as the LAST line one
JSON object for ``--mode``: {"n", "acc@1", "acc@3", "acc@5", "acc@10"} (percent, one decimal) and
"index_s_per_1k_chunks" (wall seconds per 1,000 chunks over repositories embedded in this run; null when
every index came from ``--cache-dir``).
Published file Acc@5 on SWE-bench Lite, for scale: BM25 61.7, E5-base-v2 80.3, CodeRankEmbed 84.7.
Indexes live under ``--cache-dir`` (kept, so a second run embeds nothing) or a temporary folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rich.console import Console
from rich.table import Table

from my_llm import get_embeddings
from qna.files import discover, parse_extensions
from qna.index import REPO_EMBEDDINGS, RepoIndex, index_folder

MODES = ("hybrid", "dense", "bm25")
SITE_PACKAGES = "site-packages:"
SDIST = "sdist:"
PUBLISHED_ACC5 = {"BM25": 61.7, "E5-base-v2": 80.3, "CodeRankEmbed": 84.7}  # SWE-bench Lite, file Acc@5


@dataclass(frozen=True)
class Example:
    """One bug report: the query, where its code lives, and the files its fix changed."""

    id: str
    repo_dir: str
    query: str
    gold_files: tuple[str, ...]


@dataclass
class Outcome:
    """An example's result: per mode, the rank of its worst-ranked gold file (None: not all were found)."""

    example: Example
    n_files: int
    ranks: dict[str, int | None] = field(default_factory=dict)
    top_files: dict[str, list[str]] = field(default_factory=dict)


# ---- data ------------------------------------------------------------------------------------------


def load_examples(path: Path) -> list[Example]:
    """Read the JSONL data file (blank lines skipped).

    Raises:
        SystemExit: a line is not JSON or misses a required key (the message names the line).
    """
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(Example(row["id"], row["repo_dir"], row["query"], tuple(row["gold_files"])))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise SystemExit(f"{path}:{number}: not an example ({error!r}).") from error
    return examples


def fetch_sdist(requirement: str, cache: Path, log: Console | None = None) -> Path:
    """``name==version`` -> the unpacked top folder of its sdist under ``cache`` (downloaded once, with pip).

    Raises:
        SystemExit: not ``name==version``, pip cannot download it (offline, no sdist on PyPI), or the
            archive is not a ``.tar.gz`` with one top folder.
    """
    name, _, version = requirement.partition("==")
    if not name or not version:
        raise SystemExit(f"sdist:{requirement}: write sdist:<name>==<version>.")
    target = cache / f"{name}-{version}"
    marker = target / ".unpacked"
    if marker.exists():
        return Path(marker.read_text(encoding="utf-8")).resolve()
    target.mkdir(parents=True, exist_ok=True)
    if not list(target.glob("*.tar.gz")):
        if log is not None:
            log.print(f"downloading the sdist of {requirement} from PyPI (pip download) into {target}", highlight=False)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                   requirement, "-d", str(target)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"sdist:{requirement}: pip download failed: {done.stderr.strip()[-500:]}")
    archives = list(target.glob("*.tar.gz"))
    if len(archives) != 1:
        raise SystemExit(f"sdist:{requirement}: expected one .tar.gz in {target}, found {len(archives)}.")
    with tarfile.open(archives[0]) as archive:
        tops = {PurePosixPath(member.name).parts[0] for member in archive.getmembers() if member.name}
        if len(tops) != 1:
            raise SystemExit(f"sdist:{requirement}: {archives[0].name} does not hold one top folder.")
        archive.extractall(target, filter="data")
    top = (target / tops.pop()).resolve()
    marker.write_text(str(top), encoding="utf-8")
    return top


def resolve_repo_dir(spec: str, base: Path, sdist_cache: Path | None = None, log: Console | None = None) -> Path:
    """``site-packages:<name>`` -> the installed package's folder; ``sdist:<name>==<version>`` -> its unpacked
    sdist (:func:`fetch_sdist`, under ``sdist_cache``); anything else is a path (from ``base``).

    Raises:
        SystemExit: the package is not installed or is a single module, the sdist cannot be fetched, or
            the folder does not exist.
    """
    if spec.startswith(SDIST):
        cache = sdist_cache or Path(tempfile.gettempdir()) / "localization-sdists"
        return fetch_sdist(spec[len(SDIST) :], cache, log)
    if spec.startswith(SITE_PACKAGES):
        name = spec[len(SITE_PACKAGES) :]
        found = importlib.util.find_spec(name)
        locations = list(found.submodule_search_locations or []) if found else []
        if not locations:
            raise SystemExit(f"{spec}: no installed package {name!r} (pip list) or it is a single module.")
        return Path(locations[0]).resolve()
    folder = (base / spec).resolve()
    if not folder.is_dir():
        raise SystemExit(f"{spec}: {folder} is not a folder.")
    return folder


# ---- indexing and ranking --------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexStats:
    """One repository's indexing in this run: wall seconds, chunks in the index, texts really embedded."""

    name: str
    seconds: float
    chunks: int
    embedded: int


def build_index(repo: Path, cache_root: Path, embeddings, console: Console) -> tuple[RepoIndex, int, IndexStats]:
    """Index the ``.py`` files of ``repo`` under ``cache_root`` (unchanged files are skipped on re-runs).

    Returns the index, how many files it holds, and how long it took.
    """
    started = time.perf_counter()
    index = RepoIndex(repo, index_folder(cache_root, repo), embeddings)
    found = discover(repo, parse_extensions(".py"))
    report = index.update(found.files)
    stats = IndexStats(repo.name, time.perf_counter() - started, index.retriever.count(), report.embedded)
    console.print(
        f"indexed {repo.name}: {len(found.files)} files, {stats.chunks} chunks, "
        f"{stats.embedded} embedded, {stats.seconds:.1f} s",
        highlight=False,
    )
    return index, len(found.files), stats


def seconds_per_1k_chunks(stats: Sequence[IndexStats]) -> float | None:
    """Index wall time per 1,000 chunks over the repositories embedded from scratch in this run (None: all
    came from ``--cache-dir``, so there is no indexing time to report)."""
    fresh = [s for s in stats if s.embedded and s.embedded >= s.chunks // 2]
    chunks = sum(s.chunks for s in fresh)
    return round(1000 * sum(s.seconds for s in fresh) / chunks, 1) if chunks else None


def rank_files(index: RepoIndex, query: str, mode: str, hits: int, need: int) -> list[str]:
    """Distinct files for ``query``, best first (:meth:`RepoIndex.rank_files`: the sum of each file's best
    three hit scores among the top ``hits``, doubled until at least ``need`` files are ranked)."""
    total = index.retriever.count()
    depth = hits
    while True:
        files = [path for path, _ in index.rank_files(query, k=need, depth=depth, mode=mode)]
        if len(files) >= need or depth >= total:
            return files
        depth = min(2 * depth, total)


def gold_rank(ranked: Sequence[str], gold: Iterable[str]) -> int | None:
    """1-based rank of the worst-ranked gold file; None when a gold file is not ranked at all."""
    positions = {path: rank for rank, path in enumerate(ranked, start=1)}
    ranks = [positions.get(path) for path in gold]
    return None if any(rank is None for rank in ranks) else max(ranks)


def accuracy(ranks: Sequence[int | None], ks: Sequence[int]) -> dict[str, float]:
    """``{"acc@k": percent of examples whose gold rank is <= k}``, one decimal."""
    n = len(ranks) or 1
    return {f"acc@{k}": round(100 * sum(r is not None and r <= k for r in ranks) / n, 1) for k in ks}


def random_accuracy(outcomes: Sequence[Outcome], k: int) -> float:
    """Expected Acc@k (percent) of a random file order: P(all g gold files in the top k of N files).

    That is C(N-g, k-g) / C(N, k): the floor that tells how easy a set is, since small repositories make
    Acc@k high by themselves.
    """
    total = 0.0
    for outcome in outcomes:
        n, g = outcome.n_files, len(set(outcome.example.gold_files))
        if g <= k < n:
            total += math.comb(n - g, k - g) / math.comb(n, k)
        elif g <= k:
            total += 1.0  # the whole repository fits in the top k
    return 100 * total / (len(outcomes) or 1)


# ---- reporting -------------------------------------------------------------------------------------


def example_table(outcomes: Sequence[Outcome], modes: Sequence[str]) -> Table:
    """Per example: id, gold files, the gold rank per mode, and the primary mode's top 3 files."""
    table = Table(title="File localization per example (rank of the worst-ranked gold file; - = not ranked)")
    table.add_column("id")
    table.add_column("gold")
    for mode in modes:
        table.add_column(mode, justify="right")
    table.add_column(f"top 3 ({modes[0]})")
    for outcome in outcomes:
        ranks = [outcome.ranks[mode] for mode in modes]
        table.add_row(
            outcome.example.id,
            ", ".join(outcome.example.gold_files),
            *("-" if rank is None else str(rank) for rank in ranks),
            ", ".join(outcome.top_files[modes[0]][:3]),
        )
    return table


def summary_table(outcomes: Sequence[Outcome], modes: Sequence[str], ks: Sequence[int]) -> Table:
    """Acc@k per mode, with the published SWE-bench Lite Acc@5 figures for scale."""
    table = Table(title=f"File Acc@k, n={len(outcomes)} (percent)")
    table.add_column("retriever")
    for k in ks:
        table.add_column(f"acc@{k}", justify="right")
    for mode in modes:
        figures = accuracy([outcome.ranks[mode] for outcome in outcomes], ks)
        table.add_row(f"ours, {mode}", *(f"{figures[f'acc@{k}']:.1f}" for k in ks))
    table.add_row("random file order (expected)", *(f"{random_accuracy(outcomes, k):.1f}" for k in ks))
    for name, acc5 in PUBLISHED_ACC5.items():
        table.add_row(f"{name} (SWE-bench Lite)", *(f"{acc5:.1f}" if k == 5 else "" for k in ks))
    return table


# ---- main ------------------------------------------------------------------------------------------


def parse_ks(text: str) -> tuple[int, ...]:
    """``"1,3,5,10"`` -> ``(1, 3, 5, 10)``, sorted and positive."""
    try:
        ks = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--k takes integers separated by commas, not {text!r}.") from error
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError("--k values must be >= 1.")
    return ks


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="JSONL file of examples (see above)")
    parser.add_argument("--k", type=parse_ks, default=(1, 3, 5, 10), help="cut-offs for Acc@k [1,3,5,10]")
    parser.add_argument("--mode", choices=MODES, default="hybrid", help="retrieval mode of the JSON line [hybrid]")
    parser.add_argument("--all-modes", action="store_true", help="also rank with the other two modes")
    parser.add_argument("--hits", type=int, default=50, help="chunks retrieved per query before doubling [50]")
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep the indexes here across runs")
    parser.add_argument(
        "--sdist-cache", type=Path, default=None, help="where sdist: repos are unpacked [$TMPDIR/localization-sdists]"
    )
    parser.add_argument(
        "--embeddings",
        default=REPO_EMBEDDINGS,
        help=f"embeddings spec, as MY_LLM_EMBEDDINGS takes it [{REPO_EMBEDDINGS}: read-repo's]",
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for embedding [all cores]"
    )
    args = parser.parse_args(argv)
    if args.hits < 1 or args.threads < 1:
        parser.error("--hits and --threads must be >= 1.")
    return args


def load_embeddings(threads: int, spec: str = REPO_EMBEDDINGS):
    """The embedder of ``spec``, loaded now and using ``threads`` CPU threads (fewer when the machine is shared).

    The ONNX embedder (the default) takes its thread count before it loads; a sentence-transformers
    embedder gets it through torch after loading.
    """
    embeddings = get_embeddings(spec)
    if hasattr(embeddings, "threads"):
        embeddings.threads = threads
    embeddings.embed_query("warm up")  # loads the model
    if not hasattr(embeddings, "threads"):
        import torch

        torch.set_num_threads(threads)
    return embeddings


def run(
    args: argparse.Namespace, cache_root: Path, log: Console
) -> tuple[list[Outcome], tuple[str, ...], list[IndexStats]]:
    """Index each repository once, then rank files for every example in every requested mode."""
    examples = load_examples(args.data)
    modes = (args.mode, *(m for m in MODES if m != args.mode)) if args.all_modes else (args.mode,)
    embeddings = load_embeddings(args.threads, args.embeddings)
    indexes: dict[str, tuple[RepoIndex, int]] = {}
    outcomes, stats = [], []
    for example in examples:
        if example.repo_dir not in indexes:
            repo = resolve_repo_dir(example.repo_dir, args.data.parent, args.sdist_cache, log)
            index, n_files, built = build_index(repo, cache_root, embeddings, log)
            indexes[example.repo_dir] = (index, n_files)
            stats.append(built)
        index, n_files = indexes[example.repo_dir]
        outcome = Outcome(example, n_files)
        for mode in modes:
            ranked = rank_files(index, example.query, mode, args.hits, max(args.k))
            outcome.ranks[mode] = gold_rank(ranked, example.gold_files)
            outcome.top_files[mode] = ranked
        outcomes.append(outcome)
    return outcomes, modes, stats


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    log, console = Console(stderr=True), Console(width=160)
    if args.cache_dir is not None:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        outcomes, modes, stats = run(args, args.cache_dir, log)
    else:
        with tempfile.TemporaryDirectory(prefix="localization-") as tmp:
            outcomes, modes, stats = run(args, Path(tmp), log)
    console.print(example_table(outcomes, modes))
    console.print(summary_table(outcomes, modes, args.k))
    per_1k = seconds_per_1k_chunks(stats)
    console.print(
        f"index time: {per_1k} s per 1,000 chunks ({sum(s.chunks for s in stats)} chunks in {len(stats)} repositories)"
        if per_1k is not None
        else "index time: all indexes came from --cache-dir",
        highlight=False,
    )
    result = {"n": len(outcomes), **accuracy([outcome.ranks[args.mode] for outcome in outcomes], args.k)}
    result["index_s_per_1k_chunks"] = per_1k
    sys.stdout.flush()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
