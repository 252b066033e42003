"""Intent datasets for training and evaluation, in three formats:

* a folder with ``train/``, ``valid/``, ``test/`` splits, each holding ``seq.in`` (one utterance per
  line) and ``label`` (its intent on the same line): HWU64, CLINC150; an ``oos/`` folder beside them
  (CLINC150) adds out-of-scope examples labelled ``oos`` to each split;
* a CSV with ``text,label`` columns (split 80/10/10 per intent);
* the assistant's own ``nlu_data/`` (Rasa YAML; split the same way).
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

OOS = "oos"


class DatasetError(ValueError):
    pass


@dataclass
class Split:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def extend(self, other: "Split") -> None:
        self.texts += other.texts
        self.labels += other.labels


@dataclass
class Dataset:
    name: str
    train: Split
    valid: Split
    test: Split

    @property
    def intents(self) -> list[str]:
        return sorted(set(self.train.labels) - {OOS})

    @property
    def has_oos(self) -> bool:
        return OOS in set(self.test.labels)

    def pooled(self) -> Split:
        """Every example of every split (for cross-validation)."""
        out = Split()
        for part in (self.train, self.valid, self.test):
            out.extend(part)
        return out


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DatasetError(f"{path} is missing: a split folder needs seq.in and label") from exc


def read_split_folder(folder: Path) -> Split:
    texts, labels = _read_lines(folder / "seq.in"), _read_lines(folder / "label")
    if len(texts) != len(labels):
        raise DatasetError(f"{folder}: seq.in has {len(texts)} lines but label has {len(labels)}")
    keep = [(t.strip(), l.strip()) for t, l in zip(texts, labels) if t.strip() and l.strip()]
    return Split([t for t, _ in keep], [l for _, l in keep])


def load_folder(root: Path, include_oos: bool = True) -> Dataset:
    root = Path(root)
    splits = {}
    for name in ("train", "valid", "test"):
        splits[name] = read_split_folder(root / name)
        if include_oos and (root / "oos" / name).is_dir():
            splits[name].extend(read_split_folder(root / "oos" / name))
    return Dataset(root.name, splits["train"], splits["valid"], splits["test"])


def shuffled_by_label(labels: list[str], seed: int) -> list[tuple[str, list[int]]]:
    """Each label (sorted) with the indices of its examples in a seeded random order."""
    by_label = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = random.Random(seed)
    out = []
    for label in sorted(by_label):
        idx = by_label[label]
        rng.shuffle(idx)
        out.append((label, idx))
    return out


def stratified(texts: list[str], labels: list[str], name: str, seed: int = 13,
               shares: tuple[float, float] = (0.1, 0.1)) -> Dataset:
    train, valid, test = Split(), Split(), Split()
    for label, idx in shuffled_by_label(labels, seed):
        items = [texts[i] for i in idx]
        n_valid, n_test = max(1, round(len(items) * shares[0])), max(1, round(len(items) * shares[1]))
        if len(items) < 3:
            raise DatasetError(f"intent {label!r} has {len(items)} examples; at least 3 are needed to split")
        for part, chunk in ((test, items[:n_test]), (valid, items[n_test:n_test + n_valid]),
                            (train, items[n_test + n_valid:])):
            part.texts += chunk
            part.labels += [label] * len(chunk)
    return Dataset(name, train, valid, test)


def kfold(texts: list[str], labels: list[str], name: str, k: int, seed: int = 13) -> list[Dataset]:
    """``k`` train/valid/test rotations, stratified per label: fold i tests every k-th example of each
    label (from offset i, after a seeded shuffle). Where the data has out-of-scope examples the next
    fold is valid (to choose the detector's threshold) and the rest train; otherwise all the rest train."""
    if k < 2:
        raise DatasetError(f"cross-validation needs at least 2 folds, got {k}")
    groups = shuffled_by_label(labels, seed)
    thin = [label for label, idx in groups if len(idx) < 2]
    if thin:
        raise DatasetError(f"intents {', '.join(thin)} have fewer than 2 examples: each needs one to train on and "
                           "one to test; add examples or leave them out")
    with_valid = OOS in labels
    if with_valid and k < 3:
        raise DatasetError(f"this data has out-of-scope ('{OOS}') examples, so each rotation needs a fold to test, "
                           f"one to choose the threshold on and at least one to train: use 3 or more folds, not {k}")
    fold_of = {i: n % k for _, idx in groups for n, i in enumerate(idx)}
    out = []
    for f in range(k):
        train, valid, test = Split(), Split(), Split()
        for i in range(len(texts)):
            part = test if fold_of[i] == f else (valid if with_valid and fold_of[i] == (f + 1) % k else train)
            part.texts.append(texts[i])
            part.labels.append(labels[i])
        out.append(Dataset(name, train, valid, test))
    return out


def load_csv(path: Path, seed: int = 13) -> Dataset:
    with Path(path).open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"{path}: needs 'text' and 'label' columns, found {reader.fieldnames}")
        rows = [(r["text"].strip(), r["label"].strip()) for r in reader if r["text"] and r["label"]]
    return stratified([t for t, _ in rows], [l for _, l in rows], Path(path).stem, seed)


def load_rasa(nlu_dir: Path, seed: int = 13) -> Dataset:
    from assistant.nlu.data import load_nlu_data

    data = load_nlu_data(nlu_dir)
    return stratified([e.text for e in data.examples], [e.intent for e in data.examples], "nlu_data", seed)


def load_dataset(path: Path, seed: int = 13) -> Dataset:
    """Pick the format from what ``path`` is: a .csv file, a split folder, or a Rasa NLU folder."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return load_csv(path, seed)
    if (path / "train" / "seq.in").is_file():
        return load_folder(path)
    if path.is_dir() and any(path.glob("*.yml")):
        return load_rasa(path, seed)
    raise DatasetError(f"{path}: not a CSV (text,label), a split folder (train/seq.in + label) or a Rasa nlu folder")
