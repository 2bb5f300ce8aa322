"""SpectralDefense (Harder et al., IJCNN 2021): detecting adversarial images by their Fourier spectrum.

As the authors' ``extract_characteristics.py`` and ``detect_adversarials.py`` do it (seeds.md §3.2):

- The data are pairs: a correctly classified clean image and its successful adversarial twin.
- InputMFS is |F| and InputPFS |angle F| of ``np.fft.fft2`` over the last two axes of the un-normalised image
  in [0, 1], flattened; no fftshift and no log.
- The pairs are split as the authors split them: ``train_test_split(test_size=0.2, random_state=42)`` of the
  clean and of the adversarial features separately (the same permutation, so a pair stays on one side), then
  the 80 % again 80/20 into train and validation: 64/16/20.
- scikit-learn's ``LogisticRegression()`` with its defaults is fitted on the unscaled training features.
- Reported on the 20 %: accuracy, TPR (adversarials detected), TNR, precision and ROC-AUC.
- LayerMFS / LayerPFS: the same transform per channel of a feature map. The authors take six VGG-16 layers;
  an uploaded detector may be any network, so here the map is its ``features(x)`` when that returns N×C×H×W.

The worker (numpy and scikit-learn; no torch here) fits the regression and sends the held-out probabilities;
the platform computes every number from them (``detection_summary``), as it does from a detector's logits.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from evaluation.metrics import roc_auc

FEATURE_KINDS = ("InputMFS", "InputPFS")
LAYER_KINDS = ("LayerMFS", "LayerPFS")
SPLIT_SEED = 42
TEST_SHARE = 0.2
MIN_PAIRS = 5  # below this the 64/16/20 split leaves a side empty


def input_spectra(images: np.ndarray, kind: str) -> np.ndarray:
    """InputMFS or InputPFS of N×C×H×W images in [0, 1], or LayerMFS or LayerPFS of N×C×H×W feature maps (the
    same transform per channel): float32, N × (C·H·W)."""
    spectrum = np.fft.fft2(np.asarray(images, dtype=np.float64), axes=(-2, -1))
    values = np.abs(spectrum) if kind.endswith("MFS") else np.abs(np.angle(spectrum))
    return values.reshape(len(values), -1).astype(np.float32)


def paired_split(pairs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the train, validation and test pairs, the authors' two ``train_test_split`` calls."""
    from sklearn.model_selection import train_test_split

    index = np.arange(pairs)
    train_val, test = train_test_split(index, test_size=TEST_SHARE, random_state=SPLIT_SEED)
    train, val = train_test_split(train_val, test_size=TEST_SHARE, random_state=SPLIT_SEED)
    return np.asarray(train), np.asarray(val), np.asarray(test)


@dataclass(frozen=True)
class HeldOut:
    """The fitted regression's probability of "adversarial" for the held-out clean images and their twins."""

    clean: list[float]
    adversarial: list[float]
    train_pairs: int
    converged: bool

    def to_dict(self) -> dict[str, object]:
        return {"clean": self.clean, "adversarial": self.adversarial, "train_pairs": self.train_pairs,
                "converged": self.converged}


def fit_and_hold_out(clean: np.ndarray, adversarial: np.ndarray) -> HeldOut:
    """Fit on the training pairs' features (clean 0, adversarial 1) and score the test pairs."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    train, _, test = paired_split(len(clean))
    features = np.concatenate([clean[train], adversarial[train]])
    targets = np.concatenate([np.zeros(len(train)), np.ones(len(train))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = LogisticRegression().fit(features, targets)  # the authors' defaults: L2, C = 1, lbfgs, 100 steps
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    probability = model.predict_proba(np.concatenate([clean[test], adversarial[test]]))[:, 1]
    return HeldOut(clean=probability[:len(test)].tolist(), adversarial=probability[len(test):].tolist(),
                   train_pairs=len(train), converged=converged)


def detection_summary(clean: list[float], adversarial: list[float]) -> dict[str, float | None]:
    """Accuracy, TPR, TNR, precision (the regression's decision at 0.5, as ``predict``) and ROC-AUC."""
    p_clean, p_adv = np.asarray(clean, float), np.asarray(adversarial, float)
    if not len(p_clean):
        return {"accuracy": None, "tpr": None, "tnr": None, "precision": None, "auc": None}
    flagged_adv, flagged_clean = int((p_adv > 0.5).sum()), int((p_clean > 0.5).sum())
    labels = np.concatenate([np.zeros(len(p_clean)), np.ones(len(p_adv))])
    return {
        "accuracy": (flagged_adv + len(p_clean) - flagged_clean) / (len(p_clean) + len(p_adv)),
        "tpr": flagged_adv / len(p_adv),
        "tnr": 1 - flagged_clean / len(p_clean),
        "precision": flagged_adv / (flagged_adv + flagged_clean) if flagged_adv + flagged_clean else None,
        "auc": roc_auc(labels, np.concatenate([p_clean, p_adv])),
    }


def roc_points(clean: list[float], adversarial: list[float]) -> dict[str, list[float]]:
    """The detection ROC curve (false and true positive rates at every threshold), for the plots."""
    scores = np.concatenate([np.asarray(clean, float), np.asarray(adversarial, float)])
    labels = np.concatenate([np.zeros(len(clean)), np.ones(len(adversarial))])
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.cumsum(labels[order]), np.cumsum(1 - labels[order])
    keep = np.r_[np.diff(scores[order]) != 0, True]
    fpr = np.r_[0.0, fp[keep] / max(len(clean), 1)]
    tpr = np.r_[0.0, tp[keep] / max(len(adversarial), 1)]
    return {"fpr": fpr.round(6).tolist(), "tpr": tpr.round(6).tolist()}
