"""Adversarial robustness and SpectralDefense: accuracy under white-box attacks, and how well the attacks are
detected from the images' Fourier spectra (seeds.md §3).

On an evenly spaced sample of the test images (``images``), the worker attacks the detector with foolbox
(evaluation.attacks) using the gradients the sandboxed detector computes, and scores every adversarial image:

- conditions ``clean``, ``<attack>@<ε>`` for the L∞ attacks (FGSM, BIM, PGD) at each ε of ``epsilons``, and
  ``<attack>`` for the L2 minimisation attacks (DeepFool, C&W). Their logits are stored like any protocol's and
  the platform computes the cross-generator metrics per condition and generator from them, with intervals.
- ``<subset>/robust``: ``robust_acc_mean``, the lowest mean accuracy over the L∞ attacks at ``epsilon`` (0.03),
  and each L2 attack's median perturbation norm over the images it fooled.
- SpectralDefense (evaluation.spectral_defense) per attack: the correctly classified clean images and their
  successful adversarials at ``epsilon`` (the L2 attacks' own minimal ones), paired; InputMFS and InputPFS; the
  authors' logistic regression and 64/16/20 split. The worker sends the held-out probabilities (``analysis``);
  the platform's ``summarise_analysis`` computes accuracy, TPR, TNR, precision and AUC per attack from them
  (key ``defense/<attack>:<features>``).

White-box when the detector gives gradients. For one that does not (ONNX) the platform sends a zoo surrogate's
weights (``mode`` "transfer"): the worker attacks the surrogate, in process (zoo code and safetensors data, no
uploaded code), and the sandboxed detector scores the adversarial images; every result says "transfer". With
no surrogate trained on the benchmark yet, the analysis is "not applicable". Defaults fit a mini-benchmark run on 2 CPU cores in minutes; ``FULL_SCALE`` is the paper's setting.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.attacks import ATTACKS, attack, condition_name
from evaluation.metrics import DEFAULT_THRESHOLD, MEAN_ACCURACY
from evaluation.protocols.base import ProgressCallback, Protocol, ProtocolResult, ShardData, register
from evaluation.protocols.cross_generator import MEAN_SUBSET, subset_metrics
from evaluation.spectral_defense import FEATURE_KINDS, detection_summary, roc_points

NAME = "adversarial"
CLEAN = "clean"
WHITE_BOX, TRANSFER = "white-box", "transfer"  # config["mode"]: the detector's own gradients, or a surrogate's
SURROGATE = "surrogate"  # config key: {"url", "sha256", "architecture"} of the zoo surrogate's safetensors
ROBUST = "robust"
DEFENSE = "defense"
ROBUST_METRIC = f"robust_{MEAN_ACCURACY}"
DEFENSE_METRIC = "auc"
DEFENSE_AUC = f"{DEFENSE}_{DEFENSE_METRIC}"  # the mean InputMFS AUC over the attacks, on key ``mean/defense``
DEFAULT_CONFIG: dict[str, Any] = {
    "images": 64, "attacks": list(ATTACKS), "epsilons": [0.005, 0.01, 0.03, 0.1], "epsilon": 0.03,
    "steps_scale": 0.25, "cw_steps": 50, "batch_size": 32, "threshold": DEFAULT_THRESHOLD,
}
# The paper's setting, for a GPU: foolbox's default steps, C&W with 1000, and 1000 images (see the card).
FULL_SCALE: dict[str, Any] = {"images": 1000, "steps_scale": 1.0, "cw_steps": 1000}


def _linf(config: dict[str, Any]) -> list[str]:
    return [name for name in config["attacks"] if attack(name).norm == "linf"]


def conditions_of(config: dict[str, Any]) -> list[str]:
    """``clean``, each L∞ attack at each ε, then each L2 attack: the order of the stored scores."""
    linf = [condition_name(a, float(e)) for a in _linf(config) for e in config["epsilons"]]
    return [CLEAN, *linf, *(a for a in config["attacks"] if attack(a).norm == "l2")]


def summarise(labels: np.ndarray, scores: np.ndarray, generators: list[str | None], splits: np.ndarray,
              config: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Metrics per condition and generator; the robust accuracy at ``epsilon`` (the worst L∞ attack)."""
    conditions = conditions_of(config)
    matrix = np.asarray(scores, dtype=np.float64).reshape(len(conditions), -1)
    per_condition = {c: subset_metrics(labels, matrix[k], generators, float(config["threshold"]))
                     for k, c in enumerate(conditions)}
    out = {f"{subset}/{c}": values for c, metrics in per_condition.items() for subset, values in metrics.items()}
    headline = [condition_name(a, float(config["epsilon"])) for a in _linf(config)]
    for subset in per_condition[CLEAN]:
        levels = [per_condition[c][subset].get(MEAN_ACCURACY) for c in headline]
        out[f"{subset}/{ROBUST}"] = {ROBUST_METRIC: min(levels) if levels and None not in levels else None,
                                     TRANSFER: float(config.get("mode") == TRANSFER)}
    return out


def summarise_analysis(analysis: dict[str, Any], config: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """SpectralDefense's detection numbers per attack and feature kind, from the held-out probabilities, and
    the L2 attacks' median perturbation."""
    out: dict[str, dict[str, float | None]] = {}
    robust: dict[str, float | None] = {}
    for name, outcome in analysis.get("attacks", {}).items():
        if "median_l2" in outcome:
            robust[f"{name}_median_l2"] = outcome["median_l2"]
        for kind, held in outcome.get("defense", {}).items():
            numbers = detection_summary(held.get("clean", []), held.get("adversarial", []))
            out[f"{MEAN_SUBSET}/{DEFENSE}:{name}:{kind}"] = {
                **numbers, "pairs": outcome.get("pairs"), "roc": roc_points(held.get("clean", []), held.get("adversarial", []))}
    aucs = [m[DEFENSE_METRIC] for key, m in out.items() if key.endswith(f":{FEATURE_KINDS[0]}")]
    out[f"{MEAN_SUBSET}/{DEFENSE}"] = {
        DEFENSE_AUC: float(np.mean(aucs)) if aucs and None not in aucs else None, **robust,
        TRANSFER: float(analysis.get("mode") == TRANSFER)}
    return out


def run(detector: Any, data: ShardData, config: dict[str, Any], progress: ProgressCallback) -> ProtocolResult:
    from evaluation.protocols.adversarial_run import attack_shard

    return attack_shard(detector, data, config, conditions_of(config), progress)


PROTOCOL = register(Protocol(
    name=NAME, version=1, title="Adversarial attacks (FGSM, BIM, PGD, DeepFool, C&W) and SpectralDefense",
    needs=frozenset({"outputs"}), default_config=DEFAULT_CONFIG, run=run, summarise=summarise,
    every_version=False, analysis=True, summarise_analysis=summarise_analysis, transfer_surrogate=True,
))
