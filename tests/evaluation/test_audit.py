"""The bias audit calls a JPEG/size-biased dataset biased and a matched one clean, by computation."""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from sklearn.metrics import balanced_accuracy_score

from evaluation.datasets.audit import ShortcutClassifier, audit_rows, balanced_accuracy
from evaluation.datasets.manifest import ManifestRow

SHA = "0" * 64


def _row(i: int, label: int, split: str, fmt: str, quality: int | None, size: int, generator: str | None,
         subsampling: str | None = None, chroma: int | None = None) -> ManifestRow:
    return ManifestRow(path=f"images/{split}/{i}.x", label=label, generator=generator, split=split, width=size,
                       height=size, format=fmt, jpeg_quality=quality, sha256=SHA, chroma_subsampling=subsampling,
                       chroma_quality=chroma)


def _biased_rows() -> list[ManifestRow]:
    rows = []
    for i in range(200):
        split = "train" if i < 120 else "test"
        rows.append(_row(i, 0, split, "JPEG", 96 if i % 5 else 90, 300 + 7 * (i % 9), None))  # real: JPEG, sizes vary
        rows.append(_row(1000 + i, 1, split, "PNG", None, 256, "g"))  # generated: PNG, one size
    return rows


def _matched_rows() -> list[ManifestRow]:
    return [
        _row(i, label, "train" if i < 120 else "test", "JPEG", 96, 256, None if label == 0 else "g")
        for i in range(200) for label in (0, 1)
    ]


def test_a_biased_dataset_is_called_biased() -> None:
    audit = audit_rows(_biased_rows())
    assert audit["verdict"] == "biased"
    assert audit["one_feature_accuracy"]["quality"] == 1.0
    assert audit["distributions"]["generated/g"]["format"] == {"PNG": 200}
    assert audit["distributions"]["real/shared"]["quality"] == {"96": 160, "90": 40}


def test_a_matched_dataset_is_called_clean() -> None:
    audit = audit_rows(_matched_rows())
    assert audit["verdict"] == "clean"
    assert audit["one_feature_accuracy"] == {"quality": 0.5, "chroma": 0.5, "jpeg": 0.5, "size": 0.5}


def test_balanced_accuracy_equals_sklearn_on_the_smoothed_table_predictions() -> None:
    rows = _biased_rows()[::3] + _matched_rows()[::7] + [_row(5000 + i, i % 2, "train", "PNG", None, 999, "g")
                                                          for i in range(4)]  # a value seen equally often
    train: dict[str, Counter[int]] = defaultdict(Counter)
    for r in rows:
        if r.split == "train":
            train[f"{r.width}"][r.label] += 1
    test_rows = [r for r in rows if r.split == "test"] + [_row(6000, 1, "test", "PNG", None, 999, "g"),
                                                          _row(6001, 0, "test", "PNG", None, 12345, "g")]
    overall = Counter(r.label for r in rows if r.split == "train")

    def predict(value: str) -> int:  # the slow, obvious rule: generated iff more often generated than real
        c = train.get(value) or overall
        return int(c[1] > c[0])

    test: dict[str, Counter[int]] = defaultdict(Counter)
    for r in test_rows:
        test[f"{r.width}"][r.label] += 1
    expected = balanced_accuracy_score([r.label for r in test_rows], [predict(f"{r.width}") for r in test_rows])
    assert balanced_accuracy(train, test) == pytest.approx(expected)


def test_the_classifier_is_the_add_one_smoothed_share() -> None:
    classifier = ShortcutClassifier.fit({"a": Counter({0: 3, 1: 1}), "b": Counter({1: 2})})
    assert classifier.score("a") == pytest.approx(2 / 6) and classifier.score("b") == pytest.approx(3 / 4)
    assert classifier.score("unseen") == pytest.approx((3 + 1) / (6 + 2))


def test_chroma_subsampling_alone_is_caught_as_a_bias() -> None:
    # Same format, quality and size; only the chroma layout differs between the classes.
    rows = [
        _row(i, label, "train" if i < 120 else "test", "JPEG", 96, 256, "g", "4:2:0" if label == 0 else "4:4:4", 96)
        for i in range(200) for label in (0, 1)
    ]
    audit = audit_rows(rows)
    assert audit["one_feature_accuracy"] == {"quality": 0.5, "chroma": 1.0, "jpeg": 1.0, "size": 0.5}
    assert audit["verdict"] == "biased"
    assert audit["distributions"]["real/g"]["chroma_subsampling"] == {"4:2:0": 200}
    assert audit["distributions"]["generated/g"]["chroma_quality"] == {"96": 200}
    assert audit_rows(rows, recipe={"name": "r", "rules": ["x"]})["recipe"] == {"name": "r", "rules": ["x"]}


def test_without_both_labels_in_test_the_verdict_is_unknown() -> None:
    rows = [r for r in _matched_rows() if not (r.split == "test" and r.label == 1)]
    assert audit_rows(rows)["verdict"] == "unknown"


def test_sizes_are_audited_after_the_versions_centre_crop() -> None:
    # Real sizes vary inside a window, generated ones are fixed: biased by size, until both are cropped to 240.
    rows = [
        _row(i, label, "train" if i < 120 else "test", "JPEG", 96, (240 + i % 20) if label == 0 else 256, "g")
        for i in range(200) for label in (0, 1)
    ]
    assert audit_rows(rows)["one_feature_accuracy"]["size"] > 0.9
    cropped = audit_rows(rows, crops={"g": 240})  # reals below 240 px are padded to 240, as torchvision does
    assert cropped["one_feature_accuracy"]["size"] == 0.5 and cropped["verdict"] == "clean"
    assert cropped["distributions"]["real/g"]["size"] == {"240x240": 200}
