"""Load the knowledge base (``faq.yml`` + Markdown under ``docs/<lang>/``) as LangChain documents.

FAQ entries become one document per language (question + curated answer). Markdown files are
split at headings into sections that keep their heading path; long sections are cut at paragraph
boundaries with one paragraph of overlap.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml
from langchain_core.documents import Document

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


def load_faq(path: Path) -> list[Document]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise KnowledgeBaseError(f"{path}: cannot be read as UTF-8 YAML: {exc}") from exc
    entries = (data or {}).get("faqs") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise KnowledgeBaseError(f"{path}: expected a mapping with a 'faqs:' list")
    docs, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}, faq {i + 1}"
        if not isinstance(entry, dict) or not entry.get("id"):
            raise KnowledgeBaseError(f"{where}: each FAQ needs an 'id'")
        if entry["id"] in seen:
            raise KnowledgeBaseError(f"{where}: duplicate id {entry['id']!r}")
        seen.add(entry["id"])
        q, a = entry.get("question") or {}, entry.get("answer") or {}
        for lang in LANGS:
            if not q.get(lang) or not a.get(lang):
                continue
            docs.append(Document(
                page_content=f"{q[lang].strip()}\n{a[lang].strip()}",
                metadata={"source": f"{path.name}#{entry['id']}", "kind": "faq", "lang": lang,
                          "title": q[lang].strip(), "topic": str(entry.get("topic", "")),
                          "answer": a[lang].strip(), "heading": ""},
            ))
        if not any(q.get(lang) and a.get(lang) for lang in LANGS):
            raise KnowledgeBaseError(f"{where} ({entry['id']}): needs question and answer in zh or en")
    return docs


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


def load_markdown(path: Path, lang: str, root: Path) -> list[Document]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise KnowledgeBaseError(f"{path}: not UTF-8 text; convert it to UTF-8") from exc
    if not text.strip():
        raise KnowledgeBaseError(f"{path}: the file is empty")
    sections = _sections(text)
    title = next((p[0] for p, _ in sections if p), path.stem)
    docs = []
    for heading_path, body in sections:
        heading = " > ".join(heading_path[1:]) if len(heading_path) > 1 else ""
        for chunk in _split_long(body):
            docs.append(Document(
                page_content=f"{title} - {heading}\n{chunk}" if heading else f"{title}\n{chunk}",
                metadata={"source": str(path.relative_to(root)), "kind": "doc", "lang": lang,
                          "title": title, "heading": heading, "topic": path.stem, "answer": chunk},
            ))
    return docs


def flag_suspicious(docs: list[Document]) -> list[Document]:
    """Mark chunks that carry instructions aimed at a model; the answer chain never cites them."""
    from assistant.knowledge.safety import looks_like_injection

    for d in docs:
        d.metadata["suspicious"] = looks_like_injection(d.page_content)
    return docs


def load_knowledge_base(root: Path) -> list[Document]:
    root = Path(root)
    faq = root / "faq.yml"
    if not faq.is_file():
        raise KnowledgeBaseError(f"{faq} is missing: the knowledge base needs a faq.yml (see README)")
    docs = load_faq(faq)
    for lang in LANGS:
        for md in sorted((root / "docs" / lang).glob("*.md")):
            docs.extend(load_markdown(md, lang, root))
    return flag_suspicious(docs)
