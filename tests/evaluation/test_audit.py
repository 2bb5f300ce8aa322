"""The bias audit calls a JPEG/size-biased dataset biased and a matched one clean, by computation."""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from sklearn.metrics import balanced_accuracy_score

from evaluation.datasets.audit import audit_rows, balanced_accuracy
from evaluation.datasets.manifest import ManifestRow

SHA = "0" * 64


def _row(i: int, label: int, split: str, fmt: str, quality: int | None, size: int, generator: str | None) -> ManifestRow:
    return ManifestRow(path=f"images/{split}/{i}.x", label=label, generator=generator, split=split, width=size,
                       height=size, format=fmt, jpeg_quality=quality, sha256=SHA)


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
    assert audit["one_feature_accuracy"] == {"quality": 0.5, "size": 0.5}


def test_balanced_accuracy_equals_sklearn_on_the_lookup_predictions() -> None:
    rows = _biased_rows()[::3] + _matched_rows()[::7]
    train: dict[str, Counter[int]] = defaultdict(Counter)
    for r in rows:
        if r.split == "train":
            train[f"{r.width}"][r.label] += 1
    test_rows = [r for r in rows if r.split == "test"]
    overall = Counter(r.label for r in rows if r.split == "train").most_common(1)[0][0]

    def predict(value: str) -> int:  # the slow, obvious majority vote
        c = train.get(value)
        if not c:
            return overall
        best = max(c.values())
        winners = [label for label, n in c.items() if n == best]
        return overall if overall in winners else winners[0]

    test: dict[str, Counter[int]] = defaultdict(Counter)
    for r in test_rows:
        test[f"{r.width}"][r.label] += 1
    expected = balanced_accuracy_score([r.label for r in test_rows], [predict(f"{r.width}") for r in test_rows])
    assert balanced_accuracy(train, test) == pytest.approx(expected)


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
    cropped = audit_rows(rows, crops={"g": 240})
    assert cropped["one_feature_accuracy"]["size"] == 0.5 and cropped["verdict"] == "clean"
    assert cropped["distributions"]["real/g"]["size"] == {"240x240": 200}
