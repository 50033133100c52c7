"""Reciprocal rank fusion: one ranking from several, using ranks only (no score calibration).

Cormack, Clarke & Büttcher (2009), "Reciprocal rank fusion outperforms Condorcet and individual rank
learning methods", SIGIR '09, pp. 758-759: ``score(d) = sum_i 1 / (k + rank_i(d))`` with k = 60, found
in the paper to work well across collections. Here each list may carry a weight ``w_i`` (1 in the paper).
"""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: int = RRF_K
) -> list[tuple[str, float]]:
    """Fuse ranked id lists (best first): ``score(d) = sum_i weights[i] / (k + rank_i(d))``, ranks 1-based.

    Args:
        rankings: lists of document ids, each best first; a document absent from a list gets nothing from it.
        weights: one weight per list (default 1.0 each).
        k: the RRF constant (60 in Cormack et al. 2009); larger k flattens the advantage of top ranks.

    Returns:
        ``(id, score)`` pairs, best first; ties go to the document seen first (earliest list, best rank).

    Raises:
        ValueError: ``weights`` and ``rankings`` differ in length.
    """
    weights = weights or [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings.")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    order: dict[str, int] = {}
    for ranking in rankings:
        for doc_id in ranking:
            order.setdefault(doc_id, len(order))
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))
