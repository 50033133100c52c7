"""HybridRetriever against a real Chroma database and the real local embedder (all-MiniLM-L6-v2)."""

from __future__ import annotations

import shutil

import pytest

from my_llm import Settings, get_embeddings
from my_llm.retrieval import HybridRetriever, ScoredDocument, hybrid, reciprocal_rank_fusion, split_identifier, tokenize

pytestmark = pytest.mark.slow

QUERY = "how do I bake sourdough bread"
# Built so that both sides' orders are known: "both" shares the query's words and meaning, "lexical" shares
# its words in an unrelated sense, "semantic" shares its meaning in other words, the rest share neither.
FUSION_DOCS = {
    "both": "To bake sourdough bread, feed the starter, shape the dough and bake the bread in a hot oven.",
    "lexical": "Invoice 4411 from Bake Street Sourdough Bread Ltd: the rent of the warehouse is due on Friday.",
    "semantic": "Making a naturally leavened loaf at home: let the levain rise overnight, then put it in the oven.",
    "market": "The stock market fell on Tuesday after the central bank raised interest rates.",
    "cats": "Cats sleep for most of the day and hunt at dusk.",
    "football": "The football match ended in a draw after extra time.",
}

# Every document says "note", so a BM25 search for "note" scores them all and the filter alone decides.
FILTER_DOCS = [
    ("c1", "Caroline: note about the support group meeting", {"speaker": "Caroline", "session": 1}),
    ("m1", "Melanie: note about painting a sunrise by the lake", {"speaker": "Melanie", "session": 1}),
    ("c3", "Caroline: note about adoption agencies and counselling", {"speaker": "Caroline", "session": 3}),
    ("m4", "Melanie: note about the charity race with the kids", {"speaker": "Melanie", "session": 4}),
    ("c5", "Caroline: note about the pride parade and the mural", {"speaker": "Caroline", "session": 5, "image": True}),
    ("x6", "Narrator: note with no speaker, only a session", {"session": 6.5}),
    ("n0", "Nobody: note with no metadata at all", {}),
]
FILTERS = [
    ({"speaker": "Caroline"}, {"c1", "c3", "c5"}),
    ({"session": {"$gte": 3}}, {"c3", "m4", "c5", "x6"}),
    ({"$and": [{"speaker": "Caroline"}, {"session": {"$gte": 3}}]}, {"c3", "c5"}),
    ({"speaker": {"$in": ["Melanie", "Narrator"]}}, {"m1", "m4"}),
    ({"speaker": {"$nin": ["Caroline"]}}, {"m1", "m4", "x6", "n0"}),  # as Chroma: a missing key is "not in"
    ({"speaker": {"$ne": "Melanie"}}, {"c1", "c3", "c5", "x6", "n0"}),
    ({"$or": [{"session": {"$lt": 2}}, {"image": True}]}, {"c1", "m1", "c5"}),
    ({"session": {"$gt": 4, "$lte": 6.5}}, {"c5", "x6"}),
    ({"speaker": "Caroline", "session": 1}, {"c1"}),  # several keys in one dict: all of them
    ({"$and": [{"speaker": "Caroline"}]}, {"c1", "c3", "c5"}),  # a one-item $and is its item
    ({"$or": [{"speaker": "Melanie"}, {"$and": [{"speaker": "Caroline"}, {"image": True}]}]}, {"m1", "m4", "c5"}),
    ({"speaker": {"$in": ("Melanie",)}}, {"m1", "m4"}),  # a tuple stands for a list
    ({"session": {"$nin": [1, 3]}}, {"m4", "c5", "x6", "n0"}),
    ({"session": 1.0}, {"c1", "m1"}),  # 1 == 1.0
    ({"image": 1}, set()),  # True is not 1
    ({"image": {"$ne": 1}}, {doc for doc, _, _ in FILTER_DOCS}),
    ({"speaker": {"$gt": 0}}, set()),  # orderings compare numbers only
]


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    root = tmp_path_factory.mktemp("settings")
    return get_embeddings("local", settings=Settings(message_history=root, chroma_db_path=root))


class CountingEmbeddings:
    """Delegates to the real embedder and counts the documents it was asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.documents = 0

    def embed_documents(self, texts):
        self.documents += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


@pytest.fixture
def fusion_retriever(tmp_path, embeddings) -> HybridRetriever:
    retriever = HybridRetriever(tmp_path / "chroma", embeddings)
    retriever.add(list(FUSION_DOCS), list(FUSION_DOCS.values()), [{"n": i} for i in range(len(FUSION_DOCS))])
    return retriever


@pytest.fixture
def filter_retriever(tmp_path, embeddings) -> HybridRetriever:
    retriever = HybridRetriever(tmp_path / "chroma", embeddings)
    ids, texts, metadatas = zip(*FILTER_DOCS, strict=True)
    assert retriever.add(ids, texts, metadatas) == len(FILTER_DOCS)
    return retriever


def test_both_sides_order_as_constructed(fusion_retriever):
    bm25 = fusion_retriever.search(QUERY, k=10, mode="bm25")
    dense = fusion_retriever.search(QUERY, k=10, mode="dense")
    assert [hit.id for hit in bm25] == ["both", "lexical"]  # only these share a (stemmed) word with the query
    assert [hit.bm25_rank for hit in bm25] == [1, 2]
    assert [hit.id for hit in dense][:2] == ["both", "semantic"]
    assert len(dense) == len(FUSION_DOCS) and all(hit.bm25_rank is None for hit in dense)
    assert dense[0].score > dense[-1].score


def test_fusion_puts_the_document_top_in_both_lists_first(fusion_retriever):
    dense_ranks = {hit.id: hit.dense_rank for hit in fusion_retriever.search(QUERY, k=10, mode="dense")}
    hits = fusion_retriever.search(QUERY, k=10)
    assert hits[0].id == "both" and (hits[0].dense_rank, hits[0].bm25_rank) == (1, 1)
    by_id = {hit.id: hit for hit in hits}
    assert by_id["lexical"].bm25_rank == 2 and by_id["semantic"].bm25_rank is None
    assert by_id["semantic"].dense_rank == 2
    for hit in hits:  # the fused score is exactly RRF with k=60 over the ranks each side reported
        assert hit.dense_rank == dense_ranks[hit.id]
        expected = sum(1 / (60 + rank) for rank in (hit.dense_rank, hit.bm25_rank) if rank is not None)
        assert hit.score == pytest.approx(expected)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert hits[0].text == FUSION_DOCS["both"] and hits[0].metadata == {"n": 0}


def test_weights_can_favour_one_side(tmp_path, embeddings):
    retriever = HybridRetriever(tmp_path / "chroma", embeddings, dense_weight=0.0)
    retriever.add(list(FUSION_DOCS), list(FUSION_DOCS.values()), [{"n": i} for i in range(len(FUSION_DOCS))])
    assert [hit.id for hit in retriever.search(QUERY, k=2)] == ["both", "lexical"]


def test_reciprocal_rank_fusion_scores_and_ties():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "a"]])
    assert [doc for doc, _ in fused] == ["b", "a", "c"]
    assert dict(fused)["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert [doc for doc, _ in reciprocal_rank_fusion([["a"], ["b"]])] == ["a", "b"]  # tie: first list wins
    weighted = reciprocal_rank_fusion([["a", "b"], ["b", "a"]], weights=[1.0, 3.0], k=0)
    assert [doc for doc, _ in weighted] == ["b", "a"] and dict(weighted)["b"] == pytest.approx(1 / 2 + 3)
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])


@pytest.mark.parametrize(("where", "expected"), FILTERS)
def test_filter_applies_to_both_sides(filter_retriever, where, expected):
    for mode in ("bm25", "dense", "hybrid"):
        found = filter_retriever.search("note", k=50, where=where, mode=mode)
        assert {doc.id for doc in found} == expected, mode
        assert all(isinstance(doc, ScoredDocument) for doc in found)
    for doc in filter_retriever.search("note", k=50, where=where):  # hybrid: each side saw the filter
        assert doc.dense_rank is not None and doc.bm25_rank is not None


def test_bm25_side_asks_chroma_once_per_filter_until_the_collection_changes(filter_retriever, monkeypatch):
    filter_retriever.count()  # opens the collection
    collection, asked = filter_retriever._collection, []
    get = collection.get

    def counting_get(*args, **kwargs):
        if kwargs.get("where") is not None:
            asked.append(kwargs["where"])
        return get(*args, **kwargs)

    monkeypatch.setattr(collection, "get", counting_get)
    where = {"speaker": "Caroline"}
    for query in ("note", "support group", "adoption agencies"):
        assert filter_retriever.search(query, k=1, where=where, mode="bm25")[0].metadata["speaker"] == "Caroline"
    assert asked == [where]
    filter_retriever.search("note", k=3, where={"session": {"$gte": 3}}, mode="bm25")
    assert asked == [where, {"session": {"$gte": 3}}]
    filter_retriever.add(["c7"], ["Caroline: a brand new note about pottery"], [{"speaker": "Caroline"}])
    assert filter_retriever.search("pottery", k=1, where=where, mode="bm25")[0].id == "c7"
    assert asked == [where, {"session": {"$gte": 3}}, where]


def test_unfiltered_search_sees_every_document(filter_retriever):
    for mode in ("bm25", "dense", "hybrid"):
        assert len(filter_retriever.search("note", k=50, mode=mode)) == len(FILTER_DOCS)


def test_filter_excludes_a_document_that_ranks_first_without_it(filter_retriever):
    query = "painting a sunrise by the lake"
    assert filter_retriever.search(query, k=1, mode="bm25")[0].id == "m1"
    assert filter_retriever.search(query, k=1, mode="dense")[0].id == "m1"
    hits = filter_retriever.search(query, k=3, where={"speaker": "Caroline"})
    assert hits and all(hit.metadata["speaker"] == "Caroline" for hit in hits)


def test_empty_index_returns_nothing_and_creates_nothing(tmp_path, embeddings):
    retriever = HybridRetriever(tmp_path / "chroma", embeddings)
    for mode in ("hybrid", "dense", "bm25"):
        assert retriever.search("anything", k=5, where={"speaker": "x"}, mode=mode) == []
    assert retriever.count() == 0 and retriever.ids() == set()
    retriever.delete(["nope"])
    assert not (tmp_path / "chroma").exists()
    assert retriever.add([], [], []) == 0


def test_everything_deleted_reads_as_empty(filter_retriever):
    filter_retriever.delete([doc for doc, _, _ in FILTER_DOCS])
    assert filter_retriever.count() == 0
    assert filter_retriever.search("note", k=5) == []


def test_add_is_idempotent_and_does_not_re_embed(tmp_path, embeddings):
    counting = CountingEmbeddings(embeddings)
    retriever = HybridRetriever(tmp_path / "chroma", counting)
    ids, texts, metadatas = zip(*FILTER_DOCS[:3], strict=True)
    assert retriever.add(ids, texts, metadatas) == 3
    assert retriever.add(ids, texts, metadatas) == 0
    assert retriever.count() == 3 and counting.documents == 3
    ids, texts, metadatas = zip(*FILTER_DOCS[2:4], strict=True)
    assert retriever.add(ids, texts, metadatas) == 1
    assert retriever.count() == 4 and counting.documents == 4
    assert retriever.ids() == {"c1", "m1", "c3", "m4"}
    reopened = HybridRetriever(tmp_path / "chroma", counting)
    assert reopened.count() == 4 and reopened.search("charity race", k=1, mode="bm25")[0].id == "m4"


def test_embed_texts_are_embedded_but_texts_are_stored(tmp_path, embeddings):
    retriever = HybridRetriever(tmp_path / "chroma", embeddings)
    retriever.add(["a", "b"], ["It was great!", "Stocks fell."], [{}, {}], embed_texts=["A sourdough loaf.", "x"])
    hit = retriever.search("baking bread", k=1, mode="dense")[0]
    assert (hit.id, hit.text, hit.metadata) == ("a", "It was great!", {})
    assert retriever.search("sourdough", k=5, mode="bm25") == []  # BM25 indexes the stored text


def test_delete_removes_from_both_sides(filter_retriever):
    assert filter_retriever.search("charity race", k=1, mode="bm25")[0].id == "m4"
    filter_retriever.delete(["m4", "not-there"])
    assert filter_retriever.count() == len(FILTER_DOCS) - 1 and "m4" not in filter_retriever.ids()
    for mode in ("bm25", "dense", "hybrid"):
        assert "m4" not in {hit.id for hit in filter_retriever.search("charity race", k=50, mode=mode)}


def test_bm25_index_is_built_once_and_rebuilt_after_a_change(filter_retriever, monkeypatch):
    builds = []

    class CountingIndex(hybrid.Bm25Index):
        def __init__(self, *args, **kwargs) -> None:
            builds.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(hybrid, "Bm25Index", CountingIndex)
    for query in ("note", "support group", "charity race"):
        filter_retriever.search(query, k=3)
    assert len(builds) == 1
    filter_retriever.add(["n7"], ["Melanie: a brand new note about pottery"], [{"speaker": "Melanie"}])
    assert filter_retriever.search("pottery", k=1, mode="bm25")[0].id == "n7"
    assert len(builds) == 2


def test_identifier_splitting_finds_code_by_its_words(tmp_path, embeddings):
    retriever = HybridRetriever(tmp_path / "chroma", embeddings, collection="code")
    docs = {
        "camel": "def parseConfigFile(path): return load(path)",
        "snake": "result = parse_config_file(settings_path)",
        "other": "def render_template(name): return html",
        "words": "The weather today is sunny with a light breeze.",
    }
    retriever.add(list(docs), list(docs.values()), [{"path": f"{doc}.py"} for doc in docs])
    assert {hit.id for hit in retriever.search("parse config", k=2, mode="bm25")} == {"camel", "snake"}
    assert split_identifier("parseConfigFile") == ["parse", "Config", "File"]
    assert split_identifier("HTTPServer_v2") == ["HTTP", "Server", "v", "2"]
    assert split_identifier("plain") == []
    terms = tokenize("The parse_config_file of the Users")
    assert {"pars", "config", "file", "user"} <= set(terms) and "the" not in terms


@pytest.mark.parametrize(
    "where",
    [
        {"speaker": {"$regex": "Car"}},
        {"$and": {"speaker": "Caroline"}},
        {"$or": []},
        {"session": {"$gte": "3"}},
        {"session": {"$gt": True}},  # passes Chroma's Python checks, rejected by its query engine
        {"$in": ["Caroline"]},  # likewise
        {"speaker": ["Caroline"]},
        {"speaker": {"$in": []}},
        {"speaker": {"$in": ["Caroline", 1]}},
        {"speaker": None},
        {"speaker": {}},
        {"$not": {"speaker": "Caroline"}},
        {},
        "speaker = Caroline",
    ],
)
def test_malformed_filter_raises(filter_retriever, where):
    for mode in ("bm25", "dense", "hybrid"):
        with pytest.raises(ValueError, match="^Invalid filter ") as raised:
            filter_retriever.search("note", where=where, mode=mode)
        assert type(raised.value) is ValueError and repr(where) in str(raised.value)


def test_malformed_filter_raises_on_an_empty_index(tmp_path, embeddings):
    retriever = HybridRetriever(tmp_path / "chroma", embeddings)
    with pytest.raises(ValueError, match=r"Invalid filter \{'speaker': \['Caroline'\]\}"):
        retriever.search("note", where={"speaker": ["Caroline"]})


def test_unknown_mode_and_bad_arguments_raise(filter_retriever, tmp_path, embeddings):
    with pytest.raises(ValueError, match="mode 'fuzzy'"):
        filter_retriever.search("note", mode="fuzzy")
    with pytest.raises(ValueError, match="k must be"):
        filter_retriever.search("note", k=0)
    with pytest.raises(ValueError, match="'tags'"):
        filter_retriever.add(["t"], ["text"], [{"tags": ["a", "b"]}])
    with pytest.raises(ValueError, match="'owner'"):
        filter_retriever.add(["t"], ["text"], [{"owner": None}])
    with pytest.raises(ValueError, match="same length"):
        filter_retriever.add(["t", "u"], ["text"], [{}])
    with pytest.raises(ValueError, match="Collection name"):
        HybridRetriever(tmp_path / "x", embeddings, collection="m")
    assert filter_retriever.count() == len(FILTER_DOCS)  # nothing was written by the failed adds


CONTEXT_DOCS = [  # "answer" quotes "question" as its context; only "answer" shares words with the query
    ("question", "Melanie: What are you up to this weekend?", {"context": "", "kind": "turn"}),
    ("answer", "Caroline: Baking sourdough bread in a hot oven.", {"context": "question", "kind": "turn"}),
    ("other", "Bob: The football match ended in a draw.", {"context": "answer", "kind": "other"}),
]


@pytest.mark.parametrize(
    ("where", "first"), [(None, "question"), ({"kind": "turn"}, "question"), ({"context": {"$ne": ""}}, "answer")]
)
def test_context_credit_lifts_the_turn_a_matching_document_quotes(tmp_path, embeddings, where, first):
    """Only BM25 counts (dense weight 0) and each side offers one candidate, so "question" is in neither list:
    it joins through "answer"'s context, with twice "answer"'s score, unless the filter excludes it."""
    retriever = HybridRetriever(
        tmp_path / "chroma", embeddings, dense_weight=0.0, candidates=1, context_key="context", context_weights=(2.0,)
    )
    ids, texts, metadatas = zip(*CONTEXT_DOCS, strict=True)
    retriever.add(ids, texts, metadatas)
    hits = retriever.search(QUERY, k=1, where=where)
    assert [hit.id for hit in hits] == [first]
    answer_score = 1 / (60 + 1)  # BM25 rank 1, weight 1
    if first == "question":
        assert hits[0].score == pytest.approx(2 * answer_score)
        assert (hits[0].dense_rank, hits[0].bm25_rank) == (None, None)
        assert hits[0].text == CONTEXT_DOCS[0][1] and hits[0].metadata["kind"] == "turn"
    plain = HybridRetriever(tmp_path / "chroma", embeddings, dense_weight=0.0, candidates=1)
    assert [hit.id for hit in plain.search(QUERY, k=1, where=where)] == ["answer"]  # no credit without the key


def test_negative_context_weight_raises(tmp_path, embeddings):
    with pytest.raises(ValueError, match="weights"):
        HybridRetriever(tmp_path / "chroma", embeddings, context_key="context", context_weights=(0.3, -0.1))


class RecordingEmbeddings(CountingEmbeddings):
    """Also records the queries it was asked to embed."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.queries: list[str] = []

    def embed_query(self, text):
        self.queries.append(text)
        return self.inner.embed_query(text)


@pytest.mark.parametrize(
    ("query", "named", "dense_query"),
    [
        ("What is Caroline's note about painting?", "Caroline", "What is note about painting?"),
        ("Melanie: a note about painting", "Melanie", ": a note about painting"),
        ("Did Caroline or Melanie note painting?", None, "Did Caroline or Melanie note painting?"),  # two: no prior
        ("A note about painting by Carolines", None, "A note about painting by Carolines"),  # not a whole word
    ],
)
def test_speaker_prior_favours_the_named_speaker_and_leaves_the_name_out_of_the_dense_query(
    tmp_path, embeddings, query, named, dense_query
):
    """BM25 alone decides the fused scores (dense weight 0); a document by the one speaker the query names
    gets (1 + weight) times the score it has without the prior, the others keep theirs."""
    recording = RecordingEmbeddings(embeddings)
    favoured = HybridRetriever(
        tmp_path / "chroma", recording, dense_weight=0.0, speaker_key="speaker", speaker_weight=3.0
    )
    ids, texts, metadatas = zip(*FILTER_DOCS, strict=True)
    favoured.add(ids, texts, metadatas)
    plain = {
        hit.id: hit.score for hit in HybridRetriever(tmp_path / "chroma", embeddings, dense_weight=0.0).search(query)
    }
    hits = favoured.search(query)
    assert recording.queries == [dense_query]
    assert {hit.id for hit in hits} == set(plain)
    for hit in hits:
        factor = 4.0 if named and hit.metadata.get("speaker") == named else 1.0
        assert hit.score == pytest.approx(factor * plain[hit.id])
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    if named == "Caroline":  # "painting" is Melanie's: first without the prior, a Caroline note first with it
        assert max(plain, key=plain.get) == "m1" and hits[0].id.startswith("c")
    recording.queries.clear()
    favoured.search(query, mode="dense")
    assert recording.queries == [query]  # only hybrid mode splits the query


def test_negative_speaker_weight_raises(tmp_path, embeddings):
    with pytest.raises(ValueError, match="weights"):
        HybridRetriever(tmp_path / "chroma", embeddings, speaker_key="speaker", speaker_weight=-0.3)


def test_drop_deletes_the_collection_and_a_new_index_can_live_in_the_same_folder(tmp_path, embeddings):
    """After drop() (which closes the client) the folder can be deleted and an index made there again; without
    the close, chromadb's cached system for the folder makes the new one fail ("readonly database")."""
    ids, texts, metadatas = zip(*FILTER_DOCS, strict=True)
    first = HybridRetriever(tmp_path / "chroma", embeddings)
    first.add(ids, texts, metadatas)
    assert first.count() == len(ids)
    first.drop()
    assert first.count() == 0  # reopened: the collection is gone
    first.drop()  # dropping a missing collection is not an error
    shutil.rmtree(tmp_path / "chroma")
    again = HybridRetriever(tmp_path / "chroma", embeddings)
    again.add(ids[:2], texts[:2], metadatas[:2])
    assert again.count() == 2 and {hit.id for hit in again.search(texts[0], k=2)} == set(ids[:2])
