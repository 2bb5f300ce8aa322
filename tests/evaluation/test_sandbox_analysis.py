"""What the analysis protocols take from a detector, through the real sandbox: its features and the gradient of
each image's logit with respect to that image, checked against a closed form and against eager autograd run one
image at a time. The child gets the batch only (labels never: a protocol's loss is applied on the trusted side)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evaluation.detectors.formats import ArtifactFormat
from evaluation.detectors.loading import load_detector
from evaluation.errors import DetectorCapabilityError, DetectorOutputError
from evaluation.sandbox.scorer import ScorerCache
from tests.detector_files import TinyDetector, save_scripted, write_onnx
from tests.evaluation.conftest import needs_sandbox

SIZE = 32

pytestmark = needs_sandbox


class LinearDetector(nn.Module):
    """logit = <w, x> + b: its gradient with respect to x is w, for every image, exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-1, 1, 3 * SIZE * SIZE).reshape(1, 3, SIZE, SIZE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1) + 0.25


class BrokenFeatures(LinearDetector):
    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(7, -1, 5)  # fails for any batch this test sends




def _sandboxed(cache: ScorerCache, path: Path, fmt: ArtifactFormat = ArtifactFormat.TORCHSCRIPT):
    detector = cache.open_child((path.name,), path, fmt=fmt, input_size=SIZE, device=torch.device("cpu"))
    assert detector.isolation["sandbox"] == "bubblewrap"
    return detector


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_the_gradient_of_a_linear_detector_is_its_weight(scorers: ScorerCache, tmp_path: Path) -> None:
    module = LinearDetector()
    detector = _sandboxed(scorers, save_scripted(module, tmp_path / "linear.pt"))
    images = _images(4, seed=1)
    logits, gradients = detector.logit_gradients(images)
    np.testing.assert_allclose(logits, (images * module.w).flatten(1).sum(1).double().detach() + 0.25, rtol=1e-5)
    np.testing.assert_allclose(gradients, module.w.detach().expand(4, -1, -1, -1).numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("output", ["logit", "two"])
def test_gradients_match_eager_autograd_one_image_at_a_time(scorers: ScorerCache, tmp_path: Path, output: str) -> None:
    module = TinyDetector(seed=5, output=output).eval()
    detector = _sandboxed(scorers, save_scripted(module, tmp_path / f"tiny-{output}.pt"))
    images = _images(3, seed=2)
    logits, gradients = detector.logit_gradients(images)
    for i in range(3):
        image = images[i:i + 1].clone().requires_grad_(True)
        out = module(image)
        logit = out[:, 1] - out[:, 0] if output == "two" else out.reshape(1)
        (expected,) = torch.autograd.grad(logit.sum(), image)
        assert logits[i] == pytest.approx(float(logit), rel=1e-5, abs=1e-6)
        np.testing.assert_allclose(gradients[i], expected[0].numpy(), rtol=1e-4, atol=1e-6)
    assert detector.scores(images) == pytest.approx(logits, rel=1e-5, abs=1e-6)


def test_features_equal_the_modules_own(scorers: ScorerCache, tmp_path: Path) -> None:
    module = TinyDetector(seed=4).eval()  # its features: the pooled activations, N×16
    detector = _sandboxed(scorers, save_scripted(module, tmp_path / "features.pt"))
    assert "features" in detector.capabilities
    images = _images(6, seed=3)
    with torch.no_grad():
        expected = module.features(images).numpy()
    np.testing.assert_allclose(detector.features(images), expected, rtol=1e-5, atol=1e-6)


def test_a_failing_features_method_is_the_models_fault_in_plain_words(scorers: ScorerCache, tmp_path: Path) -> None:
    detector = _sandboxed(scorers, save_scripted(BrokenFeatures(), tmp_path / "broken.pt"))
    with pytest.raises(DetectorOutputError, match="failed computing the features of a batch of 4 images"):
        detector.features(_images(4, seed=4))
    assert detector.scores(_images(2, seed=5)).shape == (2,)  # the same child still scores


def test_a_module_without_features_and_an_onnx_file_say_what_the_protocol_needs(scorers: ScorerCache,
                                                                                 tmp_path: Path) -> None:
    plain = _sandboxed(scorers, save_scripted(LinearDetector(), tmp_path / "plain.pt"))
    with pytest.raises(DetectorCapabilityError, match="no features"):
        plain.features(_images(2, seed=6))
    onnx_path = write_onnx(tmp_path / "d.onnx", seed=1, input_size=SIZE)
    for detector in (_sandboxed(scorers, onnx_path, ArtifactFormat.ONNX),
                     load_detector(onnx_path, ArtifactFormat.ONNX, input_size=SIZE, device=torch.device("cpu"))):
        with pytest.raises(DetectorCapabilityError, match="gives no gradients"):
            detector.logit_gradients(_images(2, seed=7))
