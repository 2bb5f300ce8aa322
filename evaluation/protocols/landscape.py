"""The loss landscape and Hessian spectrum of a detector around its weights (GradVis, seeds.md §10).

On an evenly spaced sample of the test images (``images``), with the loss the mean binary cross-entropy of the
detector's logit:

- a 2-D surface on ``grid``×``grid`` points over [−span, span]² along two seeded random directions, normalised
  layer-wise as GradVis does (``normalisation`` "filter": Li et al.'s filter-wise instead), and a finer 1-D slice
  along the first direction (``slice_points``);
- the top ``top_k`` Hessian eigenvalues (ARPACK on Hessian-vector products; the first is the *sharpness*);
- the eigenvalue density by stochastic Lanczos quadrature (``slq_repeats`` runs of ``slq_steps`` steps, full
  re-orthogonalisation).

The scorer child moves its own weights and returns logits; the worker applies the labels. A Hessian-vector
product needs each image's loss derivatives, which reveal its label, so that child is never used again.
Departures from GradVis: the loss is computed on the whole sample (not 5 % or 20 % of the batches), random
directions are the default (an upload has no training trajectory to take PCA directions from), and the mini
defaults take fewer Lanczos steps (``FULL_SCALE`` has GradVis's 10 × 80).

Needs the detector's weights: TorchScript, or safetensors for a zoo architecture; ONNX is "not applicable".
"""
from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.metrics import DEFAULT_THRESHOLD
from evaluation.protocols.base import ProgressCallback, Protocol, ProtocolResult, ShardData, register
from evaluation.protocols.cross_generator import MEAN_SUBSET, subset_metrics

NAME = "landscape"
SHARPNESS = "sharpness"  # condition of the Result row with the eigenvalues
SURFACE = "surface"  # condition of the rows holding the surface and the density, as arrays
TOP_EIGENVALUE = "top_eigenvalue"
DEFAULT_CONFIG: dict[str, Any] = {
    "images": 32, "grid": 15, "span": 2.5, "slice_points": 41, "normalisation": "layer", "seed": 0, "top_k": 2,
    "slq_steps": 20, "slq_repeats": 3, "density_points": 200, "batch_size": 32, "threshold": DEFAULT_THRESHOLD,
}
FULL_SCALE: dict[str, Any] = {"images": 1000, "grid": 51, "slq_steps": 80, "slq_repeats": 10}


def axis(config: dict[str, Any]) -> list[float]:
    return np.linspace(-float(config["span"]), float(config["span"]), int(config["grid"])).tolist()


def slice_axis(config: dict[str, Any]) -> list[float]:
    return np.linspace(-float(config["span"]), float(config["span"]), int(config["slice_points"])).tolist()


def summarise(labels: np.ndarray, scores: np.ndarray, generators: list[str | None], splits: np.ndarray,
              config: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """The clean metrics of the analysed sample (its scores are the detector's at its own weights)."""
    return subset_metrics(labels, np.asarray(scores, dtype=np.float64), generators, float(config["threshold"]))


def summarise_analysis(analysis: dict[str, Any], config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The eigenvalues as numbers, and the surface, slice and density as arrays for the plots."""
    from evaluation.hessian import Quadrature, spectral_density

    eigenvalues = analysis.get("top_eigenvalues", [])
    runs = [Quadrature(**run) for run in analysis.get("slq", [])]
    nodes = [n for run in runs for n in run.nodes]
    out: dict[str, dict[str, Any]] = {f"{MEAN_SUBSET}/{SHARPNESS}": {
        TOP_EIGENVALUE: eigenvalues[0] if eigenvalues else None, "eigenvalues": eigenvalues,
        "centre_loss": analysis.get("centre_loss"), "weights": analysis.get("weights")}}
    surface = {key: analysis.get(key) for key in ("xs", "ys", "loss", "accuracy", "slice")}
    if nodes:
        low, high = min(nodes), max(nodes)
        pad = 0.05 * (high - low or 1.0)
        grid = np.linspace(low - pad, high + pad, int(config["density_points"]))
        sigma = max((high - low) / 100, 1e-6)  # GradVis leaves the width to the user: 1 % of the spectrum's range
        surface["density"] = {"t": grid.tolist(), "density": spectral_density(runs, grid, sigma).tolist(),
                              "sigma": sigma}
    out[f"{MEAN_SUBSET}/{SURFACE}"] = surface
    return out


def run(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    from evaluation.protocols.landscape_run import landscape_shard

    return landscape_shard(detector, data, config, progress)


PROTOCOL = register(Protocol(
    name=NAME, version=1, title="Loss landscape and Hessian spectrum (GradVis)", needs=frozenset({"weights"}),
    default_config=DEFAULT_CONFIG, run=run, summarise=summarise, every_version=False, analysis=True,
    summarise_analysis=summarise_analysis,
))
