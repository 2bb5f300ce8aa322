"""SpectralDefense as a zoo entry: the adversarial-image detector the adversarial protocol fits per submission
(evaluation.spectral_defense), usable on its own for images and adversarials a caller has."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluation.spectral_defense import FEATURE_KINDS, input_spectra
from models_zoo.registry import register_model


@dataclass
class SpectralDefenseDetector:
    """Logistic regression (scikit-learn's defaults) on InputMFS or InputPFS of N×C×H×W images in [0, 1]."""

    features: str = FEATURE_KINDS[0]
    model: Any = field(default=None, repr=False)

    def fit(self, clean: np.ndarray, adversarial: np.ndarray) -> SpectralDefenseDetector:
        from sklearn.linear_model import LogisticRegression

        x = np.concatenate([input_spectra(clean, self.features), input_spectra(adversarial, self.features)])
        self.model = LogisticRegression().fit(x, np.r_[np.zeros(len(clean)), np.ones(len(adversarial))])
        return self

    def probability_adversarial(self, images: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise ValueError("fit the detector on clean and adversarial images first")
        return self.model.predict_proba(input_spectra(images, self.features))[:, 1]


@register_model("spectral-defense")
def build_spectral_defense(features: str = FEATURE_KINDS[0]) -> SpectralDefenseDetector:
    if features not in FEATURE_KINDS:
        raise ValueError(f"unknown SpectralDefense features {features!r}; choose one of {', '.join(FEATURE_KINDS)}")
    return SpectralDefenseDetector(features=features)
