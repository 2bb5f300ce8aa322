"""The leaderboard's tabs beside cross-generator accuracy: one number per entry from a protocol's Result rows
(the wild protocol's robust ROC-AUC and each analysis's), optionally with a companion number."""
from __future__ import annotations

from dataclasses import dataclass

from evaluation.protocols import adversarial, indicators, landscape, wild


@dataclass(frozen=True)
class AnalysisTab:
    slug: str
    title: str
    protocol: str
    condition: str  # the Result row's condition (subset "mean") that holds the number
    metric: str
    explanation: str
    higher_is_better: bool = True
    anchor: str = ""  # the section of the submission page that explains the number
    companion: tuple[str, str, str] | None = None  # (condition, metric, heading) of a second column, lower is better


ROBUST_AUC = AnalysisTab(
    "robust-auc", "Robust ROC-AUC (in the wild)", wild.NAME, wild.CHAINS, "roc_auc",
    "ROC-AUC averaged over generators when every test image, real and generated alike, has gone through its own chain "
    "of 1–5 real-world distortions (JPEG, WebP, resizing, crops, blur, noise, colour, rotation, screenshots…), drawn "
    "from the image's id and a fixed seed so every entry sees the same images. The drop is clean − robust ROC-AUC, "
    "with a paired interval. Every entry is evaluated this way.",
    anchor="wild", companion=(wild.DROP, wild.ROC_AUC_DROP, "Drop (clean − chains) ↓"),
)


ANALYSIS_TABS = {tab.slug: tab for tab in (
    ROBUST_AUC,
    AnalysisTab(
        "robust-accuracy", f"Robust accuracy at ε = {adversarial.DEFAULT_CONFIG['epsilon']}", adversarial.NAME,
        adversarial.ROBUST, adversarial.ROBUST_METRIC,
        "The lowest mean accuracy over the white-box L∞ attacks (FGSM, BIM, PGD) at ε = 0.03 in [0, 1] pixel units, "
        "on an evenly spaced sample of the test images. Only entries that asked for the adversarial analysis and "
        "give gradients (TorchScript) appear.",
        anchor="adversarial",
    ),
    AnalysisTab(
        "spectral-defense", "SpectralDefense AUC", adversarial.NAME, adversarial.DEFENSE, adversarial.DEFENSE_AUC,
        "How well the attacks on this detector are detected from the images' Fourier magnitude (InputMFS, "
        "logistic regression, the authors' 64/16/20 split): the held-out ROC-AUC averaged over the attacks. High "
        "means the attacks leave a visible spectral trace; it is a property of the detector's attacks, not a "
        "defence the detector has.",
        anchor="adversarial",
    ),
    AnalysisTab(
        "sharpness", "Sharpness (top Hessian eigenvalue)", landscape.NAME, landscape.SHARPNESS,
        landscape.TOP_EIGENVALUE,
        "The largest eigenvalue of the Hessian of the mean binary cross-entropy at the detector's weights, on an "
        "evenly spaced sample of the test images (ARPACK on Hessian-vector products the sandboxed detector "
        "computes). Lower is flatter; flat minima are often linked with robustness, a link the indicators tab "
        "tests rather than assumes. Only entries that asked for the landscape analysis and expose their weights "
        "(TorchScript, safetensors) appear.",
        higher_is_better=False, anchor="landscape",
    ),
    AnalysisTab(
        "indicators", "Feature-space indicator (silhouette)", indicators.NAME, indicators.CONDITION,
        indicators.RANKED_INDICATOR,
        "The best mean silhouette of k-means (k = 2…6) on the detector's standardised features(x) of clean test "
        "images: how clustered its feature space is, label-free (the other indicators, purity, NMI, ARI and "
        "spread, are on each submission's page). Sorted high to low without implying better: whether an "
        "indicator predicts robustness is measured by the zoo's population study (zoo entry indicators).",
        anchor="indicators",
    ),
)}
