"""Knowledge base: loading and chunking, idempotent ingestion into a real persistent Chroma with the
real encoder, and answers with their sources."""

from __future__ import annotations

import shutil

import pytest

from assistant.knowledge.answer import make_answerer
from assistant.knowledge.documents import KnowledgeBaseError, chunk_document, load_knowledge_base
from assistant.knowledge.loaders import SourceText
from assistant.knowledge.store import ingest, make_embeddings, open_store
from tests.conftest import base_settings


def test_sample_knowledge_base_meets_the_bar(settings):
    loaded = load_knowledge_base(settings.kb_dir, pii_allow=tuple(settings.kb_pii_allow_domains))
    assert not loaded.errors, [(f.path, f.error) for f in loaded.errors]
    docs = loaded.docs
    faq_ids = {d.metadata["source"] for d in docs if d.metadata["kind"] == "faq"}
    doc_files = {d.metadata["source"] for d in docs if d.metadata["kind"] == "doc"}
    assert len(faq_ids) >= 30
    assert len({f.split("/")[-1] for f in doc_files}) >= 5
    assert {d.metadata["lang"] for d in docs} == {"zh", "en"}
    assert sum(loaded.pii.values()) == 0, "the sample holds no personal data; support@cloudmax.example is allowed"


def test_markdown_chunks_keep_their_heading_path(tmp_path):
    text = "# Guide\n\nintro\n\n## Billing\n\n### Cards\n\nWe take Visa.\n\n## Refunds\n\n" + "para.\n\n" * 300
    docs = chunk_document(SourceText(source="docs/en/guide.md", lang="en", title="Guide", text=text))
    headings = [d.metadata["heading"] for d in docs]
    assert "Billing > Cards" in headings and "Refunds" in headings
    assert all(d.metadata["title"] == "Guide" for d in docs)
    refunds = [d for d in docs if d.metadata["heading"] == "Refunds"]
    assert len(refunds) > 1, "a long section is split"
    assert refunds[0].metadata["answer"].split("\n\n")[-1] == refunds[1].metadata["answer"].split("\n\n")[0], \
        "consecutive chunks overlap by a paragraph"


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"\xff\xfe\x00binary\x00", "binary"),
    (b"\x81\x30\x81\x30\xff\xff\xff", "not UTF-8 or GB18030"),
])
def test_bad_files_are_reported_by_name(tmp_path, content, message):
    (tmp_path / "bad.md").write_bytes(content)
    (tmp_path / "good.md").write_text("# Good\n\nFine text.")
    loaded = load_knowledge_base(tmp_path)
    assert [(f.path, message in f.error) for f in loaded.errors] == [("bad.md", True)]
    assert [d.metadata["source"] for d in loaded.docs] == ["good.md"]


def test_faq_without_ids_is_reported(tmp_path):
    (tmp_path / "faq.yml").write_text("faqs:\n  - question: {en: hi}\n    answer: {en: there}\n")
    assert "needs an 'id'" in load_knowledge_base(tmp_path).errors[0].error


def test_missing_knowledge_base_folder_is_an_error(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="does not exist"):
        load_knowledge_base(tmp_path / "nope")


@pytest.fixture(scope="module")
def small_kb(tmp_path_factory, settings):
    root = tmp_path_factory.mktemp("kb")
    kb = root / "knowledge_base"
    (kb / "docs" / "en").mkdir(parents=True)
    shutil.copy(settings.kb_dir / "faq.yml", kb / "faq.yml")
    shutil.copy(settings.kb_dir / "docs" / "en" / "data-export.md", kb / "docs" / "en" / "data-export.md")
    s = base_settings(kb_dir=kb, var_dir=root / "var")
    embeddings = make_embeddings(s)
    return s, embeddings


def test_ingest_is_idempotent_and_replaces_changed_files(small_kb):
    s, embeddings = small_kb
    store = open_store(s, embeddings)
    first = ingest(s, store)
    assert first.added == first.documents > 0
    again = ingest(s, open_store(s, embeddings))  # a new client on the same directory
    assert (again.added, again.removed, again.unchanged) == (0, 0, first.documents)
    doc = s.kb_dir / "docs" / "en" / "data-export.md"
    doc.write_text(doc.read_text(encoding="utf-8").replace("7 days", "9 days"), encoding="utf-8")
    changed = ingest(s, store)
    assert changed.added == changed.removed > 0
    assert len(store.ids()) == changed.documents


def test_answers_cite_their_source_in_the_askers_language(small_kb):
    s, embeddings = small_kb
    ingest(s, open_store(s, embeddings))
    answerer = make_answerer(s, embeddings)
    zh = answerer.answer("退款一般多久能到账？", "zh")
    assert not zh.refused and zh.citations[0].source.startswith("faq.yml#") and "工作日" in zh.text
    en = answerer.answer("How long is a data export download link valid?", "en")
    assert not en.refused and "7 days" in en.text, en
    assert all(c.source for c in en.citations) and en.score >= s.kb_min_score
    assert answerer.answer("", "en").refused


def test_sentence_vectors_are_built_once_per_chunk_and_reused(small_kb, tmp_path):
    """Each sentence of a multi-sentence chunk gets its own vector (the reranker reads the best one);
    a rebuild embeds only the chunks it has not seen, and the vectors survive a save and a load."""
    import numpy as np

    from assistant.knowledge.sentences import SentenceVectors

    s, embeddings = small_kb
    chunks = {
        "pricing": ("Plans: Free costs nothing. Pro costs ¥45 a month. Business costs ¥99 a month per seat.", "en"),
        "single": ("Exports are ready within seven days.", "en"),
    }
    embedded: list[str] = []

    def embed(texts):
        embedded.extend(texts)
        return embeddings.embed_documents(texts)

    built = SentenceVectors.build(chunks, embed)
    assert len(built) == 3 and len(embedded) == 3 and built.of("single") is None
    question = np.asarray(embeddings.embed_query("How much is Pro per month?"))
    cosines = built.of("pricing").astype(np.float32) @ question
    assert int(cosines.argmax()) == 1 and built.best("pricing", question) == pytest.approx(float(cosines.max()))
    assert built.best("single", question) is None
    built.save(tmp_path)
    loaded = SentenceVectors.load(tmp_path)
    assert loaded.ids == built.ids and np.array_equal(loaded.vectors, built.vectors)
    assert SentenceVectors.load(tmp_path / "nothing-here") is None

    embedded.clear()
    more = dict(chunks, refunds=("Refunds take five days. Annual plans are refunded pro rata.", "en"))
    rebuilt = SentenceVectors.build(more, embed, previous=loaded)
    assert embedded == ["Refunds take five days.", "Annual plans are refunded pro rata."]
    assert np.array_equal(rebuilt.of("pricing"), built.of("pricing"))



def test_known_sentences_serve_stored_vectors_and_embed_only_the_rest(small_kb):
    """The generator's passage embedder takes what ingestion stored, by sentence text (rows of
    multi-sentence chunks, the vector of a one-sentence chunk), and sends only the others to the
    encoder; a chunk whose text no longer matches its rows is not trusted."""
    import numpy as np

    from assistant.knowledge.sentences import KnownSentences, SentenceVectors, StoredFirstEmbedder

    s, embeddings = small_kb
    chunks = {"pricing": ("Plans: Free costs nothing. Pro costs ¥45 a month.", "en"),
              "single": ("Exports are ready within seven days.", "en"),
              "stale": ("Refunds take five days. Annual plans are refunded pro rata.", "en")}
    built = SentenceVectors.build(chunks, embeddings.embed_documents)
    chunk_vectors = {i: np.asarray(v, dtype=np.float32) for i, v in
                     zip(chunks, embeddings.embed_documents([t for t, _ in chunks.values()]))}
    # "stale" was edited after its vectors were stored: now three sentences against two rows
    now = dict(chunks, stale=("Refunds take five days. Annual plans are refunded pro rata. Fees are kept.", "en"))
    known = KnownSentences(built, now, chunk_vectors)
    assert "Pro costs ¥45 a month." in known and "Exports are ready within seven days." in known
    assert "Refunds take five days." not in known and len(known) == 3

    sent: list[str] = []

    def encoder(texts):
        sent.extend(texts)
        return embeddings.embed_documents(texts)

    embed = StoredFirstEmbedder(known, encoder)
    texts = ["Pro costs ¥45 a month.", "Refunds take five days.", "Exports are ready within seven days."]
    got = embed(texts)
    assert sent == ["Refunds take five days."] and (embed.hits, embed.misses) == (2, 1)
    fresh = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    assert got.shape == fresh.shape and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (np.sum(got * fresh, axis=1) > 0.999).all()   # float16 storage, the same vectors


def test_ingestion_keeps_sentence_vectors_beside_the_chunks(small_kb):
    from assistant.knowledge.retrieval import DocStore, index_dir

    s, embeddings = small_kb
    ingest(s, open_store(s, embeddings))
    store = DocStore.load(index_dir(s))
    assert store.sentences is not None and set(store.sentences.ids) == set(store.ids)
    with_sentences = [i for i in store.ids if store.sentences.of(i) is not None]
    assert len(with_sentences) > len(store.ids) / 2
    # turning them off rebuilds the index without them at the next ingest (nothing else changed)
    off = s.model_copy(update={"kb_sentence_vectors": False})
    ingest(off, open_store(off, embeddings))
    assert DocStore.load(index_dir(off)).sentences is None
