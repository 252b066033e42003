"""The NLU service on the trained model: parsing, entities, shortcuts, fallback and bad input,
through the parser and through real HTTP (FastAPI's test client)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from assistant.nlu.data import NluDataError, load_file, load_nlu_data, parse_annotated
from assistant.nlu.entities import EntityExtractor
from assistant.nlu.parser import NluParser, ParserConfig
from assistant.nlu.service import create_app, load_parser
from tests.conftest import base_settings


@pytest.fixture(scope="module")
def parser(settings) -> NluParser:
    return load_parser(settings)


@pytest.fixture(scope="module")
def http(settings, parser):
    with TestClient(create_app(settings, parser)) as client:
        yield client


def entity_values(result, name):
    return [e["value"] for e in result["entities"] if e["entity"] == name]


# ------------------------------------------------------------------ training data
def test_training_data_meets_the_bar(settings):
    data = load_nlu_data(settings.nlu_data_dir)
    business = set(data.intents) - {"greet", "goodbye", "thanks", "out_of_scope", "affirm", "deny", "bot_challenge"}
    assert len(business) >= 10
    for intent in data.intents:
        texts = [e.text for e in data.examples if e.intent == intent]
        zh = [t for t in texts if any("\u4e00" <= c <= "\u9fff" for c in t)]
        assert len(zh) >= 15 and len(texts) - len(zh) >= 15, intent


def test_length_grouped_batches_cover_every_example_once_with_less_padding():
    import random

    from assistant.nlu.classifier import length_grouped_batches

    rng = random.Random(3)
    lengths = [rng.choice([3, 5, 8, 12, 30]) for _ in range(300)]

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    grouped = length_grouped_batches(lengths, 16, 8, random.Random(1))
    plain = length_grouped_batches(lengths, 16, 1, random.Random(1))
    for batches in (grouped, plain):
        assert sorted(i for b in batches for i in b) == list(range(300))
        assert sorted(len(b) for b in batches) == [12] + [16] * 18      # 300 = 18 x 16 + 12
    assert padded(grouped) < 0.75 * padded(plain)
    assert grouped != length_grouped_batches(lengths, 16, 8, random.Random(2))   # still shuffled per epoch


def test_annotations_are_parsed():
    text, spans = parse_annotated('查 [CM100001](order_number) 和 [专业版]{"entity": "plan", "value": "Pro"}')
    assert text == "查 CM100001 和 专业版"
    assert [(s.entity, s.value, text[s.start:s.end]) for s in spans] == [
        ("order_number", "CM100001", "CM100001"), ("plan", "Pro", "专业版")]


def test_malformed_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu:\n- intent: greet\n  examples: |\n    - hi\n  - oops: [\n")
    with pytest.raises(NluDataError, match="bad.yml: malformed YAML"):
        load_file(bad)
    bad.write_text("nlu:\n- intent: greet\n  examples: [hi]\n")
    with pytest.raises(NluDataError, match="'examples' must be a block string"):
        load_file(bad)


def test_data_too_thin_to_calibrate_is_refused_before_training(tmp_path):
    """With two examples per intent none can be held out for the out-of-scope threshold: train-nlu
    says so and what to do, and writes no model."""
    from assistant.nlu.oos import OosError
    from assistant.nlu.training import train_nlu

    (tmp_path / "nlu_data").mkdir()
    (tmp_path / "nlu_data" / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello\n'
        '- intent: goodbye\n  examples: |\n    - bye\n    - see you\n')
    with pytest.raises(OosError, match="add examples, or set ASSISTANT_NLU_OOS_METHOD=none"):
        train_nlu(base_settings(root_dir=tmp_path, models_dir=tmp_path / "models"), progress=False)
    assert not (tmp_path / "models" / "nlu").exists()


# ------------------------------------------------------------------ classification
@pytest.mark.parametrize("text,intent", [
    ("我想查一下我的订单状态", "check_order_status"),
    ("where is my order", "check_order_status"),
    ("忘记密码了怎么办", "reset_password"),
    ("I forgot my password", "reset_password"),
    ("帮我开一张增值税发票", "request_invoice"),
    ("can I get an invoice for my purchase", "request_invoice"),
    ("专业版多少钱", "ask_plan_prices"),
    ("how much does the pro plan cost", "ask_plan_prices"),
    ("怎么申请退款", "ask_refund"),
    ("I want my money back", "ask_refund"),
    ("我要转人工", "request_human"),
    ("let me talk to a human", "request_human"),
    ("你好", "greet"),
    ("今天天气怎么样", "out_of_scope"),
])
def test_intents(parser, text, intent):
    result = parser.parse(text)
    assert result["intent"]["name"] == intent, result["intent_ranking"][:3]
    assert result["intent"]["confidence"] >= parser.config.fallback_threshold


def test_ranking_is_sorted_and_sums_to_at_most_one(parser):
    r = parser.parse("how do I export my files")
    confs = [i["confidence"] for i in r["intent_ranking"]]
    assert confs == sorted(confs, reverse=True) and sum(confs) <= 1.0001


def test_low_confidence_returns_the_fallback_intent(settings, parser):
    strict = NluParser(parser.classifier, parser.extractor, ParserConfig(fallback_threshold=0.999))
    r = strict.parse("嗯")
    assert r["intent"]["name"] == "nlu_fallback"
    assert r["intent_ranking"][0]["name"] == "nlu_fallback"
    assert r["intent_ranking"][1]["name"] in parser.classifier.labels


def test_the_out_of_scope_detector_is_calibrated_on_held_out_examples(settings, parser):
    """train-nlu held out part of each intent, chose the detector's threshold on it (costing at most
    ASSISTANT_NLU_OOS_MAX_LOSS of their accuracy), and saved it beside the model; the service loads it."""
    from assistant.nlu.oos import OosDetector

    detector = parser.detector
    assert detector is not None and detector.method == settings.nlu_oos_method == "knn"
    calibration = detector.info["calibration"]
    assert calibration["held_out"] >= 2 * len(parser.classifier.labels)
    assert calibration["held_out_accuracy"] - calibration["held_out_accuracy_after"] <= settings.nlu_oos_max_loss + 1e-9
    features, probs = parser.classifier.features_and_proba(["查一下订单 CM100003", "what is the meaning of life"])
    again = OosDetector.load(settings.nlu_model_dir)
    assert again.threshold == detector.threshold
    assert np.allclose(again.scores(features, probs), detector.scores(features, probs))


def test_a_message_far_from_every_intent_falls_back_with_the_detectors_reason(parser):
    """Gibberish lies further from every intent's training vectors than a paraphrase does; below the
    detector's threshold the parser answers the fallback intent (keeping the ranking) and says why."""
    from dataclasses import replace

    near, far = "how do I export my files", "asdkjh qwe zxc vbnm"
    features, probs = parser.classifier.features_and_proba([near, far])
    near_score, far_score = parser.detector.scores(features, probs)
    assert near_score > far_score
    strict = NluParser(parser.classifier, parser.extractor, ParserConfig(fallback_threshold=0.0),
                       detector=replace(parser.detector, threshold=float(near_score + far_score) / 2))
    r = strict.parse(far)
    assert r["intent"]["name"] == "nlu_fallback" and r["intent_ranking"][1]["name"] in parser.classifier.labels
    assert r["out_of_scope"]["method"] == "knn" and r["out_of_scope"]["score"] < r["out_of_scope"]["threshold"]
    assert strict.parse(near)["intent"]["name"] == "ask_data_export"


def test_the_knn_margin_is_calibrated_on_held_out_out_of_scope_examples(settings, parser, tmp_path):
    """knn_margin contrasts with the out_of_scope intent's examples: calibration picks its weight on the
    held-out ones (and the threshold on the other held-out examples, within the accuracy budget); an
    out-of-scope training sentence scores exactly its knn score minus the weight (its nearest negative
    is itself); the detector survives a save and load."""
    from assistant.nlu.oos import MARGIN_WEIGHTS, OosDetector, calibrate, embed, holdout

    data = load_nlu_data(settings.nlu_data_dir)
    texts, intents = [e.text for e in data.examples], [e.intent for e in data.examples]
    fit_idx, held_idx = holdout(intents, settings.nlu_calibration_share, settings.nlu_seed)
    margin, report = calibrate("knn_margin", parser.classifier, texts, intents, fit_idx, held_idx,
                               settings.nlu_oos_max_loss, negative="out_of_scope")
    assert margin.info["weight"] in MARGIN_WEIGHTS and report["weight"] == margin.info["weight"]
    assert report["negatives_held_out"] == sum(intents[i] == "out_of_scope" for i in held_idx) >= 3
    assert set(report["negatives_rejected_by_weight"]) == {str(w) for w in MARGIN_WEIGHTS}
    assert report["negatives_rejected"] == max(report["negatives_rejected_by_weight"].values())
    assert report["held_out_accuracy"] - report["held_out_accuracy_after"] <= settings.nlu_oos_max_loss + 1e-9
    assert report["held_out"] == len(held_idx) - report["negatives_held_out"]

    # the held-out negatives stay out of the margin's bank, so that no score falls below what the
    # threshold was chosen on: the held-out in-scope vectors join it, which can only raise a score
    fit_negatives = [i for i in fit_idx if intents[i] == "out_of_scope"]
    assert len(margin.arrays["negatives"]) == len(fit_negatives)
    assert len(margin.arrays["bank"]) == sum(intents[i] != "out_of_scope" for i in range(len(texts)))
    negative = texts[fit_negatives[0]]
    held_negative = next(texts[i] for i in held_idx if intents[i] == "out_of_scope")
    probe = [held_negative, "what is the meaning of life", "查一下订单 CM100003", "how do I export my files"]
    fit_f, _ = embed(parser.classifier, [texts[i] for i in fit_idx])
    as_calibrated = OosDetector.fit("knn_margin", fit_f, [intents[i] for i in fit_idx], negative="out_of_scope",
                                    weight=margin.info["weight"])
    pf, pp = parser.classifier.features_and_proba(probe)
    assert np.all(margin.scores(pf, pp) >= as_calibrated.scores(pf, pp) - 1e-6)
    features, probs = parser.classifier.features_and_proba([negative, "how do I export my files"])
    knn = OosDetector.fit("knn", *_in_scope(parser, texts, intents))
    assert margin.scores(features, probs)[0] == pytest.approx(knn.scores(features, probs)[0] - margin.info["weight"],
                                                              abs=1e-4)
    margin.save(tmp_path)
    again = OosDetector.load(tmp_path)
    assert again.method == "knn_margin" and again.info["weight"] == margin.info["weight"]
    assert np.allclose(again.scores(features, probs), margin.scores(features, probs))
    # a message whose top intent is out_of_scope keeps it: the margin does not turn it into a fallback
    strict = NluParser(parser.classifier, parser.extractor, ParserConfig(fallback_threshold=0.0),
                       detector=again)
    r = strict.parse("今天天气怎么样")
    assert r["intent"]["name"] == "out_of_scope" and "out_of_scope" not in r


def _in_scope(parser, texts, intents):
    from assistant.nlu.oos import embed

    keep = [i for i, intent in enumerate(intents) if intent != "out_of_scope"]
    return embed(parser.classifier, [texts[i] for i in keep])[0], [intents[i] for i in keep]


def test_the_knn_margin_without_negative_examples_says_what_to_add(tmp_path):
    """Asked for knn_margin on data with no out_of_scope examples, train-nlu refuses before training
    and says which intent it needs; fitting the detector directly says the same."""
    from assistant.nlu.oos import OosDetector, OosError
    from assistant.nlu.training import train_nlu

    (tmp_path / "nlu_data").mkdir()
    (tmp_path / "nlu_data" / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello\n    - hey\n'
        '- intent: goodbye\n  examples: |\n    - bye\n    - see you\n    - farewell\n')
    settings = base_settings(root_dir=tmp_path, models_dir=tmp_path / "models", nlu_oos_method="knn_margin")
    with pytest.raises(OosError, match="'out_of_scope', and .* has none: add some"):
        train_nlu(settings, progress=False)
    assert not (tmp_path / "models" / "nlu").exists()
    with pytest.raises(OosError, match="needs examples of the negative intent"):
        OosDetector.fit("knn_margin", np.eye(3), ["greet", "greet", "bye"], negative="out_of_scope")


# ------------------------------------------------------------------ entities
def test_entities_in_both_languages(parser):
    r = parser.parse("帮我查下订单cm-100003，发票发到 Li.Wei@Example.com，电话13812345678")
    assert entity_values(r, "order_number") == ["CM100003"]
    assert entity_values(r, "email") == ["li.wei@example.com"]
    assert entity_values(r, "phone") == ["13812345678"]
    assert entity_values(r, "language") == ["zh"]
    r = parser.parse("how much is the 专业版 vs business plan")
    assert sorted(entity_values(r, "plan")) == ["Business", "Pro"]


def test_entity_offsets_point_into_the_text(parser):
    text = "order CM100007 please"
    e = next(e for e in parser.parse(text)["entities"] if e["entity"] == "order_number")
    assert text[e["start"]:e["end"]] == "CM100007"


def test_bare_values_do_not_change_the_language(parser):
    assert entity_values(parser.parse("CM100003"), "language") == []
    assert entity_values(parser.parse("li.wei@example.com"), "language") == []


def test_extractor_word_boundaries(settings):
    ex = EntityExtractor(load_nlu_data(settings.nlu_data_dir))
    assert [e["value"] for e in ex.extract("professional pros") if e["entity"] == "plan"] == []
    assert [e["value"] for e in ex.extract("XCM1000011") if e["entity"] == "order_number"] == []


@pytest.mark.parametrize("text,entity,values", [
    # phrasings that are not in nlu_data/
    ("上周三被扣了两次，每次¥39.90", "amount", ["39.90 CNY"]),
    ("收了我1,580元年费", "amount", ["1580 CNY"]),
    ("you billed me US$ 19 and then 25 dollars", "amount", ["19 USD", "25 USD"]),
    ("charged 300 RMB for nothing", "amount", ["300 CNY"]),
    ("2023年12月5日下的单", "date", ["2023-12-05"]),
    ("订单是11月11号付的款", "date", ["11月11号"]),
    ("I ordered on Sept. 9, 2024 and on 2024.10.1", "date", ["Sept. 9, 2024", "2024-10-01"]),
    ("paid on the 3rd of August", "date", ["3rd of August"]),
    ("call +49 30 1234 5678 or 0755-8888 6666", "phone", ["+493012345678", "075588886666"]),
    # and what must not be taken for one
    ("may I cancel within 14 days?", "date", []),
    ("the Pro plan for 5 users", "amount", []),
    ("order CM100003 was 2 months ago", "amount", []),
])
def test_amounts_dates_and_phones(settings, text, entity, values):
    ex = EntityExtractor(load_nlu_data(settings.nlu_data_dir))
    assert [e["value"] for e in ex.extract(text) if e["entity"] == entity] == values


def test_entity_precision_and_recall_on_nlu_data(settings, tmp_path):
    """Every entity type, in each language, found where annotated and nowhere else (the same check
    `assistant nlu-entities` reports)."""
    from assistant.nlu.entity_eval import evaluate_entities

    result = evaluate_entities(load_nlu_data(settings.nlu_data_dir))
    assert {"order_number", "email", "phone", "plan", "amount", "date"} <= set(result["entities"])
    for entity, slices in result["entities"].items():
        assert {"zh", "en"} <= set(slices), entity
        for m in slices.values():
            assert m["precision"] >= 0.95 and m["recall"] >= 0.95, (entity, m, result["errors"][:5])


# ------------------------------------------------------------------ shortcuts
def test_shortcut_with_entities(parser):
    r = parser.parse('/inform{"order_number": "CM100001"}')
    assert r["intent"] == {"name": "inform", "confidence": 1.0}
    assert entity_values(r, "order_number") == ["CM100001"]


def test_shortcut_bad_json_falls_back_with_a_reason(parser):
    r = parser.parse("/inform{bad json")
    assert r["intent"]["name"] == "nlu_fallback"
    assert "not valid JSON" in r["error"]


def test_shortcut_unknown_intent_falls_back_with_a_reason(parser):
    r = parser.parse("/buy_a_pony")
    assert r["intent"]["name"] == "nlu_fallback"
    assert "unknown intent 'buy_a_pony'" in r["error"]


# ------------------------------------------------------------------ bad input, over HTTP
@pytest.mark.parametrize("text", ["", "   ", "\u0000\u0001\u200b"])
def test_empty_messages_fall_back(http, text):
    r = http.post("/model/parse", json={"text": text})
    assert r.status_code == 200
    assert r.json()["intent"]["name"] == "nlu_fallback"


def test_oversized_message_is_truncated_not_rejected(http, settings):
    r = http.post("/model/parse", json={"text": "退款 " * 5000})
    assert r.status_code == 200
    assert r.json()["truncated_to"] == settings.nlu_max_chars


def test_emoji_and_mixed_language(http):
    r = http.post("/model/parse", json={"text": "😡😡 我的invoice怎么还没到?? 🙏"})
    assert r.status_code == 200
    assert r.json()["intent"]["name"] in ("request_invoice", "nlu_fallback")


@pytest.mark.parametrize("body", [{}, {"text": 5}, {"message": "hi"}])
def test_malformed_requests_get_400_with_a_message(http, body):
    r = http.post("/model/parse", json=body)
    assert r.status_code == 400
    assert "expected JSON" in r.json()["message"]


def test_non_json_body_gets_400(http):
    r = http.post("/model/parse", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_health_and_metrics(http):
    assert http.get("/health").json()["status"] == "ok"
    http.post("/model/parse", json={"text": "hello"})
    metrics = http.get("/metrics").text
    assert "nlu_parse_requests_total" in metrics
    assert int(metrics.split("nlu_parse_requests_total ")[1].split()[0]) >= 1


# ------------------------------------------------------------------ runtimes
def test_onnx_runtimes_agree_with_torch(settings, parser):
    """The service's default runtime (ONNX fp32) and the int8 option classify like the PyTorch model
    they were exported from (every training example; unseen phrasings too)."""
    from assistant.models.registry import resolve_encoder
    from assistant.nlu.classifier import IntentClassifier
    from assistant.nlu.onnx_runtime import load_onnx_classifier

    assert settings.nlu_runtime == "onnx" and parser.classifier.runtime == "onnx"
    path_for = lambda spec: resolve_encoder(settings, spec)  # noqa: E731
    torch_clf = IntentClassifier.load(settings.nlu_model_dir, path_for)
    fp32 = parser.classifier
    int8 = load_onnx_classifier(settings.nlu_model_dir, path_for, int8=True)
    texts = [e.text for e in load_nlu_data(settings.nlu_data_dir).examples]
    texts += ["我下的单到哪了", "can you tell me where my parcel is", "发票能开专票吗", "wie geht's 🙂"]
    reference = torch_clf.predict_proba(texts)
    for clf, min_agree in ((fp32, 1.0), (int8, 0.98)):
        got = clf.predict_proba(texts)
        agree = float((got.argmax(1) == reference.argmax(1)).mean())
        assert agree >= min_agree, (clf.runtime, agree)
    assert abs(fp32.predict_proba(texts) - reference).max() < 1e-3


def test_the_onnx_export_traces_eager_attention_and_redoes_an_earlier_recipe(settings, tmp_path):
    """The export writes attention out as matmuls (the faster graph on ONNX Runtime) without changing
    the PyTorch classifier it came from; an export by an earlier recipe is redone at load."""
    import json
    import shutil

    from assistant.models.registry import resolve_encoder
    from assistant.nlu.classifier import IntentClassifier
    from assistant.nlu.onnx_runtime import ATTENTION, export_onnx, load_onnx_classifier, onnx_path

    for f in settings.nlu_model_dir.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    path_for = lambda spec: resolve_encoder(settings, spec)  # noqa: E731
    torch_clf = IntentClassifier.load(tmp_path, path_for)
    trained_with = torch_clf.module.encoder.config._attn_implementation
    info = export_onnx(torch_clf, tmp_path)
    assert ATTENTION == "eager" and info["attention"] == "eager"
    assert torch_clf.module.encoder.config._attn_implementation == trained_with
    export = tmp_path / "onnx" / "export.json"
    earlier = {k: v for k, v in json.loads(export.read_text()).items() if k != "attention"}
    export.write_text(json.dumps(earlier))
    before = onnx_path(tmp_path, False).stat().st_mtime_ns
    onnx = load_onnx_classifier(tmp_path, path_for, int8=False)
    assert onnx_path(tmp_path, False).stat().st_mtime_ns != before
    assert json.loads(export.read_text())["attention"] == "eager"
    texts = ["我下的单到哪了", "can you tell me where my parcel is", "hi", "发票能开专票吗？" * 10]
    assert abs(onnx.predict_proba(texts) - torch_clf.predict_proba(texts)).max() < 1e-3


def test_health_names_the_runtime(http):
    assert http.get("/health").json()["runtime"] == "onnx"


def test_the_serving_process_keeps_one_blas_thread():
    """``load_parser`` leaves OpenBLAS one thread: with one per core, its threads spin after each of
    the parser's small numpy calls and take the cores ONNX Runtime's forward pass needs. A process of
    its own, as the service runs: other tests here load more BLAS libraries after the parser."""
    import json
    import subprocess
    import sys

    code = ("import json; from threadpoolctl import threadpool_info; from tests.conftest import base_settings; "
            "from assistant.nlu.service import load_parser; p = load_parser(base_settings()); p.parse('hello'); "
            "print(json.dumps([pool['num_threads'] for pool in threadpool_info() if pool['user_api'] == 'blas']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    threads = json.loads(out.stdout.strip().splitlines()[-1])
    assert threads and set(threads) == {1}, threads


def test_the_detector_reads_every_layer_and_the_onnx_export_gives_the_same_vectors(settings, tmp_path):
    """``oos_vectors: layers`` (meta.json): the detector's vector is the mean of each transformer layer's
    unit-length mean-pooled states, PyTorch and ONNX alike, while the intent probabilities are the
    head's as before; a model saved without the key reads the head's input ("last"), as its detector
    was fitted on; an unknown value is refused at load."""
    import json
    import shutil

    import torch

    from assistant.models.encoder import mean_pool
    from assistant.models.registry import resolve_encoder
    from assistant.nlu.classifier import META_FILE, IntentClassifier, ModelNotTrained
    from assistant.nlu.onnx_runtime import load_onnx_classifier

    for f in settings.nlu_model_dir.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    path_for = lambda spec: resolve_encoder(settings, spec)  # noqa: E731
    meta = json.loads((tmp_path / META_FILE).read_text())
    texts = ["我下的单到哪了", "can you tell me where my parcel is", "hi", "发票能开专票吗？" * 10]

    def write(**change):
        (tmp_path / META_FILE).write_text(json.dumps({k: v for k, v in {**meta, **change}.items() if v is not None}))

    write(oos_vectors=None)
    last = IntentClassifier.load(tmp_path, path_for)
    assert last.oos_vectors == "last"
    enc = last.tokenizer(texts, padding=True, truncation=True, max_length=last.max_length, return_tensors="pt")
    with torch.inference_mode():
        out = last.module.encoder(**enc, output_hidden_states=True)
        pooled = [mean_pool(h, enc["attention_mask"]).numpy() for h in out.hidden_states]
    assert len(pooled) == last.module.encoder.config.num_hidden_layers + 1     # [0]: the embeddings
    expected = np.mean([p / np.linalg.norm(p, axis=1, keepdims=True) for p in pooled[1:]], axis=0)
    last_vectors, last_probs = last.features_and_proba(texts)
    assert np.allclose(last_vectors, pooled[-1], atol=1e-5)

    write(oos_vectors="layers")
    layers = IntentClassifier.load(tmp_path, path_for)
    vectors, probs = layers.features_and_proba(texts)
    assert np.allclose(vectors, expected, atol=1e-5) and not np.allclose(vectors, last_vectors, atol=1e-2)
    assert np.allclose(probs, last_probs, atol=1e-6)
    onnx = load_onnx_classifier(tmp_path, path_for, int8=False)     # meta.json changed: exported again
    onnx_vectors, onnx_probs = onnx.features_and_proba(texts)
    assert abs(onnx_vectors - vectors).max() < 1e-4 and abs(onnx_probs - probs).max() < 1e-3

    write(oos_vectors="middle")
    with pytest.raises(ModelNotTrained, match="middle"):
        IntentClassifier.load(tmp_path, path_for)
