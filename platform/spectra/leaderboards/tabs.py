"""The leaderboard's analysis tabs: one number per entry from an analysis protocol's Result rows."""
from __future__ import annotations

from dataclasses import dataclass

from evaluation.protocols import adversarial, indicators, landscape


@dataclass(frozen=True)
class AnalysisTab:
    slug: str
    title: str
    protocol: str
    condition: str  # the Result row's condition (subset "mean") that holds the number
    metric: str
    explanation: str
    higher_is_better: bool = True


ANALYSIS_TABS = {tab.slug: tab for tab in (
    AnalysisTab(
        "robust-accuracy", f"Robust accuracy at ε = {adversarial.DEFAULT_CONFIG['epsilon']}", adversarial.NAME,
        adversarial.ROBUST, adversarial.ROBUST_METRIC,
        "The lowest mean accuracy over the white-box L∞ attacks (FGSM, BIM, PGD) at ε = 0.03 in [0, 1] pixel units, "
        "on an evenly spaced sample of the test images. Only entries that asked for the adversarial analysis and "
        "give gradients (TorchScript) appear.",
    ),
    AnalysisTab(
        "spectral-defense", "SpectralDefense AUC", adversarial.NAME, adversarial.DEFENSE, adversarial.DEFENSE_AUC,
        "How well the attacks on this detector are detected from the images' Fourier magnitude (InputMFS, "
        "logistic regression, the authors' 64/16/20 split): the held-out ROC-AUC averaged over the attacks. High "
        "means the attacks leave a visible spectral trace; it is a property of the detector's attacks, not a "
        "defence the detector has.",
    ),
    AnalysisTab(
        "sharpness", "Sharpness (top Hessian eigenvalue)", landscape.NAME, landscape.SHARPNESS,
        landscape.TOP_EIGENVALUE,
        "The largest eigenvalue of the Hessian of the mean binary cross-entropy at the detector's weights, on an "
        "evenly spaced sample of the test images (ARPACK on Hessian-vector products the sandboxed detector "
        "computes). Lower is flatter; flat minima are often linked with robustness, a link the indicators tab "
        "tests rather than assumes. Only entries that asked for the landscape analysis and expose their weights "
        "(TorchScript, safetensors) appear.",
        higher_is_better=False,
    ),
    AnalysisTab(
        "indicators", "Feature-space indicator (silhouette)", indicators.NAME, indicators.CONDITION,
        indicators.RANKED_INDICATOR,
        "The best mean silhouette of k-means (k = 2…6) on the detector's standardised features(x) of clean test "
        "images: how clustered its feature space is, label-free (the other indicators, purity, NMI, ARI and "
        "spread, are on each submission's page). Sorted high to low without implying better: whether an "
        "indicator predicts robustness is measured by the zoo's population study (zoo entry indicators).",
    ),
)}
