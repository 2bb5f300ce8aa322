"""The adversarial protocol's worker side (torch, foolbox): attack each batch, score every adversarial image,
keep the SpectralDefense pairs, fit the regressions at the end. See evaluation.protocols.adversarial."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from evaluation.attack_model import DetectorAsClassifier, attack_batch
from evaluation.attacks import attack, condition_name
from evaluation.datasets.manifest import verified_copy
from evaluation.detectors.formats import ArtifactFormat
from evaluation.detectors.loading import Detector, load_detector, pick_device
from evaluation.errors import NotApplicable, PlatformFault
from evaluation.protocols.adversarial import SURROGATE, TRANSFER, WHITE_BOX
from evaluation.protocols.base import ProgressCallback, ProtocolResult, ShardData, float32_scores
from evaluation.spectral_defense import FEATURE_KINDS, LAYER_KINDS, MIN_PAIRS, fit_and_hold_out, input_spectra


@dataclass
class _AttackRecord:
    """What one attack left over the shard: its successes at the headline ε (or its own minimum), the pairs
    SpectralDefense learns from (clean and adversarial images, float32), and the L2 distances of its hits."""

    tried: int = 0
    fooled: int = 0
    clean: list[np.ndarray] = field(default_factory=list)
    adversarial: list[np.ndarray] = field(default_factory=list)
    clean_maps: list[np.ndarray] = field(default_factory=list)  # the target's features(x) maps, when it has them
    adversarial_maps: list[np.ndarray] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)

    def summary(self, norm: str) -> dict[str, Any]:
        out: dict[str, Any] = {"tried": self.tried, "fooled": self.fooled, "pairs": sum(len(c) for c in self.clean)}
        if norm == "l2":
            out["median_l2"] = float(np.median(self.distances)) if self.distances else None
        out["defense"] = _defense(self) if out["pairs"] >= MIN_PAIRS else {}
        if out["pairs"] < MIN_PAIRS:
            out["defense_skipped"] = f"{out['pairs']} pairs; SpectralDefense needs at least {MIN_PAIRS}"
        return out


def _defense(record: _AttackRecord) -> dict[str, Any]:
    inputs = {kind: (record.clean, record.adversarial) for kind in FEATURE_KINDS}
    layers = {kind: (record.clean_maps, record.adversarial_maps) for kind in LAYER_KINDS if record.clean_maps}
    return {kind: fit_and_hold_out(input_spectra(np.concatenate(clean), kind),
                                   input_spectra(np.concatenate(adversarial), kind)).to_dict()
            for kind, (clean, adversarial) in (inputs | layers).items()}


@dataclass(frozen=True)
class _Batch:
    rows: slice  # the batch's columns in the scores matrix
    images: torch.Tensor
    labels: torch.Tensor
    correct: np.ndarray  # the target detector classifies the clean image right
    maps: bool  # the target's features(x) gives N×C×H×W maps: LayerMFS / LayerPFS too


def _attack_into(scores: np.ndarray, batch: _Batch, target: Any, attacked: DetectorAsClassifier, name: str,
                 config: dict[str, Any], positions: dict[str, int], record: _AttackRecord) -> None:
    """Attack one batch with ``name`` through ``attacked`` (the target itself, or a surrogate), score the
    adversarials with ``target`` into ``scores`` and extend ``record``. Success is the target's mistake."""
    norm = attack(name).norm
    epsilons = [float(e) for e in config["epsilons"]] if norm == "linf" else []
    outcome = attack_batch(attacked, name, batch.images, batch.labels, epsilons, config)
    conditions = [condition_name(name, e) for e in epsilons] or [name]
    for k, condition in enumerate(conditions):
        scores[positions[condition], batch.rows] = target.scores(outcome.images[k])
    k = epsilons.index(float(config["epsilon"])) if norm == "linf" else 0
    fooled = (scores[positions[conditions[k]], batch.rows] > float(config["threshold"])) != batch.labels.numpy()
    pairs, correct = batch.correct & fooled, batch.correct
    record.tried += int(correct.sum())
    record.fooled += int(pairs.sum())
    chosen = torch.from_numpy(pairs)
    record.clean.append(batch.images[chosen].cpu().numpy())
    record.adversarial.append(outcome.images[k][chosen].cpu().numpy())
    if batch.maps and pairs.any():
        record.clean_maps.append(np.asarray(target.features(batch.images[chosen])))
        record.adversarial_maps.append(np.asarray(target.features(outcome.images[k][chosen])))
    if norm == "l2":
        record.distances += outcome.distances[k][pairs].tolist()


def _surrogate(config: dict[str, Any], input_size: int) -> Detector:
    """The zoo surrogate of a transfer attack, loaded here: a zoo architecture with safetensors weights (data)."""
    spec = config[SURROGATE]
    with verified_copy(spec["url"], spec["sha256"], "transfer surrogate") as path:
        return load_detector(path, ArtifactFormat.SAFETENSORS, input_size=input_size, device=pick_device(),
                             architecture=spec["architecture"])


def _attacked(detector: Detector, config: dict[str, Any]) -> tuple[DetectorAsClassifier, str]:
    """What the attacks run on, and the mode: the detector's own gradients, or a zoo surrogate's."""
    if config.get("mode", WHITE_BOX) == WHITE_BOX and "gradients" in detector.capabilities:
        return DetectorAsClassifier(detector), WHITE_BOX
    if SURROGATE not in config:
        raise NotApplicable(f"This {detector.format} detector gives no gradients, and no zoo surrogate "
                            "(SPECTRA_TRANSFER_SURROGATE) has been trained on this benchmark yet for transfer "
                            "attacks. Upload it as TorchScript for white-box attacks.")
    return DetectorAsClassifier(_surrogate(config, detector.input_size)), TRANSFER


def _layer_maps(detector: Detector, images: torch.Tensor) -> str:
    """Why LayerMFS / LayerPFS cannot be computed for this detector, or "" when they can."""
    if "features" not in detector.capabilities:
        return f"this {detector.format} detector has no features(x)"
    shape = np.asarray(detector.features(images[:1])).shape
    return "" if len(shape) == 4 else f"its features(x) returns shape {list(shape)}, not N×C×H×W maps"


def attack_shard(detector: Detector, data: ShardData, config: dict[str, Any], conditions: list[str],
                 progress: ProgressCallback) -> ProtocolResult:
    """Every condition's logits for the shard's rows, and the per-attack outcomes with SpectralDefense's
    held-out probabilities (``analysis``)."""
    if float(config["epsilon"]) not in [float(e) for e in config["epsilons"]]:
        raise PlatformFault("the adversarial analysis's epsilon must be one of its swept epsilons")
    attacked, mode = _attacked(detector, config)
    torch.manual_seed(0)  # PGD's random start: the same images for every detector
    positions = {c: k for k, c in enumerate(conditions)}
    scores = np.empty((len(conditions), len(data.rows)), dtype=np.float64)
    records = {name: _AttackRecord() for name in config["attacks"]}
    done, no_maps = 0, None
    for rows, images in data.batches():
        no_maps = _layer_maps(detector, images) if no_maps is None else no_maps
        labels = torch.tensor([r.row.label for r in rows], dtype=torch.long)
        span = slice(done, done + len(rows))
        scores[0, span] = detector.scores(images)
        batch = _Batch(rows=span, images=images, labels=labels,
                       correct=(scores[0, span] > float(config["threshold"])) == labels.numpy().astype(bool),
                       maps=not no_maps)
        for name in config["attacks"]:
            _attack_into(scores, batch, detector, attacked, name, config, positions, records[name])
        done += len(rows)
        progress(done, "attacking")
    analysis = {"mode": mode, "epsilon": float(config["epsilon"]), "layer_features_skipped": no_maps or "",
                "surrogate": {k: config[SURROGATE][k] for k in ("sha256", "architecture")} if mode == TRANSFER else {},
                "attacks": {name: record.summary(attack(name).norm) for name, record in records.items()}}
    return ProtocolResult(row_ids=[r.row_id for r in data.rows], scores=float32_scores(scores),
                          conditions=conditions, analysis=analysis)
