"""The spectral detector of "Unmasking DeepFakes with simple Features" (seeds.md §8), batched.

Pipeline per image: 8-bit grey → unnormalised 2-D FFT → fftshift → +1e-8 → 20·ln|F| → azimuthal average
(integer radius bins around ((W−1)/2, (H−1)/2), first and last bins dropped, as radialProfile.py) → a linear
decision (logistic regression or SVM) or two k-means centres. Training reads image files to the grey the
authors' ``cv2.imread(path, 0)`` gives (``read_gray``) and computes profiles with ``profiles`` (scipy's FFT and
numpy, threads over images); ``SpectralDetector`` is one torch module with the feature pipeline (grey by ``luma``
from the RGB the platform hands it) and the decision inside, so it exports and is evaluated like an upload.
"""
from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.sparse
import torch
from torch import nn

from models_zoo.cards import SPECTRAL_PROFILE_VERSION
from models_zoo.registry import register_model

EPS = 1e-8

# RGB→grey weights in fixed point, as the two libraries behind cv2.imread(path, 0) apply them:
LIBPNG_GRAY = (9797, 19234, 3737)  # png_set_rgb_to_gray(0.299, 0.587): ⌊(r·R + g·G + b·B) / 2^15⌋, truncated
OPENCV_GRAY = (4899, 9617, 1868)  # cvtColor RGB2GRAY (BMP, TIFF, …): ⌊(r·R + g·G + b·B + 2^13) / 2^14⌋, rounded
SRGB_GAMMA = 45455  # the file gamma (×10^5) libpng assumes for a PNG with an sRGB chunk
TASK_PIXELS = 1 << 16  # pixels one thread transforms at a time (one 256 px image): its spectrum stays in cache


@dataclass(frozen=True)
class Rings:
    """Ring of every element of the half spectrum (``rfft2`` layout, H × (W//2+1), row-major) and of the mirror
    (−u, −v) that the elements of columns 1 … ``mirrored_columns``−1 also stand for: a real image's spectrum is
    Hermitian, |F(−u,−v)| = |F(u,v)|, and adding the real ε keeps that; columns 0 and W/2 are their own
    mirror's column. Rings are around ((W−1)/2, (H−1)/2) of the *fftshifted* spectrum; no fftshift is done on
    data. ``counts``: pixels per ring of the full spectrum (all rings; the profile drops the first and last).
    ``sums``: the same map as a sparse bins × elements matrix (entry 2 where an element and its mirror share a
    ring), so one product gives an image's ring sums. Shared: never write to any of them."""

    own: np.ndarray
    mirror: np.ndarray
    mirrored_columns: int
    counts: np.ndarray
    sums: scipy.sparse.csr_array

    @property
    def bins(self) -> int:
        return len(self.counts)


def _ring(u: np.ndarray, v: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ring of unshifted FFT position (u, v) once fftshift has moved it."""
    p, q = (u + height // 2) % height, (v + width // 2) % width
    return np.floor(np.hypot(q - (width - 1) / 2, p - (height - 1) / 2)).astype(np.int64)


@functools.lru_cache(maxsize=8)
def ring_index(height: int, width: int) -> Rings:
    """The rings of one image size, computed once per process and shared by every path."""
    u, k = np.meshgrid(np.arange(height), np.arange(width // 2 + 1), indexing="ij")
    own = _ring(u, k, height, width).ravel()
    mirrored_columns = (width + 1) // 2
    mirror = _ring(-u[:, 1:mirrored_columns], -k[:, 1:mirrored_columns], height, width).ravel()
    counts = np.bincount(_ring(*np.indices((height, width)), height, width).ravel()).astype(np.float64)
    elements = np.arange(own.size).reshape(u.shape)
    columns = np.concatenate([elements.ravel(), elements[:, 1:mirrored_columns].ravel()])
    sums = scipy.sparse.csr_array((np.ones(columns.size), (np.concatenate([own, mirror]), columns)),
                                  shape=(len(counts), own.size))
    sums.sum_duplicates()
    for array in (own, mirror, counts):
        array.flags.writeable = False
    return Rings(own, mirror, mirrored_columns, counts, sums)


def _ring_sums(gray: np.ndarray, rings: Rings, out: np.ndarray) -> None:
    """Per image of an N×H×W chunk, the sum over each ring of ln|F + ε|² (F the unnormalised 2-D DFT)."""
    spectrum = scipy.fft.rfft2(np.asarray(gray, dtype=np.float64), workers=1)  # the pool runs the tasks in parallel
    real = spectrum.real
    real += EPS
    # ln((Re F + ε)² + (Im F)²) = 2·ln|F + ε| without complex abs (a hypot per element).
    power = np.square(real)
    power += np.square(spectrum.imag)
    np.log(power, out=power)
    for image, sums in zip(power, out, strict=True):
        sums[:] = rings.sums @ image.ravel()


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max(1, torch.get_num_threads()), thread_name_prefix="spectral")


os.register_at_fork(after_in_child=_pool.cache_clear)  # a forked child has none of the parent's threads


def profiles(gray: np.ndarray) -> np.ndarray:
    """N×H×W grey images (8-bit values, any real dtype) → N×(bins−2) float64 azimuthal averages of
    20·ln|fftshift(FFT) + ε|, equal to the authors' per-image algorithm. Chunks of images run in threads (the
    FFT and numpy's element-wise work release the GIL)."""
    if gray.ndim != 3:
        raise ValueError(f"expected N×H×W grey images, got an array of shape {gray.shape}")
    rings = ring_index(gray.shape[1], gray.shape[2])
    sums = np.empty((len(gray), rings.bins))
    step = max(1, TASK_PIXELS // (gray.shape[1] * gray.shape[2]))
    chunks = [slice(start, start + step) for start in range(0, len(gray), step)]
    list(_pool().map(lambda chunk: _ring_sums(gray[chunk], rings, sums[chunk]), chunks))
    return (sums * (10 / rings.counts))[:, 1:-1]


def _fixed_point_gray(rgb: np.ndarray, weights: tuple[int, int, int], shift: int, rounding: int) -> np.ndarray:
    pixels = rgb.astype(np.int32)
    total = weights[0] * pixels[..., 0] + weights[1] * pixels[..., 1] + weights[2] * pixels[..., 2]
    return ((total + rounding) >> shift).astype(np.uint8)


def _significant(gamma: int) -> bool:
    """libpng corrects only gammas (×10^5) more than 5 % away from 1."""
    return abs(gamma - 100_000) > 5_000


def _reciprocal(gamma: int) -> int:
    return math.floor(1e10 / gamma + 0.5)  # png_reciprocal


def _png_gamma_table(gamma: int) -> np.ndarray:
    """libpng's 8-bit gamma table for exponent gamma/10^5: i → ⌊255·(i/255)^γ + ½⌋, 0 and 255 kept."""
    levels = np.arange(256)
    if not _significant(gamma):
        return levels
    table = np.floor(255 * (levels / 255) ** (gamma * 1e-5) + 0.5).astype(np.int64)
    table[[0, 255]] = 0, 255
    return table


def _png_gray(rgb: np.ndarray, info: dict) -> np.ndarray:
    """libpng's RGB→grey as OpenCV's PNG reader asks for it (png_set_rgb_to_gray(0.299, 0.587)): truncated
    fixed point; when the file declares a gamma (gAMA, or sRGB) that libpng finds significant, the weighted sum
    is taken in linear light through its 8-bit tables (the screen gamma defaults to the file's inverse), rounded."""
    gamma = SRGB_GAMMA if "srgb" in info else round(float(info.get("gamma", 1.0)) * 100_000)
    screen = _reciprocal(gamma)
    if not (_significant(gamma) or _significant(screen)):
        return _fixed_point_gray(rgb, LIBPNG_GRAY, 15, 0)
    to_linear, from_linear = _png_gamma_table(screen), _png_gamma_table(_reciprocal(screen))
    linear = _fixed_point_gray(to_linear[rgb].astype(np.uint8), LIBPNG_GRAY, 15, 1 << 14)
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])  # libpng keeps grey pixels as they are
    return np.where(grey, rgb[..., 0], from_linear[linear]).astype(np.uint8)


def read_gray(path: Path) -> np.ndarray:
    """An image file as the authors read it, ``cv2.imread(path, 0)``: H×W uint8, EXIF orientation applied.

    JPEG: the decoder's own luminance plane (libjpeg decodes Y only, no chroma upsampling or colour conversion;
    Pillow does the same when drafted to "L"). PNG: libpng's grey (``_png_gray``); grey PNGs as stored, 16-bit
    ones cut to their high byte. Other formats: OpenCV's cvtColor weights, rounded. Equal to OpenCV's result
    except for 16-bit colour PNGs and WebP (OpenCV converts those at other precisions): within one grey level
    there. Needs no OpenCV."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("L", image.size)  # same size: no DCT scaling, only the colour space changes
            file_format, info = image.format, dict(image.info)
            image = ImageOps.exif_transpose(image)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ValueError(f"{path}: not an image that can be read ({error})") from error
    if image.mode in ("L", "LA", "La", "1"):
        return np.asarray(image.getchannel(0).convert("L"))
    if image.mode.startswith("I"):
        return (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
    rgb = np.asarray(image.convert("RGB"))
    if file_format == "PNG":
        return _png_gray(rgb, info)
    return _fixed_point_gray(rgb, OPENCV_GRAY, 14, 1 << 13)


def luma(images: torch.Tensor, weights: tuple[int, int, int] = LIBPNG_GRAY) -> torch.Tensor:
    """N×3×H×W floats in [0, 1] → N×H×W 8-bit grey values (as float64) by libpng's truncated RGB→grey
    (``LIBPNG_GRAY``): for a PNG without a gamma chunk, exactly the grey ``read_gray`` reads from the file, so a
    detector trained from such files sees the same profile on the RGB the platform decodes from them. Scriptable
    (the weights come in as a default argument: TorchScript reads no globals), so the exported detector holds it."""
    pixels = torch.round(images.to(torch.float64) * 255)
    weighted = weights[0] * pixels[:, 0] + weights[1] * pixels[:, 1] + weights[2] * pixels[:, 2]
    return torch.floor(weighted / 32768)  # exact: integers below 2^23 over a power of two


class RadialProfile(nn.Module):
    """N×H×W grey images → N×(bins−2) azimuthal averages of 20·ln|fftshift(FFT) + ε|, from the half spectrum
    (``rfft2``) and the cached rings of the size: the detector's own, TorchScript- and device-ready copy of
    ``profiles``."""

    def __init__(self, height: int, width: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        rings = ring_index(height, width)
        positions = torch.arange(height * (width // 2 + 1)).view(height, width // 2 + 1)
        self.register_buffer("own", torch.from_numpy(rings.own.copy()), persistent=False)
        self.register_buffer("mirrored", positions[:, 1:rings.mirrored_columns].flatten(), persistent=False)
        self.register_buffer("mirror", torch.from_numpy(rings.mirror.copy()), persistent=False)
        self.register_buffer("counts", torch.from_numpy(rings.counts.copy()), persistent=False)
        self.bins = rings.bins
        self.eps = EPS
        self.dtype = dtype

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft2(gray.to(self.dtype))
        power = (spectrum.real + self.eps).square() + spectrum.imag.square()  # as in _ring_sums
        magnitude = (10 * torch.log(power)).flatten(1).to(torch.float64)
        sums = torch.zeros(magnitude.shape[0], self.bins, dtype=torch.float64, device=magnitude.device)
        sums.index_add_(1, self.own, magnitude)
        sums.index_add_(1, self.mirror, magnitude.index_select(1, self.mirrored))
        return (sums / self.counts)[:, 1:-1]


@functools.lru_cache(maxsize=8)
def _profile_module(height: int, width: int, dtype: torch.dtype, device: torch.device) -> RadialProfile:
    return RadialProfile(height, width, dtype).to(device)


def spectral_features(images: torch.Tensor) -> torch.Tensor:
    """Profiles (float64, N×L, on the images' device) of an N×3×H×W batch in [0, 1], grey by ``luma``: by
    ``profiles`` on a CPU, by the cached ``RadialProfile`` of the size on other devices."""
    gray = luma(images.detach())
    if gray.device.type == "cpu":
        return torch.from_numpy(profiles(gray.numpy()))
    return _profile_module(gray.shape[-2], gray.shape[-1], torch.float64, gray.device)(gray)


class SpectralDetector(nn.Module):
    """Luma → radial profile → logit = profile · weight + bias (a linear decision, or two k-means centres
    folded into one: ||x − c_real||² − ||x − c_generated||² is linear in x)."""

    def __init__(self, size: int, weight: np.ndarray, bias: float) -> None:
        super().__init__()
        self.profile = RadialProfile(size, size)
        self.weight = nn.Parameter(torch.tensor(np.array(weight, dtype=np.float64).reshape(-1)), requires_grad=False)
        self.bias = nn.Parameter(torch.tensor(float(bias), dtype=torch.float64), requires_grad=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.profile(luma(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.features(x) @ self.weight + self.bias).to(torch.float32)


@dataclass(frozen=True)
class LinearDecision:
    weight: np.ndarray
    bias: float


def fit_decision(features: np.ndarray, labels: np.ndarray, method: str, seed: int = 0) -> LinearDecision:
    """The decision of ``method`` (lr, svm, kmeans) fitted on profiles; labels 1 = generated."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    if method == "lr":
        # liblinear shuffles the data: seeded, so a fit is reproducible
        model = LogisticRegression(solver="liblinear", max_iter=1000, random_state=seed).fit(features, labels)
        return LinearDecision(model.coef_.ravel(), float(model.intercept_[0]))
    if method == "svm":
        model = SVC(kernel="linear").fit(features, labels)
        return LinearDecision(model.coef_.ravel(), float(model.intercept_[0]))
    if method == "kmeans":
        clusters = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(features)
        # The cluster holding more of the generated training images is "generated" (labels name, never shape, it).
        fake_cluster = int(np.mean(clusters.labels_[labels == 1]) > np.mean(clusters.labels_[labels == 0]))
        c_fake, c_real = clusters.cluster_centers_[fake_cluster], clusters.cluster_centers_[1 - fake_cluster]
        # ||x-c_r||² − ||x-c_f||² = 2 x·(c_f − c_r) + ||c_r||² − ||c_f||²
        return LinearDecision(2 * (c_fake - c_real), float(c_real @ c_real - c_fake @ c_fake))
    raise ValueError(f"unknown method {method!r}; use lr, svm or kmeans")


def fit_detector(method: str, images: torch.Tensor, labels: np.ndarray, seed: int = 0) -> SpectralDetector:
    """The detector of ``method`` fitted on an N×3×S×S batch of images and their labels (1 = generated)."""
    decision = fit_decision(spectral_features(images).numpy(), np.asarray(labels), method, seed=seed)
    return SpectralDetector(images.shape[-1], decision.weight, decision.bias)


def untrained(input_size: int) -> SpectralDetector:
    """The architecture alone (a zero decision: every image scores 0.5); the profile length follows the size."""
    return SpectralDetector(input_size, np.zeros(ring_index(input_size, input_size).bins - 2), 0.0)


@register_model("spectral-lr")
def build_logistic(input_size: int = 64) -> SpectralDetector:
    return untrained(input_size)


@register_model("spectral-svm")
def build_svm(input_size: int = 64) -> SpectralDetector:
    return untrained(input_size)


@register_model("spectral-kmeans")
def build_kmeans(input_size: int = 64) -> SpectralDetector:
    return untrained(input_size)


def train_logistic(root: Path, *, input_size: int, seed: int = 0) -> SpectralDetector:
    return train_on_dataset(root, "lr", size=input_size, seed=seed)


def train_svm(root: Path, *, input_size: int, seed: int = 0) -> SpectralDetector:
    return train_on_dataset(root, "svm", size=input_size, seed=seed)


def train_kmeans(root: Path, *, input_size: int, seed: int = 0) -> SpectralDetector:
    return train_on_dataset(root, "kmeans", size=input_size, seed=seed)


FEW_SHOT_SIZES = (2, 4, 10, 20, 50, 100, 200)


def balanced_accuracy(predicted_generated: np.ndarray, labels: np.ndarray) -> float:
    return float((np.mean(~predicted_generated[labels == 0]) + np.mean(predicted_generated[labels == 1])) / 2)


def few_shot_curve(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray, *,
                   sizes: tuple[int, ...] = FEW_SHOT_SIZES, repeats: int = 10, seed: int = 0,
                   methods: tuple[str, ...] = ("lr", "svm", "kmeans")) -> dict:
    """The paper's "few labelled samples" experiment on profiles: for each training-set size n, ``repeats`` draws
    of n/2 real and n/2 generated training profiles (seeded), each method fitted and scored on the whole test
    set; mean and standard deviation per size of the balanced accuracy (the mean of the accuracies on real and
    on generated, so an unbalanced test split is judged like the paper's balanced one). Sizes larger than the
    pool are skipped. The result names the ``SPECTRAL_PROFILE_VERSION`` of the profiles it is meant for."""
    rng = np.random.default_rng(seed)
    real, fake = np.flatnonzero(train_labels == 0), np.flatnonzero(train_labels == 1)
    usable = [n for n in sizes if n // 2 <= min(len(real), len(fake)) and n >= 2]
    accuracy = {m: np.zeros((len(usable), repeats)) for m in methods}
    for i, n in enumerate(usable):
        for r in range(repeats):
            pick = np.r_[rng.choice(real, n // 2, replace=False), rng.choice(fake, n // 2, replace=False)]
            for method in methods:
                decision = fit_decision(train[pick], train_labels[pick], method, seed=r)
                predicted = (test @ decision.weight + decision.bias) > 0
                accuracy[method][i, r] = balanced_accuracy(predicted, test_labels)
    return {"sizes": usable, "repeats": repeats, "seed": seed, "profile_version": SPECTRAL_PROFILE_VERSION,
            "methods": {m: {"mean": a.mean(axis=1).tolist(), "std": a.std(axis=1).tolist()} for m, a in accuracy.items()}}


PROFILE_CHUNK = 32  # images decoded and transformed together: memory stays flat in the split's size


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def profiles_of_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Spectral profiles and labels of a dataset version's split, from the files as the authors read them
    (``read_gray``) and never resized (resampling distorts the spectrum), so every image must have one size."""
    from evaluation.datasets.manifest import read_manifest

    rows = (row for row in read_manifest(root / "manifest.jsonl") if row.split == split)
    features, labels, shape = [], [], None
    for chunk in _chunks(rows, PROFILE_CHUNK):
        grays = list(_pool().map(lambda row: read_gray(root / row.path), chunk))
        shape = shape or grays[0].shape
        for row, gray in zip(chunk, grays, strict=True):
            if gray.shape != shape:
                raise ValueError(f"{row.path} is {gray.shape[1]}×{gray.shape[0]} px, the split's first image "
                                 f"{shape[1]}×{shape[0]} px: spectral profiles are computed at the images' own "
                                 "size, so every image of a split must have the same size")
        features.append(profiles(np.stack(grays)))
        labels.extend(row.label for row in chunk)
    if not labels:
        raise ValueError(f"the {split!r} split of {root} holds no images")
    return np.concatenate(features), np.asarray(labels)


def train_on_dataset(root: Path, method: str, *, size: int, seed: int = 0) -> SpectralDetector:
    """The detector fitted on every train image of a dataset version (square images of ``size`` px)."""
    features, labels = profiles_of_split(root, "train")
    if features.shape[1] != ring_index(size, size).bins - 2:
        raise ValueError(f"the train split of {root} does not hold {size}×{size} px images; the spectral "
                         "detector needs the size its images have")
    decision = fit_decision(features, labels, method, seed=seed)
    return SpectralDetector(size, decision.weight, decision.bias)
