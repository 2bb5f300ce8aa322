"""Shortcut baselines: add-one smoothed P(generated | feature) fitted on train, by hand and on a biased set."""
from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.baselines import SHORTCUTS, shortcut_scores
from evaluation.datasets.manifest import ManifestRow, write_manifest
from evaluation.metrics import roc_auc

SHA = "0" * 64
QUALITY, SIZE = SHORTCUTS


def _row(i: int, label: int, split: str, fmt: str, quality: int | None, size: int,
         subsampling: str | None = None) -> ManifestRow:
    return ManifestRow(path=f"images/{i}.x", label=label, generator=None if label == 0 else "g", split=split,
                       width=size, height=size, format=fmt, jpeg_quality=quality, sha256=SHA,
                       chroma_subsampling=subsampling, chroma_quality=quality if subsampling else None)


def test_scores_are_the_smoothed_share_of_generated_images_per_value(tmp_path: Path) -> None:
    rows = [
        _row(0, 0, "train", "JPEG", 96, 300), _row(1, 0, "train", "JPEG", 96, 300), _row(2, 1, "train", "JPEG", 96, 256),
        _row(3, 1, "train", "PNG", None, 256), _row(4, 1, "train", "PNG", None, 256),
        _row(5, 0, "test", "JPEG", 96, 300), _row(6, 1, "test", "PNG", None, 256), _row(7, 1, "test", "JPEG", 75, 128),
    ]
    write_manifest(rows, tmp_path / "manifest.jsonl")
    url = str(tmp_path / "manifest.jsonl")
    row_ids, scores = shortcut_scores(url, QUALITY)
    assert row_ids == [5, 6, 7]
    # JPEG:96 -> 1 generated of 3, (1+1)/(3+2); PNG -> 2 of 2, 3/4; JPEG:75 unseen -> prior (3+1)/(5+2).
    assert scores == pytest.approx([2 / 5, 3 / 4, 4 / 7])
    _, by_size = shortcut_scores(url, SIZE)
    assert by_size == pytest.approx([1 / 4, 4 / 5, 4 / 7])
    _, cropped = shortcut_scores(url, SIZE, crops={"g": 128})  # every generated image is 128 px after the crop
    assert cropped[2] == pytest.approx(4 / 5)


def test_on_the_biased_mini_version_both_shortcuts_separate_the_classes(mini_variant_roots) -> None:
    from evaluation.datasets.manifest import read_manifest

    url = str(mini_variant_roots["biased"] / "manifest.jsonl")
    labels = {i: r.label for i, r in enumerate(read_manifest(Path(url)))}
    for shortcut, at_least in ((QUALITY, 0.99), (SIZE, 0.9)):
        row_ids, scores = shortcut_scores(url, shortcut)
        assert roc_auc([labels[i] for i in row_ids], scores) >= at_least, shortcut.name


def test_the_jpeg_shortcut_sees_chroma_subsampling(tmp_path: Path) -> None:
    rows = [_row(i, i % 2, "train" if i < 40 else "test", "JPEG", 96, 64, "4:2:0" if i % 2 == 0 else "4:4:4")
            for i in range(60)]
    write_manifest(rows, tmp_path / "manifest.jsonl")
    row_ids, scores = shortcut_scores(str(tmp_path / "manifest.jsonl"), QUALITY)
    # 20 train rows of each layout, all of one label: (0+1)/(20+2) for 4:2:0 (real), 21/22 for 4:4:4.
    assert scores == pytest.approx([1 / 22 if i % 2 == 0 else 21 / 22 for i in row_ids])


def test_the_baseline_and_the_audit_share_one_classifier(mini_variant_roots) -> None:
    from sklearn.metrics import balanced_accuracy_score

    from evaluation.datasets.audit import audit_rows
    from evaluation.datasets.manifest import centre_crops, read_manifest
    from evaluation.metrics import DEFAULT_THRESHOLD, ScoreKind, logits_of

    root = mini_variant_roots["biased"]
    rows = list(read_manifest(root / "manifest.jsonl"))
    audit = audit_rows(rows, crops=centre_crops(str(root)))
    for shortcut in SHORTCUTS:
        row_ids, scores = shortcut_scores(str(root / "manifest.jsonl"), shortcut, centre_crops(str(root)))
        # The shortcut scores probabilities; the platform's threshold is a logit.
        predicted = [int(logit > DEFAULT_THRESHOLD) for logit in logits_of(scores, ScoreKind.PROBABILITY)]
        expected = balanced_accuracy_score([rows[i].label for i in row_ids], predicted)
        assert audit["one_feature_accuracy"][shortcut.feature] == pytest.approx(expected)
