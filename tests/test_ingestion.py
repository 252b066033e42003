"""Ingestion of every supported format into a real Chroma store with the real encoder: FAQ files
(CSV, JSON, JSONL, SQLite), HTML, PDF, plain text in GB18030, PII masking, duplicates, bad files
reported by name with the rest still loaded, and idempotent re-ingestion."""

from __future__ import annotations

import json
import sqlite3

import pytest

from assistant.knowledge.cleaning import Deduplicator, clean
from assistant.knowledge.pii import PiiMasker
from assistant.knowledge.retrieval import load_searcher
from assistant.knowledge.store import ingest, make_embeddings, open_store
from tests.conftest import base_settings


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with real text objects (Helvetica), enough for a text extractor."""
    ops = ["BT /F1 12 Tf 72 720 Td 16 TL"] + [f"({ln}) Tj T*" for ln in lines] + ["ET"]
    stream = "\n".join(ops).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture(scope="module")
def embeddings(settings):
    return make_embeddings(settings)


@pytest.fixture
def kb(tmp_path):
    root = tmp_path / "kb"
    (root / "docs" / "en").mkdir(parents=True)
    (root / "faq.csv").write_text("id,question,answer\nhours,When is support open?,Support is open 24 hours Monday to Friday.\n"
                                  "vault,What is the Vault?,The Vault is an end-to-end encrypted folder on Pro plans.\n")
    (root / "faq.jsonl").write_text(json.dumps({"id": "zh-hours", "question": "客服几点上班？", "answer": "中文客服每天 9:00–21:00 在线。"},
                                               ensure_ascii=False) + "\n")
    # the same entry again, in another file: an exact duplicate
    (root / "more.json").write_text(json.dumps({"faqs": [{"id": "dup", "question": "When is support open?",
                                                           "answer": "Support is open 24 hours Monday to Friday."}]}))
    with sqlite3.connect(root / "legacy.sqlite") as conn:
        conn.execute("CREATE TABLE faq (id TEXT, question TEXT, answer TEXT, lang TEXT)")
        conn.execute("INSERT INTO faq VALUES ('sso', 'Do you support SSO?', 'Enterprise plans support SAML single sign-on.', 'en')")
    (root / "docs" / "en" / "guide.html").write_text(
        "<html><head><title>Desktop guide</title><script>var x=1;</script></head><body><nav>Home | Pricing</nav>"
        "<h1>Desktop guide</h1><h2>Selective sync</h2><p>Choose folders in Preferences &gt; Sync.</p>"
        "<p>Questions? Mail jane.doe@gmail.com or call 13812345678. Or support@cloudmax.example.</p>"
        "<footer>Copyright 2026 CloudMax</footer></body></html>")
    (root / "docs" / "en" / "sla.pdf").write_bytes(minimal_pdf(
        ["Service levels", "Pro plans have a monthly uptime commitment of 99.9 percent.",
         "Credits are 10 percent of the monthly fee."]))
    (root / "docs" / "notice.txt").write_bytes("服务公告\n\n系统将于周六凌晨 2 点进行维护，预计持续 30 分钟。".encode("gb18030"))
    # bad files
    (root / "docs" / "empty.md").write_text("")
    (root / "docs" / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (root / "bad.csv").write_text("q,a\nhello,world\n")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    return root


def run_ingest(kb, tmp_path, embeddings, **overrides):
    s = base_settings(kb_dir=kb, var_dir=tmp_path / "var", **overrides)
    report = ingest(s, open_store(s, embeddings))
    return s, report


def test_every_format_is_ingested_and_bad_files_are_reported(kb, tmp_path, embeddings):
    s, report = run_ingest(kb, tmp_path, embeddings)
    errors = {f.path: f.error for f in report.errors}
    assert set(errors) == {"docs/empty.md", "docs/binary.md", "bad.csv", "broken.pdf"}, errors
    assert "empty" in errors["docs/empty.md"]
    assert "binary" in errors["docs/binary.md"]
    assert "missing column" in errors["bad.csv"] and "'answer'" in errors["bad.csv"]
    assert "PDF" in errors["broken.pdf"]
    by_path = {f.path: f for f in report.files}
    for ok in ("faq.csv", "faq.jsonl", "legacy.sqlite", "docs/en/guide.html", "docs/en/sla.pdf", "docs/notice.txt"):
        assert by_path[ok].chunks > 0 and not by_path[ok].error, ok
    assert by_path["more.json"].duplicates == 1 and by_path["more.json"].chunks == 0
    assert "SKIPPED bad.csv" in report.summary()

    searcher = load_searcher(s, embeddings)
    texts = {h.unit: h.doc.page_content for h in searcher.search("selective sync folders", "en", "hybrid", k=3)}
    guide = next(t for u, t in texts.items() if u.startswith("docs/en/guide.html"))
    assert "[EMAIL]" in guide and "[PHONE]" in guide and "jane.doe" not in guide and "13812345678" not in guide
    assert "support@cloudmax.example" in guide, "allow-listed company address is kept"
    assert "var x" not in guide and "Copyright" not in guide and "Home | Pricing" not in guide
    assert by_path["docs/en/guide.html"].pii == {"email": 1, "phone": 1}
    pdf = searcher.search("uptime commitment", "en", "hybrid", k=1)[0]
    assert pdf.doc.metadata["source"] == "docs/en/sla.pdf" and "99.9" in pdf.doc.page_content
    zh = searcher.search("周六维护多久", "zh", "hybrid", k=1)[0]
    assert zh.doc.metadata["source"] == "docs/notice.txt" and "30 分钟" in zh.doc.page_content


def test_reingest_is_idempotent_and_failures_keep_the_previous_chunks(kb, tmp_path, embeddings):
    s, first = run_ingest(kb, tmp_path, embeddings)
    _, again = run_ingest(kb, tmp_path, embeddings)
    assert (again.added, again.removed, again.unchanged) == (0, 0, first.documents)
    (kb / "faq.csv").write_text("id,question,answer\nhours,When is support open?,Support is open every day, all day.\n")
    _, changed = run_ingest(kb, tmp_path, embeddings)
    # old 'hours' and 'vault' go; the new 'hours' comes in, and so does more.json's entry, which was a
    # duplicate of the old 'hours' and is not one any more
    assert changed.added == 2 and changed.removed == 2
    # the HTML file breaks: its chunks stay searchable, the error is reported
    (kb / "docs" / "en" / "guide.html").write_bytes(b"\x00\x01binary now")
    _, broken = run_ingest(kb, tmp_path, embeddings)
    assert "docs/en/guide.html" in {f.path for f in broken.errors}
    assert broken.removed == 0
    units = [h.unit for h in load_searcher(s, embeddings).search("selective sync", "en", "hybrid", k=3)]
    assert any(u.startswith("docs/en/guide.html") for u in units)


def test_oversized_files_are_skipped_with_the_limit_named(kb, tmp_path, embeddings):
    (kb / "docs" / "en" / "big.md").write_text("# Big\n\n" + "word " * 5000)
    _, report = run_ingest(kb, tmp_path, embeddings, kb_max_file_mb=0.01)
    assert "ASSISTANT_KB_MAX_FILE_MB" in {f.path: f.error for f in report.errors}["docs/en/big.md"]


def test_pii_masking_rules():
    masker = PiiMasker(["cloudmax.example"])
    text, counts = masker.mask("身份证 11010519491231002X 卡 4111 1111 1111 1111 电话 +86 138 1234 5678 "
                               "订单 CM100001 金额 1234567890123456 ops@cloudmax.example")
    assert "[ID_CARD]" in text and "[BANK_CARD]" in text and "[PHONE]" in text
    assert "CM100001" in text and "1234567890123456" in text, "numbers failing Luhn are not card numbers"
    assert "ops@cloudmax.example" in text
    assert counts == {"id_card": 1, "bank_card": 1, "phone": 1}


def test_cleaning_and_near_duplicates():
    assert clean("a\u200bb  c\r\n\n\n\nAll rights reserved.\n返回顶部\nd") == "ab c\n\nd"
    dedup = Deduplicator(threshold=0.8)
    base = ("CloudMax encrypts every file with AES-256 at rest and TLS 1.3 in transit. Vault folders on Pro and "
            "above add end-to-end encryption, and staff can only access an account with the customer's permission, "
            "which is logged. Data centres are in Shanghai, Beijing, Frankfurt and Virginia.")
    assert dedup.seen(base) is None
    assert dedup.seen(base.replace("every file", "all files")) == "near"
    assert dedup.seen("A completely different sentence about refunds and invoices.") is None
