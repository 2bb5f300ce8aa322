"""JPEG and resize robustness: cross-generator metrics under each perturbation, as curves and their area.

Every image is decoded once; each condition (evaluation.perturbations) is applied to real and generated
images alike before the resize to the input size, and the detector scores every condition. Per condition and
subset the cross-generator metrics are reported (keys ``<subset>/<condition>``: the generator × perturbation
matrix), plus ``<subset>/area``: the normalised area under each metric's curve over the perturbation axis
(trapezoidal rule over the quality or scale values, divided by their range), i.e. the metric's mean level
across the sweep. Defaults: JPEG qualities 100, 95, 90, 80, 70, 60, 50, 30; scale factors 1, 0.75, 0.5, 0.25.
The sweeps run on the ranked dataset version only (they multiply the work by their number of conditions).

v2: scores are logits (see cross-generator v5): ties at probability 1.0 are gone.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.metrics import DEFAULT_THRESHOLD, MEAN_ACCURACY
from evaluation.perturbations import jpeg_condition, scale_condition
from evaluation.protocols.base import ProgressCallback, Protocol, ProtocolResult, ShardData, register, score_conditions
from evaluation.protocols.cross_generator import subset_metrics

AREA = "area"
AREA_METRICS = (MEAN_ACCURACY, "ap", "roc_auc")


def _axis(config: dict[str, Any]) -> tuple[list[str], list[float]]:
    """The conditions and their positions on the curve's axis, from the protocol's config."""
    if "qualities" in config:
        values = [int(q) for q in config["qualities"]]
        return [jpeg_condition(q) for q in values], [float(q) for q in values]
    values = [float(f) for f in config["scales"]]
    return [scale_condition(f) for f in values], values


def normalised_area(xs: list[float], ys: list[float | None]) -> float | None:
    """Trapezoidal area under y(x) divided by the x range; one point gives its value."""
    if any(y is None for y in ys) or not ys:
        return None
    order = np.argsort(xs)
    x, y = np.asarray(xs, float)[order], np.asarray(ys, float)[order]
    return float(y[0]) if x[-1] == x[0] else float(np.trapezoid(y, x) / (x[-1] - x[0]))


def summarise(labels: np.ndarray, scores: np.ndarray, generators: list[str | None], splits: np.ndarray,
              config: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Every row is of the evaluated split (the sweeps run on test only), so ``splits`` is not needed."""
    conditions, xs = _axis(config)
    matrix = np.asarray(scores, dtype=np.float64).reshape(len(conditions), -1)
    out: dict[str, dict[str, float | None]] = {}
    per_condition = [subset_metrics(labels, matrix[k], generators, float(config["threshold"]))
                     for k in range(len(conditions))]
    for condition, metrics in zip(conditions, per_condition, strict=True):
        out.update({f"{subset}/{condition}": values for subset, values in metrics.items()})
    for subset in per_condition[0]:
        out[f"{subset}/{AREA}"] = {f"{name}_area": normalised_area(xs, [m[subset].get(name) for m in per_condition])
                                   for name in AREA_METRICS}
    return out


def run(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    return score_conditions(detector, data, _axis(config)[0], progress)


JPEG = register(Protocol(
    name="jpeg-robustness", version=2, title="Robustness to JPEG compression (real and generated alike)",
    needs=frozenset({"outputs"}),
    default_config={"qualities": [100, 95, 90, 80, 70, 60, 50, 30], "threshold": DEFAULT_THRESHOLD, "batch_size": 32},
    run=run, summarise=summarise, every_version=False, conditions=lambda config: _axis(config)[0],
))
RESIZE = register(Protocol(
    name="resize-robustness", version=2, title="Robustness to downscaling (real and generated alike)",
    needs=frozenset({"outputs"}),
    default_config={"scales": [1.0, 0.75, 0.5, 0.25], "threshold": DEFAULT_THRESHOLD, "batch_size": 32},
    run=run, summarise=summarise, every_version=False, conditions=lambda config: _axis(config)[0],
))
