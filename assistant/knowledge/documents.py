"""Turn the knowledge-base folder into LangChain documents (chunks).

FAQ entries become one chunk per language (question + curated answer). Documents are split at
headings into sections that keep their heading path; long sections are cut at paragraph boundaries
with one paragraph of overlap. Text is cleaned and PII-masked; exact and near duplicates dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.documents import Document

from assistant.knowledge.cleaning import Deduplicator, clean
from assistant.knowledge.loaders import (DOC_SUFFIXES, FAQ_SUFFIXES, FaqRecord, LoadError, SourceText,
                                         load_bilingual_faq_yaml, load_document, load_faq_file)
from assistant.knowledge.pii import PiiMasker

LANGS = ("zh", "en")
MAX_CHUNK_CHARS = 900
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


class KnowledgeBaseError(ValueError):
    """A knowledge-base file that cannot be used; the message says which and why."""


def doc_id(doc: Document) -> str:
    md = doc.metadata
    fields = (md["source"], md.get("lang"), md.get("title"), md.get("heading"), md.get("answer"), doc.page_content,
              str(md.get("suspicious")))
    key = "\x00".join(str(f) for f in fields)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _sections(text: str) -> list[tuple[list[str], str]]:
    """Split Markdown into (heading path, body) pairs."""
    path: list[str] = []
    body: list[str] = []
    out = []
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            if "".join(body).strip():
                out.append((path[:], "\n".join(body).strip()))
            body = []
            level = len(m.group(1))
            path = path[: level - 1] + [m.group(2).strip()]
        else:
            body.append(line)
    if "".join(body).strip():
        out.append((path[:], "\n".join(body).strip()))
    return out


def _split_long(body: str) -> list[str]:
    if len(body) <= MAX_CHUNK_CHARS:
        return [body]
    paras = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    chunks, current = [], []
    for p in paras:
        if current and len("\n\n".join(current + [p])) > MAX_CHUNK_CHARS:
            chunks.append("\n\n".join(current))
            current = current[-1:]  # one paragraph of overlap
        current.append(p)
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def chunk_document(src: "SourceText") -> list[Document]:
    """Heading-aware chunks of one document; each keeps its title and heading path."""
    sections = _sections(src.text)
    title = next((p[0] for p, _ in sections if p), src.title)
    docs = []
    for heading_path, body in sections:
        heading = " > ".join(heading_path[1:]) if len(heading_path) > 1 else ""
        for chunk in _split_long(body):
            docs.append(Document(
                page_content=f"{title} - {heading}\n{chunk}" if heading else f"{title}\n{chunk}",
                metadata={"source": src.source, "kind": "doc", "lang": src.lang, "title": title,
                          "heading": heading, "topic": Path(src.source).stem, "answer": chunk},
            ))
    return docs


def faq_documents(records: list["FaqRecord"], source_name: str) -> list[Document]:
    docs = []
    for r in records:
        for lang in LANGS:
            if r.question.get(lang) and r.answer.get(lang):
                docs.append(Document(
                    page_content=f"{r.question[lang]}\n{r.answer[lang]}",
                    metadata={"source": f"{source_name}#{r.id}", "kind": "faq", "lang": lang,
                              "title": r.question[lang], "topic": r.topic, "answer": r.answer[lang], "heading": ""},
                ))
    return docs


def flag_suspicious(docs: list[Document]) -> list[Document]:
    """Mark chunks that carry instructions aimed at a model; the answer chain never cites them."""
    from assistant.knowledge.safety import looks_like_injection

    for d in docs:
        d.metadata["suspicious"] = looks_like_injection(d.page_content)
    return docs


@dataclass
class FileReport:
    path: str
    kind: str
    chunks: int = 0
    error: str = ""
    pii: Counter = field(default_factory=Counter)
    duplicates: int = 0


@dataclass
class KnowledgeBaseLoad:
    docs: list[Document]
    files: list[FileReport]

    @property
    def errors(self) -> list[FileReport]:
        return [f for f in self.files if f.error]

    @property
    def pii(self) -> Counter:
        return sum((f.pii for f in self.files), Counter())

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)


SKIP_NAMES = {"userdict.txt", "README.md"}


def kb_files(root: Path) -> list[Path]:
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")
             and p.name not in SKIP_NAMES and p.suffix.lower() in DOC_SUFFIXES | FAQ_SUFFIXES | {".yml", ".yaml"}]
    faq_first = sorted(files, key=lambda p: (p.suffix.lower() not in FAQ_SUFFIXES | {".yml", ".yaml"}, str(p)))
    return faq_first


def load_knowledge_base(root: Path, max_file_mb: float = 20, pii_allow: tuple[str, ...] = (),
                        progress: bool = False) -> KnowledgeBaseLoad:
    """Every file under ``root``: parsed, cleaned, PII-masked, chunked, de-duplicated. A file that
    fails is reported (``.errors``) and the rest still loads."""
    from tqdm import tqdm

    root = Path(root)
    if not root.is_dir():
        raise KnowledgeBaseError(f"knowledge base folder {root} does not exist (ASSISTANT_KB_DIR)")
    masker, dedup = PiiMasker(pii_allow), Deduplicator()
    max_bytes = int(max_file_mb * 1_000_000)
    docs, reports = [], []
    for path in tqdm(kb_files(root), desc="reading knowledge base", unit="file", disable=not progress):
        rel = str(path.relative_to(root))
        suffix = path.suffix.lower()
        report = FileReport(rel, "doc" if suffix in DOC_SUFFIXES else "faq")
        reports.append(report)
        try:
            if suffix in (".yml", ".yaml"):
                chunks = faq_documents(load_bilingual_faq_yaml(path, max_bytes), path.name)
            elif suffix in FAQ_SUFFIXES:
                chunks = faq_documents(load_faq_file(path, max_bytes), path.name)
            else:
                chunks = chunk_document(load_document(path, root, max_bytes))
        except LoadError as exc:
            report.error = str(exc)
            continue
        except Exception as exc:  # a parser bug must not stop the other files
            report.error = f"unexpected {type(exc).__name__}: {exc}"
            continue
        for d in chunks:
            d.page_content = _masked(clean(d.page_content), masker, report.pii)
            for key in ("answer", "title"):
                d.metadata[key] = _masked(clean(d.metadata[key]), masker, Counter())
            if dedup.seen(f"{d.metadata['lang']} {d.page_content}"):
                report.duplicates += 1
                continue
            docs.append(d)
            report.chunks += 1
    return KnowledgeBaseLoad(flag_suspicious(docs), reports)


def _masked(text: str, masker: PiiMasker, sink: Counter) -> str:
    text, counts = masker.mask(text)
    sink.update(counts)
    return text
