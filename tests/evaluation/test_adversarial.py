"""The adversarial protocol's pieces against independent computations: FGSM on a logistic-regression detector
against its closed form, PGD and DeepFool through the real sandbox against foolbox on the same model in
process, SpectralDefense's spectra against a hand-made image with a known spectrum, its split against the
authors' own two calls, and its detection numbers against scikit-learn."""
from __future__ import annotations

from pathlib import Path

import foolbox as fb
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from torch import nn

from evaluation.attack_model import DetectorAsClassifier, attack_batch, foolbox_attack
from evaluation.attacks import UnknownAttackError, attack
from evaluation.detectors.formats import ArtifactFormat
from evaluation.protocols import get_protocol
from evaluation.protocols.adversarial import DEFAULT_CONFIG, ROBUST_METRIC, conditions_of, summarise
from evaluation.sandbox.scorer import ScorerCache
from evaluation.spectral_defense import detection_summary, fit_and_hold_out, input_spectra, paired_split
from tests.detector_files import TinyDetector, save_scripted
from tests.evaluation.conftest import needs_sandbox

SIZE = 32


class LogisticDetector(nn.Module):
    """z = <w, x> + b: a logistic regression on the pixels."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.w = nn.Parameter(torch.randn(1, 3, SIZE, SIZE, generator=g) * 0.05)
        self.b = nn.Parameter(torch.tensor(-0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1) + self.b




def _sandboxed(cache: ScorerCache, path: Path):
    return cache.open_child((path.name,), path, fmt=ArtifactFormat.TORCHSCRIPT, input_size=SIZE,
                            device=torch.device("cpu"))


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


class _Eager(nn.Module):
    """The same two-class view as DetectorAsClassifier, on the bare module with autograd in process."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.module(x).reshape(len(x))
        return torch.stack([-z / 2, z / 2], dim=1)


@needs_sandbox
def test_fgsm_on_a_logistic_regression_is_its_closed_form(scorers: ScorerCache, tmp_path: Path) -> None:
    module = LogisticDetector()
    model = DetectorAsClassifier(_sandboxed(scorers, save_scripted(module, tmp_path / "logistic.pt")))
    images, labels = _images(6, seed=1), torch.tensor([0, 1, 0, 1, 1, 0])
    outcome = attack_batch(model, "fgsm", images, labels, [0.03, 0.1], {})
    with torch.no_grad():
        p = torch.sigmoid(module(images))
    # d BCE / dx = (p - y) w, so FGSM moves every pixel by ε against the true class, then clips to [0, 1].
    direction = torch.sign((p - labels.float()).reshape(-1, 1, 1, 1) * module.w.detach())
    for k, eps in enumerate([0.03, 0.1]):
        expected = (images + eps * direction).clamp(0, 1)
        np.testing.assert_allclose(outcome.images[k].numpy(), expected.numpy(), atol=1e-6)
        with torch.no_grad():
            fooled = (module(expected) > 0).long() != labels
        assert outcome.success[k].tolist() == fooled.tolist()


@needs_sandbox
@pytest.mark.parametrize("name", ["pgd", "deepfool"])
def test_attacks_through_the_sandbox_equal_foolbox_on_the_model_in_process(scorers: ScorerCache, tmp_path: Path,
                                                                           name: str) -> None:
    module = TinyDetector(seed=7).eval()
    model = DetectorAsClassifier(_sandboxed(scorers, save_scripted(module, tmp_path / f"tiny-{name}.pt")))
    images = _images(8, seed=2)
    with torch.no_grad():
        labels = (module(images) > 0).long()  # every image correctly classified before the attack
    config = {"steps_scale": 0.25}
    epsilons = [0.03, 0.3] if attack(name).norm == "linf" else None
    torch.manual_seed(11)
    ours = attack_batch(model, name, images, labels, epsilons or [], config)
    torch.manual_seed(11)
    _, expected, success = foolbox_attack(name, config)(fb.PyTorchModel(_Eager(module).eval(), bounds=(0, 1)), images, labels,
                                                       epsilons=epsilons)
    expected = expected if isinstance(expected, list) else [expected]
    success = success if success.ndim == 2 else success.unsqueeze(0)
    for k in range(len(expected)):
        np.testing.assert_allclose(ours.images[k].numpy(), expected[k].numpy(), atol=2e-5)
        assert ours.success[k].tolist() == success[k].tolist()
    assert ours.success[-1].any()  # the attack does something, so equality is not of two no-ops


def test_an_unknown_attack_is_refused_with_the_valid_names() -> None:
    with pytest.raises(UnknownAttackError, match="fgsm, bim, pgd, deepfool, cw"):
        attack("autoattack")


def test_input_spectra_of_a_cosine_are_its_two_peaks_without_shift_or_log() -> None:
    size, k = 16, 3
    x = np.arange(size)
    image = np.zeros((1, 3, size, size))
    image[0, 0] = 0.5 + 0.25 * np.cos(2 * np.pi * k * x / size)[None, :]  # varies along the width
    image[0, 1] = 0.5 + 0.25 * np.sin(2 * np.pi * k * x / size)[None, :]
    mfs = input_spectra(image, "InputMFS").reshape(3, size, size)
    pfs = input_spectra(image, "InputPFS").reshape(3, size, size)
    for channel in (0, 1):  # DC 0.5·S², the two peaks 0.25·S²/2 at columns k and S−k of row 0, zero elsewhere
        expected = np.zeros((size, size))
        expected[0, 0], expected[0, k], expected[0, size - k] = 0.5 * size ** 2, 0.125 * size ** 2, 0.125 * size ** 2
        np.testing.assert_allclose(mfs[channel], expected, atol=1e-3)
    assert pfs[0, 0, k] == pytest.approx(0, abs=1e-6) and pfs[1, 0, k] == pytest.approx(np.pi / 2, abs=1e-6)
    assert np.abs(mfs[2]).max() == 0  # an empty channel has an empty spectrum


def test_the_pairs_are_split_as_the_authors_split_clean_and_adversarial_features() -> None:
    rng = np.random.default_rng(0)
    clean, adversarial = rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 0.5
    train, val, test = paired_split(50)
    assert (len(train), len(val), len(test)) == (32, 8, 10)
    # detect_adversarials.py: each array split on its own with random_state 42, then the 80 % again.
    a_trval, a_test = train_test_split(adversarial, test_size=0.2, random_state=42)
    b_trval, b_test = train_test_split(clean, test_size=0.2, random_state=42)
    a_train, _ = train_test_split(a_trval, test_size=0.2, random_state=42)
    b_train, _ = train_test_split(b_trval, test_size=0.2, random_state=42)
    np.testing.assert_array_equal(clean[test], b_test)
    np.testing.assert_array_equal(adversarial[train], a_train)
    held = fit_and_hold_out(clean, adversarial)
    authors = LogisticRegression().fit(np.concatenate([b_train, a_train]), np.r_[np.zeros(32), np.ones(32)])
    np.testing.assert_allclose(held.clean, authors.predict_proba(b_test)[:, 1], rtol=1e-10)
    np.testing.assert_allclose(held.adversarial, authors.predict_proba(a_test)[:, 1], rtol=1e-10)


def test_detection_numbers_equal_scikit_learns() -> None:
    rng = np.random.default_rng(1)
    clean, adversarial = rng.uniform(0, 0.7, 40).tolist(), rng.uniform(0.3, 1, 40).tolist()
    numbers = detection_summary(clean, adversarial)
    labels, scores = np.r_[np.zeros(40), np.ones(40)], np.r_[clean, adversarial]
    assert numbers["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert numbers["accuracy"] == pytest.approx(((scores > 0.5) == labels).mean())
    assert numbers["tpr"] == pytest.approx((np.asarray(adversarial) > 0.5).mean())
    assert numbers["tnr"] == pytest.approx((np.asarray(clean) <= 0.5).mean())


def test_robust_accuracy_is_the_worst_linf_attack_at_the_headline_epsilon() -> None:
    config = {**DEFAULT_CONFIG, "attacks": ["fgsm", "pgd", "cw"], "epsilons": [0.01, 0.03]}
    conditions = conditions_of(config)
    assert conditions == ["clean", "fgsm@0.01", "fgsm@0.03", "pgd@0.01", "pgd@0.03", "cw"]
    labels = np.array([0, 0, 1, 1])
    right, wrong = np.array([-2.0, -2.0, 2.0, 2.0]), np.array([-2.0, 2.0, 2.0, -2.0])  # 1.0 and 0.5
    scores = np.stack([right, right, right, right, wrong, wrong])
    metrics = summarise(labels, scores.ravel(), ["g"] * 4, np.array(["test"] * 4), config)
    assert metrics["mean/fgsm@0.03"]["acc_mean"] == 1.0 and metrics["mean/pgd@0.03"]["acc_mean"] == 0.5
    assert metrics["mean/robust"][ROBUST_METRIC] == 0.5
    assert get_protocol("adversarial").analysis and get_protocol("adversarial").transfer_surrogate
