"""Adversarial attacks on a detector (torch; the names are in evaluation.attacks), driven by the trusted worker with foolbox 3 (the SpectralDefense paper's
library) on gradients that the sandboxed detector computes.

The detector is a black box that answers "each image's logit and its gradient with respect to that image"
(``Detector.logit_gradients``, which the scorer child computes on the batch alone). ``DetectorAsClassifier``
turns that into a differentiable two-class torch model, logits ``[-z/2, z/2]``, whose cross-entropy is the
binary cross-entropy of the detector's logit ``z`` and whose argmax is the detector's decision at logit 0.
Foolbox then runs on the worker's side; the labels never reach the child.

Attacks and their settings follow the paper's ``attack.py`` (foolbox 3.2.1 defaults there; 3.3.4 here has the
same ones): FGSM, BIM and PGD in L∞ with ε in [0, 1] pixel units, DeepFool and C&W in L2 as minimisation
attacks. Only C&W's number of steps is set (the paper: 1000); ``steps`` in the config scales the others down
at mini scale.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from evaluation.attacks import attack
from evaluation.detectors.loading import Detector


class _LogitWithGradient(torch.autograd.Function):
    """z = detector(x), with dz/dx from the detector itself: one request to the scorer per forward pass."""

    @staticmethod
    def forward(ctx: Any, images: torch.Tensor, detector: Detector) -> torch.Tensor:  # type: ignore[override]
        logits, gradients = detector.logit_gradients(images.detach().float())
        ctx.save_for_backward(torch.from_numpy(np.array(gradients, dtype=np.float32)).to(images.device))
        return torch.from_numpy(np.array(logits, dtype=np.float32)).to(images.device)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (gradients,) = ctx.saved_tensors
        return grad_output.reshape(-1, 1, 1, 1) * gradients, None


class DetectorAsClassifier(torch.nn.Module):
    """A two-class classifier (0 real, 1 generated) whose logits are ``[-z/2, z/2]`` for the detector's logit z."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and images.requires_grad:
            z = _LogitWithGradient.apply(images, self.detector)
        else:  # foolbox's checks of success need no gradient: a plain scoring request is cheaper
            z = torch.from_numpy(np.asarray(self.detector.scores(images.detach().float()), np.float32)).to(images.device)
        return torch.stack([-z / 2, z / 2], dim=1)


def _steps(config: dict[str, Any], full: int) -> int:
    """An attack's steps at the config's scale (``steps_scale`` 1 is the paper's)."""
    return max(1, round(full * float(config.get("steps_scale", 1.0))))


def foolbox_attack(name: str, config: dict[str, Any]) -> Any:
    """The foolbox attack ``name`` (evaluation.attacks.ATTACKS) at the config's number of steps."""
    import foolbox as fb  # imported where attacks run

    attack(name)  # an unknown name is refused with the list of valid ones
    factories: dict[str, Callable[[], Any]] = {
        "fgsm": lambda: fb.attacks.FGSM(),
        "bim": lambda: fb.attacks.LinfBasicIterativeAttack(steps=_steps(config, 10)),
        "pgd": lambda: fb.attacks.LinfPGD(steps=_steps(config, 40)),
        # Two candidate classes: the detector's two.
        "deepfool": lambda: fb.attacks.L2DeepFoolAttack(steps=_steps(config, 50), candidates=2),
        "cw": lambda: fb.attacks.L2CarliniWagnerAttack(steps=int(config.get("cw_steps", 1000))),
    }
    return factories[name]()


@dataclass(frozen=True)
class AttackOutcome:
    """One attack on one batch: the adversarial images per ε (one entry for a minimisation attack), whether
    each image is misclassified there, and each perturbation's size in its norm."""

    images: list[torch.Tensor]
    success: list[np.ndarray]
    distances: list[np.ndarray]


def attack_batch(model: DetectorAsClassifier, name: str, images: torch.Tensor, labels: torch.Tensor,
                 epsilons: Sequence[float], config: dict[str, Any]) -> AttackOutcome:
    """Run attack ``name`` on a batch in [0, 1] with its true labels. An image that is misclassified already counts as
    a success at no perturbation (foolbox's Misclassification criterion)."""
    import foolbox as fb

    linf = attack(name).norm == "linf"
    fmodel = fb.PyTorchModel(model.eval(), bounds=(0, 1))
    _, clipped, success = foolbox_attack(name, config)(fmodel, images, labels, epsilons=list(epsilons) if linf else None)
    found = clipped if isinstance(clipped, list) else [clipped]
    hits = success if success.ndim == 2 else success.unsqueeze(0)
    flat = images.flatten(1)
    distances = [((x.flatten(1) - flat).abs().amax(1) if linf else (x.flatten(1) - flat).norm(dim=1))
                 .detach().cpu().numpy().astype(np.float64) for x in found]
    return AttackOutcome(images=[x.detach() for x in found], success=[h.cpu().numpy() for h in hits],
                         distances=distances)

