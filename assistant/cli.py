"""``assistant`` command line: set up models and data, serve each process, run the whole stack."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time

from assistant.settings import Settings, get_settings


def _fingerprint(settings: Settings) -> str:
    h = hashlib.sha256()
    for path in sorted(settings.nlu_data_dir.rglob("*.y*ml")):
        h.update(path.name.encode() + path.read_bytes())
    for key in ("encoder_model", "nlu_epochs", "nlu_batch_size", "nlu_learning_rate", "nlu_max_tokens", "nlu_seed",
                "nlu_oos_method", "nlu_oos_max_loss", "nlu_calibration_share", "nlu_oos_negative_intent",
                "nlu_oos_vectors"):
        h.update(f"{key}={getattr(settings, key)}".encode())
    return h.hexdigest()[:16]


def cmd_setup_models(settings: Settings, args) -> int:
    from assistant.models.registry import resolve_encoder

    started = time.perf_counter()
    path = resolve_encoder(settings)
    print(f"encoder {settings.encoder_model} -> {path} ({time.perf_counter() - started:.1f} s)")
    return 0


def cmd_train_nlu(settings: Settings, args) -> int:
    from assistant.nlu.training import train_nlu

    meta = settings.nlu_model_dir / "meta.json"
    fp = _fingerprint(settings)
    if not args.force and meta.is_file() and json.loads(meta.read_text()).get("fingerprint") == fp:
        print(f"NLU model up to date ({settings.nlu_model_dir}); use --force to retrain")
        return 0
    from assistant.nlu.data import NluDataError
    from assistant.nlu.oos import OosError

    try:
        t = train_nlu(settings, progress=not args.quiet, extra_meta={"fingerprint": fp})["train"]
    except (NluDataError, OosError) as exc:      # bad training data: say what, train nothing
        print(f"cannot train the NLU model: {exc}", file=sys.stderr)
        return 2
    print(f"trained on {t['examples']} examples, {t['intents']} intents, {t['epochs']} epochs in {t['seconds']:.0f} s")
    return 0


def cmd_train_dialogue(settings: Settings, args) -> int:
    from assistant.rasa_files import latest_rasa_model
    from assistant.stack import rasa_env

    if not settings.rasa_bin().is_file():
        print(f"Rasa is not installed at {settings.rasa_venv}: run scripts/setup.sh", file=sys.stderr)
        return 2
    argv = [str(settings.rasa_bin()), "train", "core", "--domain", str(settings.domain_file),
            "--stories", str(settings.stories_dir), "--config", str(settings.root_dir / "config.yml"),
            "--out", str(settings.rasa_model_dir), "--fixed-model-name", "dialogue"]
    started = time.perf_counter()
    rc = subprocess.call(argv, cwd=settings.root_dir, env={**os.environ, **rasa_env()})
    if rc == 0:
        print(f"dialogue model: {latest_rasa_model(settings)} ({time.perf_counter() - started:.0f} s)")
    return rc


def cmd_seed_db(settings: Settings, args) -> int:
    from assistant.db.seed import seed
    from assistant.db.session import make_engine, make_sessionmaker, session_scope

    engine = make_engine(settings.effective_database_url, settings.db_timeout_s)
    with session_scope(make_sessionmaker(engine)) as s:
        added = seed(s)
    print(f"database {engine.url.render_as_string(hide_password=True)}: added {added}")
    return 0


def cmd_ingest(settings: Settings, args) -> int:
    from assistant.knowledge.store import ingest, make_embeddings, open_store

    started = time.perf_counter()
    report = ingest(settings, open_store(settings, make_embeddings(settings)), progress=True)
    print(f"knowledge base ({time.perf_counter() - started:.1f} s -> {settings.chroma_dir}):\n  "
          + report.summary().replace("\n", "\n  "))
    return 0


def cmd_eval_kb(settings: Settings, args) -> int:
    from pathlib import Path

    from assistant.knowledge.evaluate import markdown_report, run_evaluation, write_reports

    result = run_evaluation(settings, Path(args.questions), progress=not args.quiet)
    paths = write_reports(result, Path(args.out))
    print(markdown_report(result))
    print("reports: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_train_kb_ranker(settings: Settings, args) -> int:
    """Fit the reranker and the answerability test on the labelled questions, for the index as it is."""
    from pathlib import Path

    from assistant.knowledge.evaluate import load_eval_set
    from assistant.knowledge.ranker_training import collect, fit
    from assistant.knowledge.retrieval import load_searcher

    questions = Path(getattr(args, "questions", None) or settings.root_dir / "evals" / "knowledge" / "questions.yml")
    if not questions.is_file():
        print(f"no labelled questions at {questions}: see evals/knowledge/questions.yml for the format", file=sys.stderr)
        return 2
    answerable, unanswerable = load_eval_set(questions)
    if not answerable or not unanswerable:
        print(f"{questions} needs answerable and unanswerable questions to train on", file=sys.stderr)
        return 2
    searcher = load_searcher(settings, with_ranker=False)
    started = time.perf_counter()
    examples = collect(searcher, answerable, unanswerable, progress=not args.quiet)
    ranker = fit(examples, searcher.term_stats(), settings.kb_max_false_refusal,
                 meta={"questions_file": str(questions)})
    ranker.save(settings.kb_ranker_file)
    print(f"knowledge ranker: {len(answerable)} answerable + {len(unanswerable)} unanswerable questions, "
          f"refusal threshold {ranker.threshold:.3f}, {time.perf_counter() - started:.0f} s -> {settings.kb_ranker_file}")
    return 0


def cmd_nlu_eval(settings: Settings, args) -> int:
    """Train on train, choose the threshold on valid, report on test; or k-fold cross-validation."""
    from pathlib import Path

    from assistant.nlu import evaluate, report
    from assistant.nlu.datasets import DatasetError, load_dataset

    try:
        data = load_dataset(Path(args.data), settings.nlu_seed)
        if args.folds:
            from assistant.nlu.datasets import kfold

            every = data.pooled()
            if args.repeats < 1:
                raise DatasetError(f"--repeats must be 1 or more, not {args.repeats}")
            splits = [split for r in range(args.repeats)
                      for split in kfold(every.texts, every.labels, data.name, args.folds, settings.nlu_seed + r)]
    except DatasetError as exc:
        print(f"nlu-eval: {exc}", file=sys.stderr)
        return 2
    encoder = args.encoder or settings.encoder_model
    out_dir = Path(args.out)
    if args.folds:
        print(f"{data.name}: {len(every)} examples, {len(data.intents)} intents, {args.folds}-fold cross-validation"
              + (f", {args.repeats} repeats" if args.repeats > 1 else ""))
        outcome = evaluate.cross_validate(settings, splits, encoder, args.epochs, progress=not args.quiet,
                                          repeats=args.repeats)
    else:
        print(f"{data.name}: {len(data.train)} train / {len(data.valid)} valid / {len(data.test)} test, "
              f"{len(data.intents)} intents{', with out-of-scope' if data.has_oos else ''}")
        outcome = evaluate.evaluate_split(settings, data, encoder, args.epochs, out_dir, onnx=not args.no_onnx,
                                          progress=not args.quiet)
    paths = report.write(outcome.result, outcome.y_true, outcome.y_pred, out_dir)
    print(report.markdown(outcome.result).split("## Per intent")[0])
    print("reports: " + ", ".join(map(str, paths)))
    return 0


def cmd_nlu_entities(settings: Settings, args) -> int:
    """Entity precision/recall on the annotated examples of nlu_data/."""
    from pathlib import Path

    from assistant.nlu import entity_eval
    from assistant.nlu.data import load_nlu_data

    result = entity_eval.evaluate_entities(load_nlu_data(settings.nlu_data_dir))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nlu_entities.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    (out / "nlu_entities.md").write_text(entity_eval.markdown(result))
    print(entity_eval.markdown(result))
    print(f"reports: {out / 'nlu_entities.md'}, {out / 'nlu_entities.json'}")
    return 0


def cmd_setup(settings: Settings, args) -> int:
    for step in (cmd_setup_models, cmd_seed_db, cmd_ingest, cmd_train_kb_ranker, cmd_train_nlu, cmd_train_dialogue):
        rc = step(settings, args)
        if rc:
            return rc
    return 0


def cmd_serve_nlu(settings: Settings, args) -> int:
    import uvicorn

    from assistant.nlu.service import create_app

    uvicorn.run(create_app(settings), host=settings.nlu_host, port=settings.nlu_port, log_level="info",
                access_log=False)
    return 0


def cmd_serve_actions(settings: Settings, args) -> int:
    from assistant.action_server import serve

    serve(settings)
    return 0


def cmd_serve_web(settings: Settings, args) -> int:
    import uvicorn

    from connectors.web import create_web_app

    uvicorn.run(create_web_app(settings), host=settings.web_host, port=settings.web_port, log_level="warning")
    return 0


def cmd_serve_channels(settings: Settings, args) -> int:
    from connectors.app import serve_channels

    if not settings.enabled_channels():
        print("no channel is configured: set ASSISTANT_SLACK_* , ASSISTANT_WECHAT_* or ASSISTANT_WECOM_* "
              "(README, 'Channels')", file=sys.stderr)
        return 2
    serve_channels(settings)
    return 0


def cmd_serve_slack_socket(settings: Settings, args) -> int:
    from connectors.slack import serve_socket_mode

    serve_socket_mode(settings)
    return 0


def cmd_serve_worker(settings: Settings, args) -> int:
    from assistant.tasks.celery_app import serve_worker

    if not settings.effective_broker_url:
        print("a worker needs a broker: set ASSISTANT_BROKER_URL or ASSISTANT_REDIS_URL (redis://127.0.0.1:6379/0). "
              "Without one, answers are generated inside the action server.", file=sys.stderr)
        return 2
    serve_worker(settings, concurrency=args.concurrency, name=args.name)
    return 0


def cmd_jobs(settings: Settings, args) -> int:
    from assistant.tasks.wiring import job_store

    store = job_store(settings)
    stats = store.stats()
    def rate(kind: str):
        hits, misses = stats.get(f"{kind}_cache_hits", 0), stats.get(f"{kind}_cache_misses", 0)
        return round(hits / (hits + misses), 3) if hits + misses else None

    print(json.dumps({"counters": stats, "answer_cache_hit_rate": rate("answer"),
                      "query_embedding_cache_hit_rate": rate("embedding"),
                      "dead_letters": store.dead_letters()[: args.limit]}, ensure_ascii=False, indent=2))
    return 0


def cmd_endpoints(settings: Settings, args) -> int:
    from assistant.rasa_files import write_endpoints

    print(write_endpoints(settings))
    return 0


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit so the child processes are stopped too."""
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))


def _start(settings: Settings, include_rasa: bool, include_web: bool = False):
    from assistant.stack import Stack, StackError, preflight, service_specs

    _stop_on_sigterm()
    problems = preflight(settings, need_rasa=True)
    if problems:
        print("cannot start:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        return None
    stack = Stack(settings, service_specs(settings, include_rasa=include_rasa, include_web=include_web))
    try:
        stack.start()
    except StackError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return None
    return stack


def cmd_up(settings: Settings, args) -> int:
    print("starting the CloudMax assistant ...")
    web = getattr(args, "web", False)
    stack = _start(settings, include_rasa=True, include_web=web)
    if stack is None:
        return 1
    if settings.enabled_channels():
        print(f"channels ({', '.join(settings.enabled_channels())}): webhooks on {settings.channels_url} "
              "(/slack/events, /wechat, /wecom)")
    if web:
        print(f"ready. Open the web demo: {settings.web_url}/  (Ctrl-C stops everything)")
    else:
        print(f"ready. REST channel: POST {settings.rasa_url}/webhooks/rest/webhook "
              '{"sender": "me", "message": "你好"}. Ctrl-C stops everything.')
    try:
        while all(r.process.poll() is None for r in stack.running):
            time.sleep(1)
        dead = [r.spec.name for r in stack.running if r.process.poll() is not None]
        print(f"stopping: {', '.join(dead)} exited (see var/logs/)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        stack.stop()


def cmd_chat(settings: Settings, args) -> int:
    from assistant.rasa_files import latest_rasa_model, write_endpoints
    from assistant.stack import rasa_env

    print("starting the NLU service and the action server ...")
    stack = _start(settings, include_rasa=False)
    if stack is None:
        return 1
    try:
        argv = [str(settings.rasa_bin()), "shell", "--model", str(latest_rasa_model(settings)),
                "--endpoints", str(write_endpoints(settings)), "--port", str(settings.rasa_port)]
        print("starting rasa shell: type a message in Chinese or English, /stop to quit")
        return subprocess.call(argv, cwd=settings.root_dir, env={**os.environ, **rasa_env()})
    finally:
        stack.stop()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="assistant", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="models, demo database, knowledge base, NLU and dialogue training (idempotent)")
    sub.add_parser("setup-models", help="convert the packaged encoder weights (cached)")
    t = sub.add_parser("train-nlu", help="fine-tune the intent classifier on nlu_data/")
    t.add_argument("--force", action="store_true", help="retrain even if nothing changed")
    t.add_argument("--quiet", action="store_true")
    sub.add_parser("train-dialogue", help="rasa train core on domain.yml + stories/")
    sub.add_parser("seed-db", help="create tables and demo data")
    sub.add_parser("ingest", help="load knowledge_base/ into Chroma (idempotent)")
    e = sub.add_parser("eval-kb", help="retrieval and refusal evaluation of the knowledge base")
    e.add_argument("--questions", default="evals/knowledge/questions.yml")
    e.add_argument("--out", default="var/reports")
    e.add_argument("--quiet", action="store_true")
    r = sub.add_parser("train-kb-ranker", help="fit the knowledge reranker and answerability test on labelled questions")
    r.add_argument("--questions", default=None, help="labelled questions (default: evals/knowledge/questions.yml)")
    r.add_argument("--quiet", action="store_true")
    n = sub.add_parser("nlu-eval", help="train and evaluate the intent classifier on a dataset (folder, CSV, nlu_data)")
    n.add_argument("--data", default="nlu_data", help="split folder (seq.in/label), text,label CSV, or Rasa nlu folder")
    n.add_argument("--encoder", default=None, help="encoder spec (default: ASSISTANT_ENCODER_MODEL)")
    n.add_argument("--epochs", type=int, default=None)
    n.add_argument("--out", default="var/reports")
    n.add_argument("--no-onnx", action="store_true", help="skip the ONNX (fp32 and int8) evaluation of the model")
    n.add_argument("--folds", type=int, default=0,
                   help="k-fold cross-validation over all the examples instead of the test split (e.g. 5)")
    n.add_argument("--repeats", type=int, default=1,
                   help="with --folds: repeat the cross-validation this many times, each from its own shuffle "
                        "(figures pooled; the report gives each repeat's accuracy per language)")
    n.add_argument("--quiet", action="store_true")
    ne = sub.add_parser("nlu-entities", help="entity precision/recall on the annotated examples of nlu_data/")
    ne.add_argument("--out", default="var/reports")
    sub.add_parser("serve-nlu", help="the NLU HTTP service Rasa calls")
    sub.add_parser("serve-actions", help="the Rasa SDK action server")
    w = sub.add_parser("serve-worker", help="a Celery worker that generates and delivers late answers")
    w.add_argument("--concurrency", type=int, default=None, help="pool processes (default: ASSISTANT_WORKER_CONCURRENCY)")
    w.add_argument("--name", default="answers", help="worker name (its ready file is var/run/worker-NAME.ready)")
    j = sub.add_parser("jobs", help="answer-job counters, cache hit rate and the dead-letter log (needs the broker)")
    j.add_argument("--limit", type=int, default=20)
    sub.add_parser("endpoints", help="write var/endpoints.yml for Rasa from the settings")
    u = sub.add_parser("up", help="run NLU, actions and the Rasa server (REST channel) until Ctrl-C")
    u.add_argument("--web", action="store_true", help="also serve the web demo (ASSISTANT_WEB_PORT, default 7860)")
    sub.add_parser("serve-web", help="the Gradio web demo (talks to a running Rasa server)")
    sub.add_parser("serve-channels", help="the Slack / WeChat / WeCom webhooks (ASSISTANT_CHANNELS_PORT, default 5007)")
    sub.add_parser("serve-slack-socket", help="Slack in Socket Mode (no public URL; needs ASSISTANT_SLACK_APP_TOKEN)")
    sub.add_parser("chat", help="run NLU and actions, then chat in `rasa shell`")
    return p


COMMANDS = {
    "setup": cmd_setup, "setup-models": cmd_setup_models, "train-nlu": cmd_train_nlu,
    "train-dialogue": cmd_train_dialogue, "seed-db": cmd_seed_db, "ingest": cmd_ingest, "eval-kb": cmd_eval_kb,
    "train-kb-ranker": cmd_train_kb_ranker,
    "nlu-eval": cmd_nlu_eval, "nlu-entities": cmd_nlu_entities,
    "serve-nlu": cmd_serve_nlu, "serve-actions": cmd_serve_actions, "serve-worker": cmd_serve_worker, "serve-web": cmd_serve_web,
    "serve-channels": cmd_serve_channels, "serve-slack-socket": cmd_serve_slack_socket, "jobs": cmd_jobs,
    "endpoints": cmd_endpoints,
    "up": cmd_up, "chat": cmd_chat,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "setup":
        args.force, args.quiet = False, False
    try:
        settings = get_settings()
    except Exception as exc:  # pydantic's ValidationError names the variable
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 2
    return COMMANDS[args.command](settings, args)
