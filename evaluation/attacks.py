"""The attacks the adversarial protocol runs, by name: their norm and title (torch-free, so the platform can
list them; ``evaluation.attack_model`` runs them)."""
from __future__ import annotations

from dataclasses import dataclass

from evaluation.errors import EvaluationError


class UnknownAttackError(EvaluationError):
    """An attack name that is not one of ``ATTACKS``; the message lists the valid names."""


@dataclass(frozen=True)
class Attack:
    name: str
    title: str
    # "linf": run at each ε of a sweep; "l2": a minimisation attack, judged by the size of its perturbation
    norm: str


ATTACKS = {a.name: a for a in (
    Attack("fgsm", "FGSM", "linf"), Attack("bim", "BIM", "linf"), Attack("pgd", "PGD", "linf"),
    Attack("deepfool", "DeepFool", "l2"), Attack("cw", "C&W", "l2"),
)}


def attack(name: str) -> Attack:
    try:
        return ATTACKS[name]
    except KeyError:
        raise UnknownAttackError(f"no attack named {name!r}; the attacks are: {', '.join(ATTACKS)}") from None


def condition_name(name: str, epsilon: float | None = None) -> str:
    """The stored condition of an attack's images: ``pgd@0.03`` at an ε, a minimisation attack's name alone."""
    return name if epsilon is None else f"{name}@{epsilon:g}"


def parse_condition(condition: str) -> tuple[str, float | None] | None:
    """``(attack, ε)`` of a condition made by ``condition_name`` (ε None for a minimisation attack), or None."""
    name, _, epsilon = condition.partition("@")
    if name not in ATTACKS:
        return None
    return name, float(epsilon) if epsilon else None
