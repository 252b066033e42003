"""Read knowledge-base files of every supported format into validated records.

Documents (Markdown, HTML, PDF, plain text) become :class:`SourceText` (Markdown-like text whose
headings drive chunking); FAQ files (the bilingual ``faq.yml``, CSV, JSON, JSONL with question/answer
fields, an SQLite ``faq`` table) become :class:`FaqRecord`. A file that cannot be read raises
:class:`LoadError` naming the file and the reason; the caller reports it and goes on.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

Lang = Literal["zh", "en"]
DOC_SUFFIXES = {".md", ".markdown", ".txt", ".html", ".htm", ".pdf"}
FAQ_SUFFIXES = {".csv", ".json", ".jsonl", ".sqlite", ".db"}
_HAN = re.compile(r"[\u3400-\u9fff]")


class LoadError(ValueError):
    pass


class FaqRecord(BaseModel):
    id: str = Field(min_length=1, max_length=200)
    topic: str = ""
    question: dict[Lang, str]
    answer: dict[Lang, str]

    @field_validator("question", "answer")
    @classmethod
    def _strip(cls, v: dict) -> dict:
        return {k: s.strip() for k, s in v.items() if isinstance(s, str) and s.strip()}

    @model_validator(mode="after")
    def _paired(self) -> "FaqRecord":
        if not any(lang in self.question and lang in self.answer for lang in ("zh", "en")):
            raise ValueError("needs a question and an answer in the same language (zh or en)")
        return self


class SourceText(BaseModel):
    source: str
    lang: Lang
    title: str
    text: str = Field(min_length=1)


def detect_lang(text: str) -> Lang:
    sample = text[:4000]
    han = len(_HAN.findall(sample))
    letters = len(re.findall(r"[A-Za-z]", sample))
    return "zh" if han * 3 >= letters * 0.5 and han > 0 else "en"


def read_text(path: Path, max_bytes: int) -> str:
    data = path.read_bytes()
    if len(data) > max_bytes:
        raise LoadError(f"{len(data) / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit (ASSISTANT_KB_MAX_FILE_MB)")
    if not data.strip():
        raise LoadError("the file is empty")
    if b"\x00" in data[:8192]:
        raise LoadError("binary content in a text file (is it really " + path.suffix + "?)")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise LoadError("not UTF-8 or GB18030 text; convert it to UTF-8")


class _HtmlToMarkdown(HTMLParser):
    SKIP = {"script", "style", "nav", "footer", "header", "noscript", "svg", "form"}
    BLOCK = {"p", "div", "li", "tr", "br", "section", "article", "table", "ul", "ol", "dd", "dt", "blockquote", "pre"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag) or tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data.strip()
        elif not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_markdown(html: str) -> tuple[str, str]:
    parser = _HtmlToMarkdown()
    parser.feed(html)
    parser.close()
    text = re.sub(r"[ \t]+\n", "\n", "".join(parser.out))
    return re.sub(r"\n{3,}", "\n\n", text).strip(), parser.title


def _pdf_text(path: Path, max_bytes: int, max_pages: int) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if path.stat().st_size > max_bytes:
        raise LoadError(f"{path.stat().st_size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit "
                        "(ASSISTANT_KB_MAX_FILE_MB)")
    try:
        reader = PdfReader(str(path))
        if len(reader.pages) > max_pages:
            raise LoadError(f"{len(reader.pages)} pages is over the {max_pages}-page limit")
        pages = [(p.extract_text() or "").strip() for p in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise LoadError(f"not a readable PDF ({exc})") from exc
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise LoadError("the PDF has no extractable text (scanned images need OCR first)")
    return text


def _lang_from_path(path: Path, root: Path, text: str) -> Lang:
    for part in path.relative_to(root).parts[:-1]:
        if part in ("zh", "en"):
            return part  # type: ignore[return-value]
    return detect_lang(text)


def load_document(path: Path, root: Path, max_bytes: int, max_pages: int = 500) -> SourceText:
    suffix = path.suffix.lower()
    title = ""
    if suffix == ".pdf":
        text = _pdf_text(path, max_bytes, max_pages)
    else:
        text = read_text(path, max_bytes)
        if suffix in (".html", ".htm"):
            text, title = html_to_markdown(text)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if suffix in (".txt", ".pdf") and first and not first.startswith("#"):
        text = f"# {first}\n\n" + text.split(first, 1)[1]  # the first line is the title
    elif title and not re.search(r"^# ", text, re.M):
        text = f"# {title}\n\n{text}"
    try:
        return SourceText(source=str(path.relative_to(root)), lang=_lang_from_path(path, root, text),
                          title=title or first.lstrip("# ").strip() or path.stem, text=text)
    except ValidationError as exc:
        raise LoadError(f"no text to index ({exc.errors()[0]['msg']})") from exc


def _faq_rows(rows: list[dict], where: str) -> list[FaqRecord]:
    out = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise LoadError(f"{where} {n}: expected an object with question and answer")
        if "question" not in row or "answer" not in row:
            raise LoadError(f"{where} {n}: missing column(s) {sorted({'question', 'answer'} - set(row))}; "
                            "FAQ rows need 'question' and 'answer' (optional: id, topic, lang)")
        q, a = str(row.get("question") or ""), str(row.get("answer") or "")
        lang = row.get("lang") or detect_lang(q + a)
        try:
            out.append(FaqRecord(id=str(row.get("id") or f"row-{n}"), topic=str(row.get("topic") or ""),
                                 question={lang: q}, answer={lang: a}))
        except ValidationError as exc:
            raise LoadError(f"{where} {n}: {exc.errors()[0]['msg']}") from exc
    return out


def load_faq_file(path: Path, max_bytes: int) -> list[FaqRecord]:
    suffix = path.suffix.lower()
    if suffix in (".sqlite", ".db"):
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
                conn.row_factory = sqlite3.Row
                rows = [dict(r) for r in conn.execute("SELECT * FROM faq")]
        except sqlite3.Error as exc:
            raise LoadError(f"cannot read table 'faq' ({exc}); the SQLite FAQ needs a table faq(question, answer, ...)") from exc
        return _faq_rows(rows, "row")
    text = read_text(path, max_bytes)
    if suffix == ".csv":
        return _faq_rows(list(csv.DictReader(io.StringIO(text))), "row")
    if suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise LoadError(f"line {n}: invalid JSON ({exc.msg})") from exc
        return _faq_rows(rows, "line")
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LoadError(f"invalid JSON ({exc.msg} at line {exc.lineno})") from exc
        rows = data.get("faqs", data) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise LoadError("expected a list of {question, answer} objects (or {\"faqs\": [...]})")
        return _faq_rows(rows, "item")
    raise LoadError(f"unsupported FAQ format {suffix}")


def load_bilingual_faq_yaml(path: Path, max_bytes: int) -> list[FaqRecord]:
    try:
        data = yaml.safe_load(read_text(path, max_bytes))
    except yaml.YAMLError as exc:
        raise LoadError(f"malformed YAML: {exc}") from exc
    entries = data.get("faqs") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise LoadError("expected a mapping with a 'faqs:' list")
    out, seen = [], set()
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not entry.get("id"):
            raise LoadError(f"faq {n}: each FAQ needs an 'id'")
        if entry["id"] in seen:
            raise LoadError(f"faq {n}: duplicate id {entry['id']!r}")
        seen.add(entry["id"])
        try:
            out.append(FaqRecord(id=str(entry["id"]), topic=str(entry.get("topic") or ""),
                                 question=entry.get("question") or {}, answer=entry.get("answer") or {}))
        except ValidationError as exc:
            raise LoadError(f"faq {n} ({entry['id']}): {exc.errors()[0]['msg']}") from exc
    return out
