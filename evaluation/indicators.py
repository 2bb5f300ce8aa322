"""Feature-space robustness indicators: this project's own definitions (the paper's, seeds.md §2, could not be
read), computed from a detector's latent features of clean images by unsupervised clustering. Numpy and
scikit-learn; no torch.

The features are standardised per dimension (zero mean, unit variance over the images; constant dimensions
dropped). Then, with k-means (scikit-learn, ``n_init=10``, ``random_state=0``):

- ``silhouette``: the best mean silhouette over k = 2…6 clusters (label-free: how clustered the space is);
- ``purity``: for k = 2, the share of images whose cluster's majority class (real or generated) is theirs;
- ``nmi`` and ``ari``: for k = the number of sources (real plus each generator), the normalised mutual
  information and adjusted Rand index between clusters and sources;
- ``spread``: between-source scatter over within-source scatter (traces, Fisher's ratio): how far apart the
  sources lie relative to their own width.

``rank_correlation`` gives Spearman's ρ between an indicator and a robustness measure over a population of
models, with a percentile bootstrap interval over the models.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

INDICATORS = ("silhouette", "purity", "nmi", "ari", "spread")
K_RANGE = range(2, 7)


def standardised(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    spread = x.std(axis=0)
    keep = spread > 1e-12
    return (x[:, keep] - x[:, keep].mean(axis=0)) / spread[keep]


def _kmeans(x: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(x)


def _purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    return float(sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters)) / len(labels))


def _spread(x: np.ndarray, sources: np.ndarray) -> float:
    centre = x.mean(axis=0)
    between = within = 0.0
    for source in np.unique(sources):
        members = x[sources == source]
        between += len(members) * float(((members.mean(axis=0) - centre) ** 2).sum())
        within += float(((members - members.mean(axis=0)) ** 2).sum())
    return between / within if within > 0 else float("inf")


def feature_indicators(features: np.ndarray, labels: Sequence[int], sources: Sequence[str]) -> dict[str, float | None]:
    """Every indicator of ``INDICATORS`` for N images' features, labels (0 real, 1 generated) and sources (the
    generator's name, or "real"). None where it cannot be computed (too few images or one constant feature)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    x, y = standardised(features), np.asarray(labels, dtype=np.int64)
    names = np.asarray(sources, dtype=object)
    if x.shape[1] == 0 or len(x) < max(K_RANGE) + 1:
        return dict.fromkeys(INDICATORS)
    scores = [silhouette_score(x, c) for k in K_RANGE if len(np.unique(c := _kmeans(x, k))) > 1]
    by_source = _kmeans(x, len(np.unique(names))) if len(np.unique(names)) > 1 else np.zeros(len(x), dtype=int)
    return {
        "silhouette": float(max(scores)) if scores else None,
        "purity": _purity(_kmeans(x, 2), y),
        "nmi": float(normalized_mutual_info_score(names, by_source)),
        "ari": float(adjusted_rand_score(names, by_source)),
        "spread": _spread(x, names),
    }


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def rank_correlation(indicator: Sequence[float], robustness: Sequence[float], resamples: int = 1000,
                     seed: int = 0) -> dict[str, float | list[float] | int | None]:
    """Spearman's ρ with a 95 % percentile bootstrap interval over the models (resampled with replacement;
    resamples whose ρ is undefined are skipped), and the number of models."""
    x, y = np.asarray(indicator, dtype=np.float64), np.asarray(robustness, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    rho = spearman(x, y)
    rng = np.random.default_rng(seed)
    draws = [r for _ in range(resamples) if (r := spearman(x[i := rng.integers(0, len(x), len(x))], y[i])) is not None]
    interval = [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))] if draws else None
    return {"rho": rho, "interval": interval, "models": int(len(x))}
