"""Retrieval and refusal evaluation on ``evals/knowledge/questions.yml`` (``assistant eval-kb``).

For every answerable question each retrieval mode ranks knowledge *units* (FAQ entries, document
sections); a unit is relevant when the question's label lists it. Recall@k here is the share of
questions with at least one relevant unit in the top k. MRR uses the first relevant unit; nDCG@10
uses binary gains. Slices: language, FAQ vs document target, question length. Refusal is scored on
the unanswerable questions (positives) against the answerable ones.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.knowledge.retrieval import MODES, HybridSearcher

KS = (1, 5, 10)


@dataclass
class EvalQuestion:
    id: str
    lang: str
    question: str
    relevant: frozenset[str]
    target: str = ""

    @property
    def group(self) -> str:
        """Questions of one group are never split between training and evaluation: answerable ones
        by the units that answer them (paraphrases), unanswerable ones by their id without the
        language prefix (``zh-u11`` and ``en-u11`` are one question in two languages)."""
        if self.relevant:
            return "|".join(sorted(self.relevant))
        prefix = f"{self.lang}-"
        return "gap:" + (self.id[len(prefix):] if self.id.startswith(prefix) else self.id)

    @property
    def length(self) -> str:
        if self.lang == "zh":
            return "short" if len(self.question) <= 10 else "long"
        return "short" if len(self.question.split()) <= 6 else "long"


def load_eval_set(path: Path) -> tuple[list[EvalQuestion], list[EvalQuestion]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    answerable = [EvalQuestion(q["id"], q["lang"], q["question"], frozenset(q["relevant"]), q.get("target", ""))
                  for q in data["questions"]]
    unanswerable = [EvalQuestion(q["id"], q["lang"], q["question"], frozenset()) for q in data.get("unanswerable", [])]
    return answerable, unanswerable


def ranked_units(hits) -> list[str]:
    seen, out = set(), []
    for h in hits:
        if h.unit not in seen:
            seen.add(h.unit)
            out.append(h.unit)
    return out


def score_ranking(units: list[str], relevant: frozenset[str]) -> dict:
    first = next((n for n, u in enumerate(units) if u in relevant), None)
    row = {f"recall@{k}": float(first is not None and first < k) for k in KS}
    row["mrr"] = 0.0 if first is None else 1.0 / (first + 1)
    dcg = sum(1.0 / math.log2(n + 2) for n, u in enumerate(units[:10]) if u in relevant)
    ideal = sum(1.0 / math.log2(n + 2) for n in range(min(len(relevant), 10)))
    row["ndcg@10"] = dcg / ideal if ideal else 0.0
    return row


def _mean(rows: list[dict]) -> dict:
    if not rows:
        return {}
    return {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in rows[0]} | {"n": len(rows)}


def evaluate_retrieval(searcher: HybridSearcher, questions: list[EvalQuestion], progress: bool = True,
                       reranked: dict[str, list] | None = None) -> dict:
    """Every mode on every question. ``reranked`` (question id -> hits) replaces the searcher's own
    ``hybrid_rerank`` ranking: the cross-validated one, from a reranker that never saw the question.
    Without either, that mode is left out."""
    from tqdm import tqdm

    modes = [m for m in MODES if m != "hybrid_rerank" or reranked is not None or searcher.ranker is not None]
    per_mode: dict[str, list[tuple[EvalQuestion, dict]]] = {m: [] for m in modes}
    latency: dict[str, list[float]] = {m: [] for m in modes}
    for q in tqdm(questions, desc="retrieval eval", disable=not progress):
        for mode in modes:
            started = time.perf_counter()
            if mode == "hybrid_rerank" and reranked is not None:
                # timed: the retrieval and features the reranker needs (its scoring takes microseconds)
                searcher.candidates(q.question, q.lang)
                hits = reranked[q.id]
            else:
                hits = searcher.search(q.question, q.lang, mode, k=30)
            latency[mode].append(time.perf_counter() - started)
            per_mode[mode].append((q, score_ranking(ranked_units(hits), q.relevant)))
    slices = {
        "all": lambda q: True,
        "zh": lambda q: q.lang == "zh", "en": lambda q: q.lang == "en",
        "faq": lambda q: q.target == "faq", "doc": lambda q: q.target == "doc",
        "short": lambda q: q.length == "short", "long": lambda q: q.length == "long",
    }
    table = {mode: {name: _mean([r for q, r in rows if keep(q)]) for name, keep in slices.items()}
             for mode, rows in per_mode.items()}
    misses = [{"id": q.id, "question": q.question, "relevant": sorted(q.relevant)}
              for q, r in per_mode[modes[-1]] if r["recall@5"] == 0]
    lat = {m: {"p50_ms": round(1000 * sorted(v)[len(v) // 2], 1),
               "p95_ms": round(1000 * sorted(v)[int(len(v) * 0.95) - 1], 1)} for m, v in latency.items() if v}
    return {"metrics": table, "misses_at_5": misses, "latency": lat}


_CITED = re.compile(r"(.+?)\[(\d+)\]")


def grounded(answer) -> bool:
    """Every sentence of the answer is found in the source it cites."""
    from assistant.knowledge.generate import split_sentences

    texts = {c.n: " ".join(split_sentences(c.text, "zh" if re.search(r"[\u4e00-\u9fff]", c.text) else "en"))
             for c in answer.citations}
    if answer.kind == "curated":
        return bool(answer.citations) and answer.text == answer.citations[0].text
    parts = _CITED.findall(answer.text)
    return bool(parts) and all(int(n) in texts and sent.strip() in texts[int(n)] for sent, n in parts)


def quotes_a_question(answer) -> bool:
    """A generated answer that quotes a question of its sources (an FAQ heading): says nothing."""
    from assistant.knowledge.generate import is_question

    return answer.kind == "generated" and any(is_question(sent) for sent, _ in _CITED.findall(answer.text))


def evaluate_answers(answerer, answerable: list[EvalQuestion], unanswerable: list[EvalQuestion]) -> dict:
    results = {q.id: answerer.answer(q.question, q.lang) for q in answerable + unanswerable}
    given = [(q, results[q.id]) for q in answerable if not results[q.id].refused]
    kinds = {}
    for _, a in given:
        kinds[a.kind] = kinds.get(a.kind, 0) + 1
    first_cited_relevant = [a.citations[0].unit in q.relevant for q, a in given if a.citations]
    refusal = refusal_metrics({q.id for q in unanswerable if results[q.id].refused},
                              {q.id for q in answerable if results[q.id].refused}, answerable, unanswerable)
    return {
        "refusal": refusal,
        "answers": {
            "answered": len(given), "by_kind": kinds,
            "grounded_share": round(sum(grounded(a) for _, a in given) / len(given), 4) if given else None,
            "quoting_a_question": sum(quotes_a_question(a) for _, a in given),
            "first_citation_relevant": round(sum(first_cited_relevant) / len(first_cited_relevant), 4)
            if first_cited_relevant else None,
            "examples": [{"id": q.id, "question": q.question, "kind": a.kind, "answer": a.text[:300],
                          "citations": [c.unit for c in a.citations]} for q, a in given[:8]],
        },
    }


def run_evaluation(settings, questions: Path, progress: bool = True) -> dict:
    """Everything ``eval-kb`` reports. The trained reranker and answerability test are scored by
    grouped k-fold cross-validation: every question is judged by a model trained without it (and
    without its paraphrases); the chain as shipped is scored too (in-sample for its ranker)."""
    from assistant.knowledge.answer import make_answerer
    from assistant.knowledge.ranker_training import FOLDS, collect, cross_validate

    answerable, unanswerable = load_eval_set(questions)
    answerer = make_answerer(settings)
    searcher = answerer.searcher
    examples = collect(searcher, answerable, unanswerable, progress=progress)
    cv = cross_validate(examples, searcher.term_stats())
    budget = settings.kb_max_false_refusal
    refused = {qid for qid, r in cv.refused(budget).items() if r}
    return {"questions": len(answerable), "unanswerable": len(unanswerable),
            "settings": {"encoder": settings.encoder_model, "generator": settings.kb_generator,
                         "retrieval_mode": settings.kb_retrieval_mode,
                         "ranker": str(settings.kb_ranker_file) if searcher.ranker else None},
            "retrieval": evaluate_retrieval(searcher, answerable, progress=progress, reranked=cv.rankings),
            "refusal_cv": {**refusal_metrics({q.id for q in unanswerable} & refused,
                                             {q.id for q in answerable} & refused, answerable, unanswerable),
                           "folds": FOLDS, "thresholds": [round(t, 3) for t in cv.thresholds(budget)],
                           "max_false_refusal": budget},
            "refusal_tradeoff": refusal_tradeoff(cv, answerable, unanswerable),
            **evaluate_answers(answerer, answerable, unanswerable)}


def refusal_tradeoff(cv, answerable: list[EvalQuestion], unanswerable: list[EvalQuestion],
                     targets: tuple[float, ...] = (0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10)) -> list[dict]:
    """Cross-validated refusal at each setting of ``kb_max_false_refusal``: the operating points a
    company can choose between, from one cross-validation (``cv``; the threshold is set on the
    training folds, so the false-refusal rate measured on held-out questions lands near, not at,
    the target)."""
    rows = []
    for target in targets:
        refused = {qid for qid, r in cv.refused(target).items() if r}
        m = refusal_metrics({q.id for q in unanswerable} & refused, {q.id for q in answerable} & refused,
                            answerable, unanswerable)
        rows.append({"max_false_refusal": target, "unanswerable_refused": m["refusal_recall"],
                     "answerable_wrongly_refused": m["answerable_wrongly_refused"]})
    return rows


def refusal_metrics(refused_un: set, refused_ans: set, answerable: list[EvalQuestion],
                    unanswerable: list[EvalQuestion]) -> dict:
    tp, fp = len(refused_un), len(refused_ans)
    return {
        "unanswerable": len(unanswerable), "answerable": len(answerable),
        "refusal_recall": round(tp / len(unanswerable), 4) if unanswerable else None,
        "refusal_precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "answerable_wrongly_refused": round(fp / len(answerable), 4) if answerable else None,
        "not_refused_unanswerable": sorted({q.id for q in unanswerable} - refused_un),
        "wrongly_refused": sorted(refused_ans),
    }


def markdown_report(result: dict) -> str:
    lines = ["# Knowledge retrieval evaluation", ""]
    metrics = result["retrieval"]["metrics"]
    slices = list(next(iter(metrics.values())))
    for name in slices:
        n = metrics["vector"][name].get("n", 0)
        lines += [f"## Slice: {name} ({n} questions)", "",
                  "| mode | R@1 | R@5 | R@10 | MRR | nDCG@10 |", "|---|---|---|---|---|---|"]
        for mode in metrics:
            m = metrics[mode][name]
            if m:
                lines.append(f"| {mode} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} "
                             f"| {m['mrr']:.3f} | {m['ndcg@10']:.3f} |")
        lines.append("")
    lat = result["retrieval"]["latency"]
    lines += ["## Latency per query (this run, query embedding included)", "", "| mode | p50 ms | p95 ms |",
              "|---|---|---|"] + [f"| {m} | {v['p50_ms']} | {v['p95_ms']} |" for m, v in lat.items()] + [""]
    titles = {"refusal_cv": "Refusal, cross-validated (each question judged by an answerability test trained "
                             "without it; `hybrid_rerank` above is cross-validated the same way)",
              "refusal": "Refusal by the whole chain as shipped (its trained ranker saw these questions: in-sample)"}
    for key, title in titles.items():
        if key in result:
            r = result[key]
            lines += [f"## {title}", "",
                      f"- unanswerable refused (recall): {r['refusal_recall']}",
                      f"- refusal precision: {r['refusal_precision']}",
                      f"- answerable wrongly refused: {r['answerable_wrongly_refused']}", ""]
    if "refusal_tradeoff" in result:
        lines += ["## Refusal trade-off, cross-validated (setting `ASSISTANT_KB_MAX_FALSE_REFUSAL`)", "",
                  "| max false refusal (training) | unanswerable refused | answerable wrongly refused (held out) |",
                  "|---|---|---|"]
        lines += [f"| {r['max_false_refusal']:.2f} | {r['unanswerable_refused']} | {r['answerable_wrongly_refused']} |"
                  for r in result["refusal_tradeoff"]] + [""]
    if "answers" in result:
        a = result["answers"]
        lines += ["## Answers", "", f"- answered: {a['answered']} ({a['by_kind']})",
                  f"- every sentence found in a cited source: {a['grounded_share']}",
                  f"- generated answers that quote a question of their sources: {a.get('quoting_a_question', 0)}",
                  f"- first citation is a labelled relevant unit: {a['first_citation_relevant']}", ""]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = result["retrieval"]["metrics"]
    slices = [s for s in ("all", "zh", "en", "faq", "doc", "short", "long") if metrics["vector"].get(s)]
    width = 0.2
    fig, ax = plt.subplots(figsize=(10, 4))
    for n, mode in enumerate(metrics):
        vals = [metrics[mode][s]["recall@5"] for s in slices]
        ax.bar([i + n * width for i in range(len(slices))], vals, width, label=mode)
    ax.set_xticks([i + 1.5 * width for i in range(len(slices))], slices)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("Recall@5")
    ax.set_title("Knowledge retrieval: Recall@5 by mode and slice")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(result: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "kb_eval.json", out_dir / "kb_eval.md", out_dir / "kb_eval_recall5.png"]
    paths[0].write_text(json.dumps(result, ensure_ascii=False, indent=2))
    paths[1].write_text(markdown_report(result))
    plot(result, paths[2])
    return paths
