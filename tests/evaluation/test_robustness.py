"""JPEG and resize robustness: perturbations, the area summary, and a shard against a direct computation."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.errors import UserFault
from evaluation.perturbations import perturb
from evaluation.protocols import get_protocol
from evaluation.protocols.cross_generator import subset_metrics
from evaluation.protocols.robustness import normalised_area, summarise
from evaluation.runner import run_shard
from tests.detector_files import reference_scores, write_torchscript
from tests.evaluation.test_runner import SIZE, _request
from tests.reference import load_images, split_rows


def _photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))


def test_jpeg_is_pillows_own_encoding_and_scale_keeps_the_aspect() -> None:
    image = _photo()
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70)
    expected = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    assert np.array_equal(np.asarray(perturb(image, "jpeg-70")), expected)
    assert perturb(image, "scale-0.5").size == (24, 20)
    assert perturb(image, "") is image and perturb(image, "scale-1") is image
    for bad in ("jpeg-0", "jpeg-x", "scale-2", "blur-3"):
        with pytest.raises(UserFault, match="unknown perturbation"):
            perturb(image, bad)


def test_the_normalised_area_is_the_mean_level_of_the_curve() -> None:
    assert normalised_area([30, 50, 100], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    # A line from 0.2 at x=0 to 1.0 at x=1: area 0.6; the order of the points does not matter.
    assert normalised_area([1.0, 0.0, 0.5], [1.0, 0.2, 0.6]) == pytest.approx(0.6)
    assert normalised_area([1.0], [0.7]) == 0.7 and normalised_area([1, 2], [0.5, None]) is None


def test_summarise_is_cross_generator_per_condition_plus_areas() -> None:
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(30, int), np.ones(60, int)]
    generators = [None] * 30 + ["a"] * 30 + ["b"] * 30
    scores = rng.normal(0.0, 2.0, (2, 90))
    config = {**get_protocol("jpeg-robustness").default_config, "qualities": [90, 50]}
    out = summarise(labels, scores, generators, np.full(90, "test", dtype=object), config)
    for k, condition in enumerate(("jpeg-90", "jpeg-50")):
        for subset, metrics in subset_metrics(labels, scores[k], generators, 0.0).items():
            assert out[f"{subset}/{condition}"] == metrics
    area = out["mean/area"]["acc_mean_area"]
    assert area == pytest.approx((out["mean/jpeg-90"]["acc_mean"] + out["mean/jpeg-50"]["acc_mean"]) / 2)


def _perturbed(root: Path, rows: list[dict], condition: str) -> torch.Tensor:
    """Independent pipeline: PIL open, the condition by hand, bilinear resize to SIZE, to a tensor."""
    images = []
    for row in rows:
        with Image.open(root / row["path"]) as image:
            rgb = image.convert("RGB")
        if condition.startswith("jpeg-"):
            buffer = io.BytesIO()
            rgb.save(buffer, format="JPEG", quality=int(condition[5:]))
            rgb = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        else:
            factor = float(condition[6:])
            rgb = rgb.resize((round(rgb.width * factor), round(rgb.height * factor)), Image.Resampling.BILINEAR)
        rgb = rgb.resize((SIZE, SIZE), Image.Resampling.BILINEAR) if rgb.size != (SIZE, SIZE) else rgb
        images.append(torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1))
    return torch.stack(images)


@pytest.mark.parametrize(("protocol", "config", "conditions"), [
    ("jpeg-robustness", {"qualities": [90, 30]}, ["jpeg-90", "jpeg-30"]),
    ("resize-robustness", {"scales": [0.5]}, ["scale-0.5"]),
])
def test_a_robustness_shard_perturbs_real_and_generated_images_alike_like_a_direct_computation(
    mini_root: Path, tmp_path: Path, protocol: str, config: dict, conditions: list[str],
) -> None:
    rows = split_rows(mini_root)
    first = next(i for i, row in enumerate(rows) if row["label"] == 1) - 60  # 60 real, then 60 generated rows
    rows = rows[first:first + 120]
    labels = np.array([row["label"] for row in rows])
    assert (labels == 0).sum() == (labels == 1).sum() == 60
    artifact = write_torchscript(tmp_path / "d.pt", seed=4)
    request = _request(mini_root, artifact, protocol=protocol, protocol_version=get_protocol(protocol).version,
                       config={**config, "batch_size": 40}, first_row=first, last_row=first + 120)
    outcome = run_shard(request, lambda progress: None)
    assert outcome.status == "done", outcome.error
    assert outcome.conditions == conditions and len(outcome.scores) == len(conditions) * 120
    scores = np.asarray(outcome.scores).reshape(len(conditions), 120)
    clean = reference_scores(load_images(mini_root, rows, SIZE), seed=4)
    for k, condition in enumerate(conditions):
        direct = reference_scores(_perturbed(mini_root, rows, condition), seed=4)
        assert np.abs(scores[k] - direct).max() < 1e-5, condition
        for label in (0, 1):  # each class really was perturbed: its scores moved away from the clean ones
            moved = np.abs(scores[k][labels == label] - clean[labels == label])
            # Ten times the agreement tolerance above: a mild JPEG (quality 90) moves a tiny CNN's logits little.
            assert np.median(moved) > 1e-4, (condition, label)
