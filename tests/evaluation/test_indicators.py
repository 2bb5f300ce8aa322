"""The robustness indicators on synthetic features whose clusters are known, the rank correlation against
scipy and a hand-counted case, and the population study's plumbing on the mini benchmark (a few steps per model,
so the numbers are not the point: each model is measured and correlated)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from evaluation.indicators import INDICATORS, feature_indicators, rank_correlation
from evaluation.protocols.robustness import normalised_area
from models_zoo.indicator_study import (
    ROBUSTNESS,
    TEST_CONDITIONS,
    StudyCnn,
    load_split,
    measure,
    population,
    run_study,
)
from tests.reference import small_version


def _sources(per: int) -> tuple[np.ndarray, np.ndarray]:
    sources = np.repeat(["real", "gan", "diffusion"], per)
    return sources, (sources != "real").astype(int)


def test_well_separated_sources_score_perfectly_and_noise_scores_nothing() -> None:
    rng = np.random.default_rng(0)
    sources, labels = _sources(40)
    centres = {"real": np.zeros(6), "gan": np.full(6, 8.0), "diffusion": np.r_[np.full(3, 8.0), np.full(3, -8.0)]}
    clustered = np.stack([centres[s] for s in sources]) + rng.normal(size=(120, 6))
    found = feature_indicators(clustered, labels, sources)
    assert found["nmi"] == pytest.approx(1.0) and found["ari"] == pytest.approx(1.0)
    assert found["silhouette"] > 0.6 and found["purity"] == pytest.approx(2 / 3)  # k = 2 splits off one source
    noise = feature_indicators(rng.normal(size=(120, 6)), labels, sources)
    assert noise["nmi"] < 0.1 and abs(noise["ari"]) < 0.05 and noise["silhouette"] < found["silhouette"]
    assert noise["spread"] < 0.1 < found["spread"]


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
def test_spread_is_fishers_ratio_of_traces() -> None:
    # Two sources, two points each, on a line: centres ±2, each point ±1 from its centre (after standardising,
    # the ratio of between to within scatter is unchanged by the one scale).
    features = np.array([[-3.0], [-1.0], [1.0], [3.0]] * 3)
    sources = np.array(["real", "real", "gan", "gan"] * 3)
    found = feature_indicators(features, (sources == "gan").astype(int), sources)
    assert found["spread"] == pytest.approx((12 * 4) / (12 * 1))


def test_too_few_images_give_no_indicators() -> None:
    sources, labels = _sources(2)
    assert feature_indicators(np.ones((6, 3)), labels, sources) == dict.fromkeys(INDICATORS)


def test_rank_correlation_is_spearmans_with_an_interval_that_contains_it() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=25)
    y = x + rng.normal(0, 0.8, 25)
    found = rank_correlation(x, y, resamples=500)
    assert found["rho"] == pytest.approx(spearmanr(x, y).statistic) and found["models"] == 25
    assert found["interval"][0] < found["rho"] < found["interval"][1]
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1])["rho"] == pytest.approx(-1.0)
    assert rank_correlation([1, 1, 1], [1, 2, 3])["rho"] is None  # a constant indicator says nothing


def test_the_population_covers_every_variation() -> None:
    members = population(["original", "biased", "unbiased"], seeds=[0, 1])
    assert len(members) == 24 and len({m.name for m in members}) == 24


def _mean_auc(test, logits) -> float:
    from sklearn.metrics import roc_auc_score

    generators = np.array([g or "" for g in test.generators])
    names = sorted(set(generators[test.labels == 1]))
    return float(np.mean([roc_auc_score(test.labels[keep], logits[keep])
                          for name in names if (keep := (generators == name) | (test.labels == 0)).any()]))


def test_a_models_jpeg_area_is_its_curve_and_the_study_correlates_every_pair(mini_root: Path, tmp_path: Path) -> None:
    root = small_version(mini_root, tmp_path, per_class=20)  # 40 images per split: the plumbing, not the numbers
    assert TEST_CONDITIONS == ("", "jpeg-100", "jpeg-90", "jpeg-70", "jpeg-50", "jpeg-30", "chain-s0")
    test = load_split(root, "test", TEST_CONDITIONS)
    torch.manual_seed(0)
    model = StudyCnn().eval()
    numbers = measure(model, test)
    assert set(INDICATORS) | set(ROBUSTNESS) | {"clean_acc"} <= set(numbers)
    assert numbers["jpeg_drop"] == pytest.approx(numbers["clean_acc"] - numbers["jpeg_area"])
    with torch.no_grad():  # the wild numbers: scikit-learn's ROC-AUC per generator subset, averaged
        clean, chained = (model(images).double().numpy() for images in (test.images[0], test.images[-1]))
    assert numbers["wild_auc"] == pytest.approx(_mean_auc(test, chained))
    assert numbers["wild_drop"] == pytest.approx(_mean_auc(test, clean) - _mean_auc(test, chained))
    assert normalised_area([1.0, 2.0], [0.5, 0.7]) == pytest.approx(0.6)
    study = run_study({"original": root}, "original", seeds=(0,), steps=3, log=lambda line: None)
    assert len(study["models"]) == 4 and {m["augmentation"] for m in study["models"]} == {"none", "flip", "noise", "jpeg"}
    assert set(study["correlations"]) == {f"{i}~{r}" for i in INDICATORS for r in ROBUSTNESS}
    assert all(c["models"] == 4 for c in study["correlations"].values())
