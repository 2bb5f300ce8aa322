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

``TripletDetector`` (entry "triplet-kmeans") turns the embedding into a detector: it is trained with triplets
over the train split's *source groups* ("real", or the generator's name; supervision that implies the
real/generated label, so the entry is not unsupervised), then k-means (k = 2) on the unlabelled train
embeddings gives two centres; the labels only name which centre is "generated". The logit is
‖e − c_real‖² − ‖e − c_generated‖², positive = generated.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one CPU thread for the block. With several, the convolutions' backward reductions add in a
    run-dependent order, and Adam amplifies the differences (the bias before each batch norm has a gradient of
    pure rounding noise), so the same seed would not give the same weights."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_embedding(images: torch.Tensor, labels: np.ndarray, loss: str, *, steps: int = 300, batch: int = 64,
                    seed: int = 0, lr: float = 1e-3) -> tuple[EmbeddingNet, list[float]]:
    """The CPU mini-scale recipe: Adam, random triplets by (possibly noisy) label; returns the net and its losses."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net, objective = EmbeddingNet(), LOSSES[loss]
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    history = []
    with one_thread():
        for _ in range(steps):
            a, p, n = torch.from_numpy(sample_triplets(labels, batch, rng)).T
            value = objective(net(images[a]), net(images[p]), net(images[n]))
            optimiser.zero_grad(set_to_none=True)
            value.backward()
            optimiser.step()
            history.append(value.item())
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


MIN_INPUT_SIZE = 8  # three 2× max-pools must leave at least one pixel for the adaptive pooling


class TripletDetector(nn.Module):
    """The embedding net and two cluster centres: N×3×S×S in [0, 1] → N logits ‖e − c_real‖² − ‖e − c_gen‖²."""

    def __init__(self, embedding: EmbeddingNet | None = None, dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.embedding = embedding if embedding is not None else EmbeddingNet(dim)
        # Buffers, not parameters: the centres come from k-means, never from a gradient; saved in the state dict.
        self.register_buffer("centre_real", torch.zeros(dim))
        self.register_buffer("centre_generated", torch.zeros(dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.features(x)
        return (e - self.centre_real).pow(2).sum(dim=1) - (e - self.centre_generated).pow(2).sum(dim=1)


def _check_size(input_size: int) -> None:
    if input_size < MIN_INPUT_SIZE:
        raise ValueError(f"triplet-kmeans needs images of at least {MIN_INPUT_SIZE} px, not {input_size}")


@register_model("triplet-kmeans")
def build_triplet_kmeans(input_size: int = 64) -> TripletDetector:
    """The untrained detector: zero centres, so every logit is exactly 0 (P = 0.5). The layout does not depend on
    the size (adaptive pooling); the weights are seeded so two builds are equal, without touching the global RNG."""
    _check_size(input_size)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return TripletDetector().eval()


def source_group(label: int, generator: str | None) -> str:
    """A row's source: every real image is "real" (GenImage names a generator even for its real images)."""
    return "real" if label == 0 else (generator or "generated")


def _sampled_rows(root: Path, split: str, per_class: int, seed: int) -> list:
    """Up to ``per_class`` rows of each source group, a seeded uniform sample (reservoir sampling, so only the
    kept rows are ever held and a manifest sorted by content does not bias the pick)."""
    from models_zoo.data import split_rows

    rng = np.random.default_rng(seed)
    kept: dict[str, list] = {}
    seen: dict[str, int] = {}
    for indexed in split_rows(root, split):
        group = source_group(indexed.row.label, indexed.row.generator)
        seen[group] = seen.get(group, 0) + 1
        reservoir = kept.setdefault(group, [])
        if len(reservoir) < per_class:
            reservoir.append(indexed)
        elif (slot := int(rng.integers(seen[group]))) < per_class:
            reservoir[slot] = indexed
    return sorted((r for rows in kept.values() for r in rows), key=lambda r: r.row_id)


def group_images(root: Path, split: str, *, input_size: int, per_class: int,
                 seed: int = 0) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(images N×3×S×S, source-group ids, labels with 1 = generated) of at most ``per_class`` images per group,
    decoded exactly as evaluation decodes them (centre crops, bilinear resize). Group ids: 0 = real, then the
    generators in name order."""
    from evaluation.datasets.images import image_batches
    from evaluation.datasets.manifest import centre_crops

    rows = _sampled_rows(Path(root), split, per_class, seed)
    if not rows:
        raise ValueError(f"the {split} split of {root} has no images")
    names = sorted({source_group(r.row.label, r.row.generator) for r in rows}, key=lambda g: (g != "real", g))
    batches = [batch for _, batch in image_batches(str(root), iter(rows), size=input_size, batch_size=64,
                                                   crops=centre_crops(str(root)))]
    groups = np.array([names.index(source_group(r.row.label, r.row.generator)) for r in rows], dtype=np.int64)
    labels = np.array([r.row.label for r in rows], dtype=np.int64)
    return torch.cat(batches), groups, labels


def kmeans_centres(embeddings: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(c_real, c_generated) of k-means with k = 2 on unlabelled embeddings. The labels only name the centres,
    as in models_zoo.spectral: "generated" is the cluster that holds a larger share of the generated images than
    of the real ones."""
    from sklearn.cluster import KMeans

    clusters = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(embeddings)
    fake = int(np.mean(clusters.labels_[labels == 1]) > np.mean(clusters.labels_[labels == 0]))
    return clusters.cluster_centers_[1 - fake], clusters.cluster_centers_[fake]


def batch_triplets(groups: np.ndarray) -> torch.Tensor:
    """Every (anchor, positive, negative) index triple of a batch: positive ≠ anchor in its group, negative not."""
    same = groups[:, None] == groups[None]
    anchor, positive = np.nonzero(same & ~np.eye(len(groups), dtype=bool))
    negatives = [np.flatnonzero(~same[a]) for a in anchor]
    counts = np.array([len(n) for n in negatives])
    return torch.from_numpy(np.stack([np.repeat(anchor, counts), np.repeat(positive, counts),
                                      np.concatenate(negatives)], axis=1))


def train_group_embedding(images: torch.Tensor, groups: np.ndarray, loss: str, *, steps: int = 200,
                          per_group: int = 8, seed: int = 0, lr: float = 1e-3) -> tuple[EmbeddingNet, list[float]]:
    """Adam on batches of ``per_group`` images of every group, each embedded once and used in all its triplets
    (a third of ``train_embedding``'s forward passes per triplet, and many more triplets per step)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    net, objective = EmbeddingNet(), LOSSES[loss]
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    history = []
    with one_thread():
        for _ in range(steps):
            pick = np.concatenate([rng.choice(m, min(per_group, len(m)), replace=False) for m in members])
            a, p, n = batch_triplets(groups[pick]).T
            e = net(images[torch.from_numpy(pick)])
            value = objective(e[a], e[p], e[n])
            optimiser.zero_grad(set_to_none=True)
            value.backward()
            optimiser.step()
            history.append(value.item())
    return net.eval(), history


def fit_triplet_detector(images: torch.Tensor, groups: np.ndarray, labels: np.ndarray, *, loss: str = "absolute",
                         steps: int = 200, seed: int = 0) -> TripletDetector:
    """Embedding trained with triplets over ``groups``; centres from k-means on the embedded ``images``."""
    net, _ = train_group_embedding(images, groups, loss, steps=steps, seed=seed)
    with one_thread():  # the same embeddings, hence the same centres, on every run
        embeddings = embed(net, images)
    real, generated = kmeans_centres(embeddings, labels, seed=seed)
    detector = TripletDetector(net)
    detector.centre_real.copy_(torch.from_numpy(real))
    detector.centre_generated.copy_(torch.from_numpy(generated))
    return detector.eval()


def train_triplet_detector(root: Path, *, input_size: int, seed: int = 0, steps: int = 200, loss: str = "absolute",
                           per_class: int = 200) -> TripletDetector:
    """The recipe of "triplet-kmeans" on the train split of the version at ``root``: at most ``per_class`` images
    per source group are held (groups × per_class × 3·S² floats: 6 × 200 at 64 px ≈ 60 MB), then ``steps`` Adam
    steps, each on 8 images of every group and all their triplets, and k-means on the held images."""
    _check_size(input_size)
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use {', '.join(LOSSES)}")
    images, groups, labels = group_images(root, "train", input_size=input_size, per_class=per_class, seed=seed)
    if len(np.unique(labels)) < 2:
        raise ValueError(f"the train split of {root} needs real and generated images")
    return fit_triplet_detector(images, groups, labels, loss=loss, steps=steps, seed=seed)


def split_logits(detector: nn.Module, root: Path, split: str, *, input_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(logits, labels) of every batch of ``split``, scored by the module itself."""
    from models_zoo.data import split_batches

    with torch.no_grad():
        for images, labels in split_batches(root, split, input_size=input_size):
            yield detector(images).numpy(), labels
