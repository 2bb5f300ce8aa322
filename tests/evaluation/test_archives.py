"""Hidden-split archives: keyed ids, a secret order, and nothing in the tar that tells real from generated.

The chance tests read the archive as a downloader would (member order, names, ids, tar header fields, ids.csv)
and try to predict the labels, which only the test (holding the key) can join back; the same classifiers on the
manifest's own order show the test would notice the old leak.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import shutil
import tarfile
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from evaluation.datasets.archives import (
    ARCHIVE_DIR,
    HIDDEN_ID_HEX,
    build_archives,
    format_suffix,
    hidden_id,
    hidden_rows_in_id_order,
)
from evaluation.datasets.manifest import manifest_sha256, read_manifest
from evaluation.errors import DatasetError

KEY = b"the server's secret, for this test"
HEADER_FIELDS = ("mtime", "mode", "uid", "gid", "uname", "gname", "type", "pax_headers")


def _linked_copy(root: Path, target: Path) -> Path:
    """A dataset folder sharing ``root``'s images (symlinked) with its own archives folder."""
    target.mkdir()
    for entry in root.iterdir():
        if entry.name == ARCHIVE_DIR:
            continue
        if entry.is_file():
            shutil.copy(entry, target / entry.name)
        else:
            (target / entry.name).symlink_to(entry.resolve(), target_is_directory=True)
    return target


def _hmac_by_hand(key: bytes, message: bytes) -> str:
    """RFC 2104 with SHA-256 (block 64 bytes), written out: an independent check of the library call."""
    block = key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest().ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in block) + inner).hexdigest()


@pytest.fixture(scope="module")
def hidden(mini_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The mini benchmark's hidden test archive, read back, with the labels joined through the key."""
    root = _linked_copy(mini_root, tmp_path_factory.mktemp("archives") / "dataset")
    sha = manifest_sha256(root / "manifest.jsonl")
    build_archives(root, sha, hidden_splits=frozenset({"test"}), hidden_id_key=KEY)
    rows = list(read_manifest(root / "manifest.jsonl"))
    by_id = {hidden_id(KEY, sha, i): (i, row) for i, row in enumerate(rows) if row.split == "test"}
    with tarfile.open(root / ARCHIVE_DIR / "test.tar") as tar:
        members = tar.getmembers()
        images = [m for m in members if not m.name.endswith("ids.csv")]
        table = list(csv.DictReader(io.StringIO(tar.extractfile("test/ids.csv").read().decode())))
        decoded = [Image.open(io.BytesIO(tar.extractfile(m).read())) for m in images]
    ids = [Path(m.name).stem for m in images]
    return {"root": root, "sha": sha, "rows": rows, "by_id": by_id, "members": members, "images": images,
            "table": table, "decoded": decoded, "ids": ids,
            "labels": np.array([by_id[i][1].label for i in ids]), "lines": np.array([by_id[i][0] for i in ids])}


def test_the_ids_are_hmac_sha256_of_the_manifest_line_under_the_key() -> None:
    sha = "ab" * 32
    assert hidden_id(KEY, sha, 7) == _hmac_by_hand(KEY, f"{sha}:7".encode())[:HIDDEN_ID_HEX]
    assert hidden_id(KEY, sha, 7) != hidden_id(KEY + b"!", sha, 7) != hidden_id(KEY, sha, 8)
    with pytest.raises(DatasetError, match="SPECTRA_HIDDEN_ID_KEY"):
        hidden_id(b"", sha, 7)


def test_every_test_image_is_in_the_archive_once_under_its_id(hidden) -> None:
    assert sorted(hidden["ids"]) == sorted(hidden["by_id"])
    assert [r["id"] for r in hidden["table"]] == hidden["ids"]  # ids.csv lists the members in their order


def test_the_external_sort_in_many_runs_gives_the_id_order(hidden) -> None:
    root, sha = hidden["root"], hidden["sha"]
    merged = list(hidden_rows_in_id_order(root, "test", KEY, sha, run_rows=7))  # 158 runs of 7 records
    assert [ident for ident, _ in merged] == sorted(hidden["by_id"]) == hidden["ids"]
    assert [row for _, row in merged] == [hidden["by_id"][i][1] for i in hidden["ids"]]
    assert not any((root / ARCHIVE_DIR).glob("sort-*"))  # the scratch runs are gone


def test_names_and_headers_carry_only_what_the_image_bytes_show(hidden) -> None:
    for field in HEADER_FIELDS:  # one value for every member: they carry nothing
        assert len({str(getattr(m, field)) for m in hidden["members"]}) == 1, field
    for member, image, ident, entry in zip(hidden["images"], hidden["decoded"], hidden["ids"], hidden["table"],
                                           strict=True):
        row = hidden["by_id"][ident][1]
        assert member.name == f"test/{ident}{format_suffix(image.format)}"  # the suffix is the bytes' own format
        assert member.size == (hidden["root"] / row.path).stat().st_size  # the file as it is, nothing added
        assert (entry["width"], entry["height"], entry["format"]) == (str(image.width), str(image.height), image.format)


def _balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float((np.mean(predicted[labels == 0] == 0) + np.mean(predicted[labels == 1] == 1)) / 2)


def _chance_bound(labels: np.ndarray, tests: int, family_alpha: float = 1e-3) -> float:
    """How far from 1/2 the balanced accuracy of one of ``tests`` label-blind predictors may land by chance.

    Binomial standard error at p = 1/2 on these class sizes, times the two-sided normal quantile with a
    Bonferroni correction, so that all ``tests`` stay inside it with probability 1 - ``family_alpha``.
    """
    z = NormalDist().inv_cdf(1 - family_alpha / (2 * tests))
    return z * 0.5 * math.sqrt(0.25 / np.sum(labels == 0) + 0.25 / np.sum(labels == 1))


def _best_threshold(feature: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """The cut and direction of ``feature`` with the best balanced accuracy on these rows (fitted, so optimistic)."""
    best = (-1.0, 0.0, 1)
    for cut in np.unique(feature):
        for sign in (1, -1):
            score = _balanced_accuracy(labels, (sign * (feature - cut) >= 0).astype(int))
            best = max(best, (score, float(cut), sign))
    return best[1], best[2]


def _cross_fitted_accuracies(features: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Each feature's best threshold and a logistic regression on all of them, each image predicted by the
    one fitted on the other half (two folds), so every image is scored once and out of sample."""
    in_first = np.random.default_rng(0).permutation(len(labels)) < len(labels) // 2
    matrix = np.column_stack(list(features.values())).astype(float)
    matrix = (matrix - matrix.mean(0)) / (matrix.std(0) + 1e-12)
    predicted = {name: np.zeros(len(labels), int) for name in [*features, "logistic"]}
    for fit in (in_first, ~in_first):
        for name, feature in features.items():
            cut, sign = _best_threshold(feature[fit], labels[fit])
            predicted[name][~fit] = sign * (feature[~fit] - cut) >= 0
        model = LogisticRegression(class_weight="balanced", max_iter=2000).fit(matrix[fit], labels[fit])
        predicted["logistic"][~fit] = model.predict(matrix[~fit])
    return {name: _balanced_accuracy(labels, guess) for name, guess in predicted.items()}


def _features(positions: np.ndarray, ids: list[str], members: list[tarfile.TarInfo]) -> dict[str, np.ndarray]:
    bits = np.array([[int(i, 16) >> (4 * HIDDEN_ID_HEX - 1 - b) & 1 for b in range(16)] for i in ids])
    return {"position": positions, "id": np.array([int(i[:15], 16) for i in ids]),
            "name length": np.array([len(m.name) for m in members]),
            "header offset": np.array([m.offset for m in members]) / (1 << 20),
            **{f"id bit {b}": bits[:, b] for b in range(16)}}


def test_order_ids_and_names_predict_the_labels_no_better_than_chance(hidden) -> None:
    labels = hidden["labels"]
    accuracies = _cross_fitted_accuracies(_features(np.arange(len(labels)), hidden["ids"], hidden["images"]), labels)
    bound = _chance_bound(labels, tests=len(accuracies))
    assert all(abs(value - 0.5) <= bound for value in accuracies.values()), (bound, accuracies)
    # The same classifiers on the manifest's order (the old archive's) find the labels: the test can fail.
    manifest_order = np.argsort(np.argsort(hidden["lines"]))
    leaked = _cross_fitted_accuracies({"position": manifest_order}, labels)
    assert leaked["position"] > 0.95


def test_the_archive_order_is_unrelated_to_the_manifest_order(hidden) -> None:
    order = np.argsort(np.argsort(hidden["lines"]))  # manifest rank of each archive position
    rho = np.corrcoef(np.arange(len(order)), order)[0, 1]  # Spearman: both are ranks
    assert abs(rho) < 4 / math.sqrt(len(order))


def test_the_old_inversion_by_row_number_finds_nothing(hidden) -> None:
    sha, ids = hidden["sha"], set(hidden["ids"])
    for row_id in range(len(hidden["rows"])):
        unkeyed = hashlib.sha256(f"{sha}:{row_id}".encode()).hexdigest()
        assert unkeyed[:20] not in ids and unkeyed[:HIDDEN_ID_HEX] not in ids
        assert hidden_id(b"spectra-insecure-local-key-change-me-in-production", sha, row_id) not in ids


def test_a_hidden_split_without_a_key_is_refused(hidden, tmp_path: Path) -> None:
    root = _linked_copy(hidden["root"], tmp_path / "dataset")
    with pytest.raises(DatasetError, match="SPECTRA_HIDDEN_ID_KEY"):
        build_archives(root, hidden["sha"], hidden_splits=frozenset({"test"}), hidden_id_key=b"")


def test_the_same_key_gives_the_same_archive_and_another_key_another_order(hidden, tmp_path: Path) -> None:
    again = build_archives(_linked_copy(hidden["root"], tmp_path / "a"), hidden["sha"],
                           hidden_splits=frozenset({"test"}), hidden_id_key=KEY)
    other = build_archives(_linked_copy(hidden["root"], tmp_path / "b"), hidden["sha"],
                           hidden_splits=frozenset({"test"}), hidden_id_key=KEY + b"2")
    published = json.loads((hidden["root"] / ARCHIVE_DIR / "archives.json").read_text())
    sums = {a["split"]: a["sha256"] for a in published}
    assert {a.split: a.sha256 for a in again} == sums
    assert {a.split: a.sha256 for a in other if not a.hidden} == {s: v for s, v in sums.items() if s != "test"}
    assert next(a.sha256 for a in other if a.hidden) != sums["test"]


def test_a_suffix_that_differs_by_label_where_the_format_does_not_is_not_carried(tmp_path: Path) -> None:
    """Unbiased GenImage: real ImageNet files end in ``.JPEG``, re-encoded generated ones in ``.jpg``; both are
    JPEG, so their members must look alike."""
    from evaluation.datasets.manifest import ManifestRow, file_sha256, write_manifest

    rows = []
    for i, (label, suffix) in enumerate([(0, ".JPEG"), (1, ".jpg")] * 3):
        path = tmp_path / "images" / ("real" if label == 0 else "fake") / f"{i}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(path, format="JPEG", quality=96)
        rows.append(ManifestRow(path=str(path.relative_to(tmp_path)), label=label, generator=None if label == 0 else "g",
                                split="test", width=8, height=8, format="JPEG", jpeg_quality=96,
                                sha256=file_sha256(path)))
    sha = write_manifest(rows, tmp_path / "manifest.jsonl")
    build_archives(tmp_path, sha, hidden_splits=frozenset({"test"}), hidden_id_key=KEY)
    with tarfile.open(tmp_path / ARCHIVE_DIR / "test.tar") as tar:
        suffixes = {Path(name).suffix for name in tar.getnames() if not name.endswith(".csv")}
    assert suffixes == {".jpg"}


def test_the_sort_holds_one_run_in_memory_not_the_split(hidden) -> None:
    import tracemalloc

    def peak(run_rows: int) -> int:
        tracemalloc.start()
        for _ in hidden_rows_in_id_order(hidden["root"], "test", KEY, hidden["sha"], run_rows=run_rows):
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    # Memory is one run of records plus a read buffer per run (about 14 kB each); here 9 runs of 128 against the
    # split's 1104 rows in one run.
    assert peak(run_rows=128) * 2 < peak(run_rows=len(hidden["ids"]))
