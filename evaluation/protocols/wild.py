"""In the wild: cross-generator metrics under chains of real-world distortions (evaluation.wild).

Every test image is decoded once and scored clean, under its own chain of 1–5 distortion kinds drawn from
(image id, seed) (condition ``chain-s<seed>``), and under each sharing preset (``sim-…``, simulations of a
platform's re-encoding). Real and generated images get the same treatment, and every detector the same images.

Result keys (``<subset>/<key>``, subsets as cross-generator's):

* ``<subset>`` (condition ""): clean; ``<subset>/chains``: under the chains, the robust numbers the leaderboard
  ranks on (robust ROC-AUC); ``<subset>/<preset>``: under each preset;
* ``<subset>/drop``: clean − chains for ROC-AUC, AP and mean accuracy. Both come from the same images in each
  bootstrap resample, so its interval is the paired one;
* ``<subset>/kind-<name>``: ROC-AUC and mean accuracy under the chains on the images whose chain holds that kind
  (the generator × kind matrix). Chains mix kinds, so a cell tells which kinds go with the losses, not what one
  kind alone does.

Calibration (ECE, Brier) comes with the cross-generator metrics of every condition, and the reliability
diagram's bins under the chains with ``<subset>/reliability-chains``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.metrics import DEFAULT_THRESHOLD, MEAN_ACCURACY, accuracy_at, roc_auc
from evaluation.protocols.base import ProgressCallback, Protocol, ProtocolResult, ShardData, register, score_conditions
from evaluation.protocols.cross_generator import (
    MEAN_SUBSET,
    RELIABILITY,
    reliability_metrics,
    subset_masks,
    subset_metrics,
)
from evaluation.wild import PRESETS, chain_condition, chain_for, list_kinds

NAME = "wild"
CHAINS = "chains"
DROP = "drop"
KIND_PREFIX = "kind-"
DROP_METRICS = ("roc_auc", "ap", MEAN_ACCURACY)
ROC_AUC_DROP = "roc_auc_drop"  # the headline drop (``f"{metric}_drop"`` of DROP_METRICS[0])
KIND_METRICS = ("roc_auc", MEAN_ACCURACY)
DEFAULT_SEED = 0
ROBUST_RELIABILITY = f"{RELIABILITY}-{CHAINS}"


def conditions(config: dict[str, Any]) -> list[str]:
    """What the worker applies, in the order of the scores: clean, the seeded chains, the presets."""
    return ["", chain_condition(int(config["seed"])), *config["presets"]]


def result_keys(config: dict[str, Any]) -> list[str]:
    """The name each condition's numbers are stored under (the seed lives in the config, not the name)."""
    return ["", CHAINS, *config["presets"]]


def kind_masks(image_ids: list[str], config: dict[str, Any]) -> np.ndarray:
    """One 0/1 row per distortion kind: whether each image's chain holds it (kinds × images)."""
    kinds = list_kinds()
    masks = np.zeros((len(kinds), len(image_ids)))
    position = {name: k for k, name in enumerate(kinds)}
    for i, image_id in enumerate(image_ids):
        for name, _ in chain_for(image_id, int(config["seed"])):
            masks[position[name], i] = 1.0
    return masks


def _kind_cells(labels: np.ndarray, robust: np.ndarray, generators: list[str | None], masks: np.ndarray,
                threshold: float) -> dict[str, dict[str, float | None]]:
    subsets, generator_subsets = subset_masks(labels, generators)
    out: dict[str, dict[str, float | None]] = {}
    for name, holds in zip(list_kinds(), masks.astype(bool), strict=True):
        cells = {}
        for subset in generator_subsets:
            keep = subsets[subset] & holds
            real, generated = accuracy_at(labels[keep], robust[keep], threshold, 0), \
                accuracy_at(labels[keep], robust[keep], threshold, 1)
            cells[subset] = {"roc_auc": roc_auc(labels[keep], robust[keep]),
                             MEAN_ACCURACY: None if real is None or generated is None else (real + generated) / 2}
        cells[MEAN_SUBSET] = {m: _mean([c[m] for c in cells.values()]) for m in KIND_METRICS}
        out.update({f"{subset}/{KIND_PREFIX}{name}": values for subset, values in cells.items()})
    return out


def _mean(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def summarise(labels: np.ndarray, scores: np.ndarray, generators: list[str | None], splits: np.ndarray,
              config: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """``scores``: the K conditions' logits, then the kinds' 0/1 rows (``kind_masks``, stacked by the summary)."""
    keys, threshold = result_keys(config), float(config["threshold"])
    matrix = np.asarray(scores, dtype=np.float64)
    per_key = {key: subset_metrics(labels, matrix[k], generators, threshold) for k, key in enumerate(keys)}
    out: dict[str, dict[str, float | None]] = {}
    for key, metrics in per_key.items():
        out.update({(f"{subset}/{key}" if key else subset): values for subset, values in metrics.items()})
    for subset, clean in per_key[""].items():
        robust = per_key[CHAINS][subset]
        out[f"{subset}/{DROP}"] = {f"{m}_drop": None if clean.get(m) is None or robust.get(m) is None
                                   else clean[m] - robust[m] for m in DROP_METRICS}
    out.update(_kind_cells(labels, matrix[1], generators, matrix[len(keys):], threshold))
    reliability = reliability_metrics(labels, matrix[1], generators)
    return out | {f"{subset}/{ROBUST_RELIABILITY}": values for subset, values in reliability.items()}


def run(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    return score_conditions(detector, data, conditions(config), progress)


PROTOCOL = register(Protocol(
    name=NAME, version=1, title="In the wild: chains of real-world distortions and sharing presets",
    needs=frozenset({"outputs"}),
    default_config={"seed": DEFAULT_SEED, "presets": list(PRESETS), "threshold": DEFAULT_THRESHOLD, "batch_size": 32},
    run=run, summarise=summarise, every_version=False, image_groups=kind_masks, conditions=conditions,
))
