"""The wild protocol: its summary against scikit-learn, and shards against a direct computation of the chains."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from evaluation.bootstrap import difference_interval
from evaluation.datasets.images import IndexedRow, condition_batches
from evaluation.datasets.manifest import read_manifest_stream
from evaluation.metrics import ScoreKind
from evaluation.protocols import get_protocol
from evaluation.protocols.cross_generator import subset_masks, subset_metrics
from evaluation.protocols.wild import CHAINS, DROP, KIND_PREFIX, NAME, ROBUST_RELIABILITY, kind_masks, summarise
from evaluation.runner import run_shard
from evaluation.summary import summary_from_scores
from evaluation.wild import PRESETS, chain_for, list_kinds
from tests.detector_files import reference_scores, write_torchscript
from tests.evaluation.test_runner import SIZE, _request
from tests.reference import json_rows, split_rows

PROTOCOL = get_protocol(NAME)


def _population(n_real: int = 60, per_generator: int = 40) -> tuple[np.ndarray, list[str | None], list[str]]:
    labels = np.r_[np.zeros(n_real, int), np.ones(2 * per_generator, int)]
    generators: list[str | None] = [None] * n_real + ["a"] * per_generator + ["b"] * per_generator
    return labels, generators, [hashlib.sha256(str(i).encode()).hexdigest() for i in range(labels.size)]


def test_summarise_reports_clean_chains_presets_the_paired_drop_and_the_kind_matrix() -> None:
    labels, generators, ids = _population()
    rng = np.random.default_rng(3)
    config = {**PROTOCOL.default_config, "presets": list(PRESETS)[:1]}
    clean = labels * 3.0 + rng.normal(0, 1, labels.size)
    chains = labels * 1.0 + rng.normal(0, 1, labels.size)
    preset = labels * 2.0 + rng.normal(0, 1, labels.size)
    masks = kind_masks(ids, config)
    out = summarise(labels, np.vstack([clean, chains, preset, masks]), generators, np.full(labels.size, "test"), config)
    for subset, metrics in subset_metrics(labels, chains, generators, 0.0).items():
        assert out[f"{subset}/{CHAINS}"] == metrics
    assert out["mean"] == subset_metrics(labels, clean, generators, 0.0)["mean"]
    generator_a = subset_masks(labels, generators)[0]["a"]
    expected_drop = roc_auc_score(labels[generator_a], clean[generator_a]) - roc_auc_score(labels[generator_a], chains[generator_a])
    assert out[f"a/{DROP}"]["roc_auc_drop"] == pytest.approx(expected_drop, abs=1e-12)
    assert out[f"mean/{list(PRESETS)[0]}"]["roc_auc"] == subset_metrics(labels, preset, generators, 0.0)["mean"]["roc_auc"]
    # The kind matrix: ROC-AUC on the images whose chain holds the kind, computed here from the chains themselves.
    for kind in ("jpeg", "flip", "gaussian-noise"):
        holds = np.array([kind in {name for name, _ in chain_for(i, 0)} for i in ids])
        keep = generator_a & holds
        assert out[f"a/{KIND_PREFIX}{kind}"]["roc_auc"] == pytest.approx(roc_auc_score(labels[keep], chains[keep]))
    assert {key.split("/")[1] for key in out if "/" in key} >= {f"{KIND_PREFIX}{k}" for k in list_kinds()}
    assert out[f"all/{ROBUST_RELIABILITY}"]["count_00"] is not None


def test_the_summary_stacks_the_kinds_under_the_scores_and_the_drop_gets_a_paired_interval(mini_root: Path) -> None:
    rows = split_rows(mini_root)
    line = {r["path"]: i for i, r in enumerate(json_rows(mini_root))}
    row_ids = [line[r["path"]] for r in rows]
    labels = np.array([r["label"] for r in rows])
    rng = np.random.default_rng(0)
    conditions = 2 + len(PRESETS)
    scores = labels * 2.0 + rng.normal(0, 1, (conditions, labels.size))
    # The chains cost the detector most of its margin, image by image: clean and robust scores are correlated.
    scores[1] = scores[0] - labels * 1.5 + rng.normal(0, 0.3, labels.size)
    summary = summary_from_scores(protocol=NAME, config={}, manifest_url=str(mini_root / "manifest.jsonl"), split="test",
                                  row_ids=row_ids, scores=scores, score_kind=ScoreKind.LOGIT, resamples=200)
    drop = summary.metrics[f"mean/{DROP}"]["roc_auc_drop"]
    low, high = summary.intervals[f"mean/{DROP}"]["roc_auc_drop"]
    assert 0 < low < drop < high
    # Paired (resampled together) it is narrower than the two intervals combined as if independent.
    unpaired = difference_interval(summary.metrics["mean"]["roc_auc"], summary.intervals["mean"]["roc_auc"],
                                   summary.metrics[f"mean/{CHAINS}"]["roc_auc"], summary.intervals[f"mean/{CHAINS}"]["roc_auc"])
    assert high - low < 0.8 * (unpaired[1] - unpaired[0])


def _chained(root: Path, rows: list[dict], condition: str) -> torch.Tensor:
    """Independent of the loader: PIL open, the chain applied kind by kind, bilinear resize, tensor."""
    from evaluation.wild import condition_chain, get_kind

    images = []
    for row in rows:
        with Image.open(root / row["path"]) as image:
            rgb = image.convert("RGB")
        for name, params in condition_chain(condition, row["sha256"]):
            rgb = get_kind(name).apply(rgb, params)
        rgb = rgb.resize((SIZE, SIZE), Image.Resampling.BILINEAR) if rgb.size != (SIZE, SIZE) else rgb
        images.append(torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1))
    return torch.stack(images)


def test_a_wild_shard_scores_each_image_under_its_own_chain_the_same_in_any_sharding(mini_root: Path,
                                                                                       tmp_path: Path) -> None:
    rows = split_rows(mini_root)
    first = next(i for i, row in enumerate(rows) if row["label"] == 1) - 30
    artifact = write_torchscript(tmp_path / "d.pt", seed=4)
    config = {"presets": list(PRESETS)[:1], "seed": 5, "batch_size": 16}

    def shard(start: int, stop: int) -> np.ndarray:
        request = _request(mini_root, artifact, protocol=NAME, protocol_version=PROTOCOL.version, config=config,
                           first=first + start, last=first + stop)
        outcome = run_shard(request, lambda progress: None)
        assert outcome.status == "done", outcome.error
        assert outcome.conditions == ["", "chain-s5", list(PRESETS)[0]]
        return np.asarray(outcome.scores).reshape(3, stop - start)

    whole = shard(0, 60)
    # Equal up to the model's own float noise: another batch composition may round a logit's last bit otherwise.
    assert np.abs(np.concatenate([shard(0, 25), shard(25, 60)], axis=1) - whole).max() < 1e-6
    chosen = rows[first:first + 60]
    for k, condition in ((1, "chain-s5"), (2, list(PRESETS)[0])):
        direct = reference_scores(_chained(mini_root, chosen, condition), seed=4)
        assert np.abs(whole[k] - direct).max() < 1e-5, condition
    assert np.median(np.abs(whole[1] - whole[0])) > 1e-4  # the chains really changed what the detector saw


def test_the_loader_gives_every_image_the_same_chained_pixels_in_any_batch_and_on_any_thread(mini_root: Path) -> None:
    with (mini_root / "manifest.jsonl").open("rb") as handle:
        indexed = [IndexedRow(i, row) for i, row in zip(range(24), read_manifest_stream(handle), strict=False)]

    def pixels(batch_size: int, threads: int) -> torch.Tensor:
        batches = condition_batches(str(mini_root), iter(indexed), size=SIZE, batch_size=batch_size,
                                    conditions=["chain-s1"], threads=threads)
        return torch.cat([batch[0] for _, batch in batches])

    reference = pixels(24, 1)
    assert torch.equal(pixels(5, 2), reference) and torch.equal(pixels(7, 3), reference)


def test_a_chain_is_the_same_on_every_machine_and_numpy_version() -> None:
    # Drawn from SHA-256, not from numpy's streams: these exact values must never change within protocol v1.
    assert chain_for("0" * 64, 0) == [("saturation", {"factor": 0.534}), ("down-up", {"factor": 0.511}),
                                      ("rotate", {"degrees": 2.56}), ("sharpen", {"factor": 1.913}),
                                      ("motion-blur", {"length": 5, "angle": 0})]
