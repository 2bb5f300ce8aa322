"""Triplet-loss embeddings for image clustering (Ho, Keuper, Pfreundt, Keuper, ICPR 2020; seeds.md §5).

Three losses on squared Euclidean distances d(x, y) = ‖f(x) − f(y)‖²:
* ``standard`` (FaceNet): max(0, d(a,p) − d(a,n) + m), m = 1.
* ``improved`` (Cheng et al. 2016, the likely "loss 2"): max(0, d(a,p) − d(a,n) + m₁) + w·max(0, d(a,p) − m₂),
  m₁ = 1, m₂ = 0.1, w = 0.5 (this project's choice).
* ``absolute`` (the proposed one): max(0, α − d(a,n)) + max(0, d(a,p) − β), α = 3, β = 1 (the defaults of two
  third-party implementations; the paper's values are unknown).
The embedding of a small CNN is clustered by k-means (k given) and by correlation clustering (k not given)
with edge weights θ − d(i, j): θ = (α + β)/2 = 2 for the absolute loss, whose margins fix an absolute scale;
for the two relative losses, θ = the median pairwise squared distance of the embedded training images.
Labels are made noisy by symmetric flips: exactly round(rate·n) images get another class, uniformly.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.functional import relu

from models_zoo.registry import register_model

EMBEDDING_DIM = 16


def _d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).pow(2).sum(dim=1)


def standard_loss(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    return relu(_d(a, p) - _d(a, n) + margin).mean()


def improved_loss(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, margin: float = 1.0, intra: float = 0.1,
                  weight: float = 0.5) -> torch.Tensor:
    return (relu(_d(a, p) - _d(a, n) + margin) + weight * relu(_d(a, p) - intra)).mean()


def absolute_loss(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, alpha: float = 3.0, beta: float = 1.0) -> torch.Tensor:
    return (relu(alpha - _d(a, n)) + relu(_d(a, p) - beta)).mean()


LOSSES: dict[str, Callable[..., torch.Tensor]] = {"standard": standard_loss, "improved": improved_loss,
                                                   "absolute": absolute_loss}


class EmbeddingNet(nn.Module):
    """A small CNN: N×3×S×S in [0, 1] → N×16 embedding (no normalisation: the absolute loss needs a scale)."""

    def __init__(self, dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def noisy_labels(labels: np.ndarray, rate: float, classes: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly round(rate·n) labels flipped to another class drawn uniformly."""
    noisy = labels.copy()
    flip = rng.choice(len(labels), int(round(rate * len(labels))), replace=False)
    offsets = rng.integers(1, classes, len(flip))
    noisy[flip] = (labels[flip] + offsets) % classes
    return noisy


def sample_triplets(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` (anchor, positive, negative) index triples: positive shares the anchor's label, negative not."""
    by_label = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    usable = [c for c, idx in by_label.items() if len(idx) >= 2]
    triples = np.empty((count, 3), dtype=np.int64)
    for t in range(count):
        c = usable[rng.integers(len(usable))]
        anchor, positive = rng.choice(by_label[c], 2, replace=False)
        negative = rng.choice(np.flatnonzero(labels != c))
        triples[t] = anchor, positive, negative
    return triples


def train_embedding(images: torch.Tensor, labels: np.ndarray, loss: str, *, steps: int = 300, batch: int = 64,
                    seed: int = 0, lr: float = 1e-3) -> tuple[EmbeddingNet, list[float]]:
    """The CPU mini-scale recipe: Adam, random triplets by (possibly noisy) label; returns the net and its losses."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net, objective = EmbeddingNet(), LOSSES[loss]
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        a, p, n = torch.from_numpy(sample_triplets(labels, batch, rng)).T
        value = objective(net(images[a]), net(images[p]), net(images[n]))
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        optimiser.step()
        history.append(float(value))
    return net.eval(), history


def embed(net: EmbeddingNet, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([net(chunk) for chunk in images.split(256)]).numpy().astype(np.float64)


def cluster_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """NMI, ARI and accuracy (clusters matched to classes one-to-one by the Hungarian method)."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    table = np.zeros((predicted.max() + 1, truth.max() + 1))
    np.add.at(table, (predicted, truth), 1)
    rows, cols = linear_sum_assignment(-table)
    return {"nmi": float(normalized_mutual_info_score(truth, predicted)),
            "ari": float(adjusted_rand_score(truth, predicted)),
            "accuracy": float(table[rows, cols].sum() / len(truth))}


def threshold_for(loss: str, train_embeddings: np.ndarray) -> float:
    if loss == "absolute":
        return 2.0  # (α + β) / 2
    squared = np.sum((train_embeddings[:, None] - train_embeddings[None]) ** 2, axis=-1)
    return float(np.median(squared[np.triu_indices(len(squared), k=1)]))


def cluster_embedding(embeddings: np.ndarray, truth: np.ndarray, k: int, threshold: float, seed: int = 0) -> dict:
    from sklearn.cluster import KMeans

    from models_zoo.clustering import correlation_clustering, weights_from_embeddings

    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(embeddings)
    correlation = correlation_clustering(weights_from_embeddings(embeddings, threshold))
    return {"kmeans": cluster_scores(truth, kmeans),
            "correlation": cluster_scores(truth, correlation) | {"clusters": int(correlation.max() + 1)}}


def _builder(loss: str) -> Callable[..., EmbeddingNet]:
    def build(images: torch.Tensor | None = None, labels: np.ndarray | None = None, steps: int = 300,
              seed: int = 0) -> EmbeddingNet:
        if images is None or labels is None:
            torch.manual_seed(seed)
            return EmbeddingNet().eval()
        return train_embedding(images, labels, loss, steps=steps, seed=seed)[0]
    build.__name__ = build.__qualname__ = f"build_{loss}"  # the name its card refers to
    return build


build_standard = register_model("triplet-standard")(_builder("standard"))
build_improved = register_model("triplet-improved")(_builder("improved"))
build_absolute = register_model("triplet-absolute")(_builder("absolute"))


def noise_experiment(train_images: torch.Tensor, train_labels: np.ndarray, test_images: torch.Tensor,
                     test_labels: np.ndarray, *, rates: tuple[float, ...] = (0.0, 0.2, 0.4),
                     losses: tuple[str, ...] = ("standard", "improved", "absolute"), steps: int = 150,
                     seed: int = 0) -> dict:
    """Each loss trained at each label-noise rate; the test embeddings clustered by k-means (k = classes) and by
    correlation clustering; NMI, ARI and accuracy per (loss, rate, clustering)."""
    classes = int(max(train_labels.max(), test_labels.max()) + 1)
    rng = np.random.default_rng(seed)
    rows = []
    for rate in rates:
        noisy = noisy_labels(train_labels, rate, classes, rng)
        for loss in losses:
            net, history = train_embedding(train_images, noisy, loss, steps=steps, seed=seed)
            train_embeddings, test_embeddings = embed(net, train_images), embed(net, test_images)
            scores = cluster_embedding(test_embeddings, test_labels, classes, threshold_for(loss, train_embeddings), seed)
            rows.append({"loss": loss, "noise": rate, "final_loss": float(np.mean(history[-10:])), **scores})
    return {"rates": list(rates), "losses": list(losses), "steps": steps, "seed": seed, "classes": classes, "rows": rows}
