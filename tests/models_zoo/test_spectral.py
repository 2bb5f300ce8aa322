"""The spectral detector: a known spectrum, the reference's per-image profile, lengths, fitting, export."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models_zoo.registry import create_model
from models_zoo.spectral import EPS, RadialProfile, fit_decision, fit_detector, luma, radial_bins, spectral_features
from tests.models_zoo.slow_spectral import obvious_profile, slow_profile


@pytest.mark.parametrize(("height", "width", "length"), [(1024, 1024, 722), (256, 256, 179), (218, 178, 139),
                                                        (128, 128, 88), (64, 64, 43), (32, 32, 20)])
def test_profile_lengths_are_the_ones_measured_on_the_reference(height: int, width: int, length: int) -> None:
    assert radial_bins(height, width)[2] - 2 == length  # seeds.md §8.2: lengths of radialProfile.py's output


def test_a_flat_image_has_a_flat_profile_at_the_epsilon_floor() -> None:
    # The FFT of a constant image is zero away from DC (which the profile drops): every ring is 20·ln(1e-8).
    images = torch.full((1, 3, 64, 64), 0.5)
    assert np.allclose(spectral_features(images).numpy(), 20 * np.log(EPS), atol=1e-3)


def test_a_cosine_puts_its_energy_in_the_rings_of_its_frequency() -> None:
    # 128 + 100·cos(π x / 2) takes the integer values 228, 128, 28, 128: no rounding noise in the 8-bit luma.
    k = 16
    gray = np.tile(128 + 100 * np.round(np.cos(2 * np.pi * k * np.arange(64) / 64)), (64, 1))
    profile = spectral_features(torch.from_numpy(np.repeat(gray[None, None] / 255, 3, axis=1))).numpy()[0]
    # The two peaks sit k columns either side of the DC bin (32, 32); from the centre (31.5, 31.5) they fall in
    # rings floor(hypot(k ± 0.5, 0.5)) = 16 and 15, each ring mean = (peak + (n − 1)·floor) / n.
    counts = radial_bins(64, 64)[1].numpy()
    peak, floor = 20 * np.log(100 * 64 * 64 / 2), 20 * np.log(EPS)
    for ring in (15, 16):
        expected = (peak + (counts[ring] - 1) * floor) / counts[ring]
        assert profile[ring - 1] == pytest.approx(expected, rel=1e-4)  # ring r is entry r − 1 (DC dropped)
    others = np.delete(profile, [14, 15])
    assert np.allclose(others, floor, atol=0.5)


def test_batched_features_equal_the_slow_per_image_reference() -> None:
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (6, 3, 48, 48)).astype(np.float64) / 255)
    gray = luma(images).numpy()
    batched = spectral_features(images).numpy()
    for i in range(len(images)):
        assert np.allclose(batched[i], slow_profile(gray[i]), rtol=0, atol=1e-9)
        assert np.allclose(batched[i], obvious_profile(gray[i]), rtol=0, atol=1e-9)
    single = RadialProfile(48, 48, dtype=torch.float32)(torch.from_numpy(gray))  # the fast variant
    assert np.allclose(single.numpy(), batched, rtol=1e-5, atol=1e-3)


def test_luma_is_the_8_bit_gray_of_pillow() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pillow = np.asarray(Image.fromarray(pixels).convert("L"), dtype=np.float64)
    ours = luma(torch.from_numpy(pixels.transpose(2, 0, 1)[None].astype(np.float64) / 255)).numpy()[0]
    assert np.abs(ours - pillow).max() <= 1 and np.mean(ours == pillow) > 0.99  # rounding of exact halves


def _upsample_split(mini_root: Path, split: str, limit: int) -> tuple[torch.Tensor, np.ndarray]:
    """Real tiles and the 'upsample' family (periodic spectral peaks) of one split, balanced."""
    from tests.reference import json_rows, load_images

    rows = [r for r in json_rows(mini_root) if r["split"] == split and r["generator"] in (None, "upsample")]
    real = [r for r in rows if r["label"] == 0][:limit]
    fake = [r for r in rows if r["label"] == 1][:limit]
    return load_images(mini_root, real + fake, 64).double(), np.r_[np.zeros(len(real)), np.ones(len(fake))]


@pytest.mark.parametrize(("method", "at_least"), [("lr", 0.9), ("svm", 0.9), ("kmeans", 0.6)])
def test_the_detectors_find_the_upsampling_artefacts_and_export_to_torchscript(mini_root, method, at_least) -> None:
    train_x, train_y = _upsample_split(mini_root, "train", 100)
    test_x, test_y = _upsample_split(mini_root, "test", 100)
    model = fit_detector(method, train_x, train_y)
    assert model.state_dict().keys() == create_model(f"spectral-{method}", input_size=64).state_dict().keys()
    logits = model(test_x).numpy()
    assert np.mean((logits > 0) == (test_y == 1)) >= at_least
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    buffer.seek(0)
    reloaded = torch.jit.load(buffer)
    assert torch.equal(reloaded(test_x), model(test_x))
    # The module's decision is the fitted classifier's: same sign as sklearn on the same profiles.
    decision = fit_decision(spectral_features(train_x).numpy(), train_y, method)
    direct = spectral_features(test_x).numpy() @ decision.weight + decision.bias
    assert np.allclose(logits, direct.astype(np.float32), rtol=1e-5, atol=1e-4)


def test_the_few_shot_curve_is_seeded_and_equals_a_direct_fit() -> None:
    from models_zoo.spectral import few_shot_curve

    rng = np.random.default_rng(2)
    train = np.r_[rng.normal(0, 1, (60, 5)), rng.normal(1.5, 1, (60, 5))]
    labels = np.r_[np.zeros(60, int), np.ones(60, int)]
    test = np.r_[rng.normal(0, 1, (100, 5)), rng.normal(1.5, 1, (100, 5))]
    test_labels = np.r_[np.zeros(100, int), np.ones(100, int)]
    curve = few_shot_curve(train, labels, test, test_labels, sizes=(20, 100, 500), repeats=1, seed=4, methods=("lr",))
    assert curve["sizes"] == [20, 100]  # 500 needs 250 per class; the pool has 60
    assert curve == few_shot_curve(train, labels, test, test_labels, sizes=(20, 100, 500), repeats=1, seed=4,
                                   methods=("lr",))
    # The same draws and fits by hand.
    draw = np.random.default_rng(4)
    for i, n in enumerate((20, 100)):
        pick = np.r_[draw.choice(np.arange(60), n // 2, replace=False), draw.choice(np.arange(60, 120), n // 2, replace=False)]
        decision = fit_decision(train[pick], labels[pick], "lr", seed=0)
        predicted = (test @ decision.weight + decision.bias) > 0
        expected = (np.mean(~predicted[test_labels == 0]) + np.mean(predicted[test_labels == 1])) / 2
        assert curve["methods"]["lr"]["mean"][i] == pytest.approx(expected)
    assert curve["methods"]["lr"]["mean"][-1] > 0.75  # the classes are 1.5 standard deviations apart
