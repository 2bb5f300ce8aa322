"""The landscape protocol's pieces against independent computations: the Hessian-vector products the sandboxed
child computes against the dense Hessian of a tiny network (torch.autograd.functional.hessian), the top
eigenvalues and the Lanczos quadrature against its dense eigenvalues to 1e-4, the grid's logits against weights set
by hand, and the directions' normalisations against their definitions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evaluation.detectors.formats import ArtifactFormat
from evaluation.detectors.loading import TorchModuleDetector, load_detector
from evaluation.errors import DetectorCapabilityError
from evaluation.hessian import spectral_density, stochastic_lanczos_quadrature, top_eigenvalues
from evaluation.landscape import FILTER, LAYER, named_weights, random_directions, weight_count
from evaluation.protocols.landscape_run import bce_derivatives, mean_bce
from evaluation.sandbox.scorer import ScorerCache
from tests.detector_files import save_scripted, write_onnx
from tests.evaluation.conftest import needs_sandbox

SIZE = 16


class TinyNet(nn.Module):
    """63 weights, tanh so that the second-derivative term of the Hessian is not zero, and a BatchNorm whose
    running statistics must stay out of the directions."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.conv = nn.Conv2d(3, 2, 3, stride=4)
        self.norm = nn.BatchNorm2d(2)
        self.head = nn.Linear(2, 1)
        with torch.no_grad():
            self.norm.running_mean.fill_(0.1)
            self.norm.running_var.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.norm(self.conv(x))).mean((2, 3)))[:, 0] * 3


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _labels(n: int) -> np.ndarray:
    return np.arange(n) % 2.0


def _dense_hessian(module: nn.Module, images: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    """The mean BCE's Hessian over the flat weights, by torch.autograd.functional.hessian."""
    from torch.func import functional_call

    names = [n for n, _ in named_weights(module)]
    shapes = [p.shape for _, p in named_weights(module)]
    flat = torch.cat([p.detach().double().reshape(-1) for _, p in named_weights(module)])
    y = torch.tensor(labels)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        pieces = torch.split(theta, [int(np.prod(s)) for s in shapes])
        params = {n: piece.reshape(s) for n, piece, s in zip(names, pieces, shapes, strict=True)}
        buffers = {n: b.double() for n, b in module.named_buffers() if b.is_floating_point()}
        z = functional_call(module.double(), {**params, **buffers}, (images.double(),))
        return nn.functional.binary_cross_entropy_with_logits(z, y)

    hessian = torch.autograd.functional.hessian(loss, flat).numpy()
    module.float()
    return hessian



def _sandboxed(cache: ScorerCache, module: nn.Module, path: Path):
    save_scripted(module, path)
    return cache.open_child((path.name,), path, fmt=ArtifactFormat.TORCHSCRIPT, input_size=SIZE,
                            device=torch.device("cpu"))


@needs_sandbox
def test_the_childs_hessian_and_its_spectrum_equal_the_dense_hessians(scorers: ScorerCache, tmp_path: Path) -> None:
    module = TinyNet().eval()
    images, labels = _images(12, seed=1), _labels(12)
    dense = _dense_hessian(module, images, labels)
    detector = _sandboxed(scorers, module, tmp_path / "tiny.pt")
    size = detector.weight_count()
    assert size == weight_count(module) == dense.shape[0] == 63  # conv 56, norm 4, head 3
    first, second = bce_derivatives(detector.scores(images), labels)

    def hvp(v: np.ndarray) -> np.ndarray:
        return detector.hessian_vector(images, first, second, v).astype(np.float64)

    v = np.random.default_rng(0).normal(size=size)
    np.testing.assert_allclose(hvp(v), dense @ v, rtol=1e-4, atol=1e-5 * np.abs(dense @ v).max())
    exact = np.linalg.eigvalsh(dense)
    assert detector.tainted  # the child was sent the loss's derivatives: the cache never reuses it
    assert top_eigenvalues(hvp, size, k=2) == pytest.approx(exact[::-1][:2], rel=1e-4, abs=1e-6)
    (run,) = stochastic_lanczos_quadrature(hvp, size, steps=size, repeats=1)
    # P steps with full re-orthogonalisation: the Ritz values are the eigenvalues (the ones v₀ reaches).
    assert sum(run.weights) == pytest.approx(1.0, abs=1e-6)
    for node in run.nodes:
        assert np.abs(exact - node).min() < 1e-4 * max(1.0, abs(node))
    assert max(run.nodes) == pytest.approx(exact[-1], rel=1e-4)


def test_quadrature_and_density_on_a_matrix_with_a_known_spectrum() -> None:
    eigenvalues = np.array([-1.0, 0.5, 2.0, 2.0, 7.0])
    basis, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(5, 5)))
    matrix = basis @ np.diag(eigenvalues) @ basis.T
    runs = stochastic_lanczos_quadrature(lambda v: matrix @ v, 5, steps=5, repeats=4)
    for run in runs:  # the repeated eigenvalue 2 is one node; weights add up to 1
        assert sorted(np.round(run.nodes, 8)) == [-1.0, 0.5, 2.0, 7.0] and sum(run.weights) == pytest.approx(1)
    grid = np.linspace(-5, 12, 4001)
    density = spectral_density(runs, grid, sigma=0.2)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)
    # The weights average to each eigenvalue's share of the spectrum, 2 counting twice (4 start vectors: loose).
    near_two = density[(grid > 1.3) & (grid < 2.7)]
    assert np.trapezoid(near_two, grid[(grid > 1.3) & (grid < 2.7)]) == pytest.approx(0.4, abs=0.3)
    assert top_eigenvalues(lambda v: matrix @ v, 5, k=2) == pytest.approx([7.0, 2.0])


def test_directions_are_normalised_as_defined_and_leave_the_batchnorm_statistics_out() -> None:
    module = TinyNet()
    names = [n for n, _ in named_weights(module)]
    assert "norm.running_mean" not in names and "norm.weight" in names and "conv.bias" in names
    weights = [p.detach() for _, p in named_weights(module)]
    for d in random_directions(module, seed=5, normalisation=LAYER):
        for w, piece in zip(weights, d, strict=True):
            assert float(piece.norm()) == pytest.approx(float(w.norm()), rel=1e-5)
    for d in random_directions(module, seed=5, normalisation=FILTER):
        for w, piece in zip(weights, d, strict=True):
            if w.ndim <= 1:
                assert not piece.any()  # Li et al.: biases and norms are not moved
            else:
                np.testing.assert_allclose(piece.flatten(1).norm(dim=1), w.flatten(1).norm(dim=1), rtol=1e-5)
    again = random_directions(module, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(again[0], random_directions(module, seed=5)[0], strict=True))


@needs_sandbox
def test_grid_logits_equal_weights_set_by_hand_in_and_out_of_the_sandbox(scorers: ScorerCache, tmp_path: Path) -> None:
    module = TinyNet().eval()
    images = _images(5, seed=2)
    points = [(0.0, 0.0), (0.5, -0.25), (-1.0, 1.0)]
    directions = random_directions(module, seed=9)
    expected = []
    for x, y in points:
        moved = TinyNet().eval()
        with torch.no_grad():
            for (_, w), (_, m), d1, d2 in zip(named_weights(module), named_weights(moved), *directions, strict=True):
                m.copy_(w + x * d1 + y * d2)
            expected.append(moved(images).double().numpy())
    in_place = _sandboxed(scorers, module, tmp_path / "grid.pt").grid_logits(images, points, 9, LAYER)  # TorchScript
    batched = TorchModuleDetector(module, SIZE, torch.device("cpu"), ArtifactFormat.SAFETENSORS).grid_logits(
        images, points, 9, LAYER)  # an nn.Module: vmap over the grid points
    np.testing.assert_allclose(in_place, np.array(expected), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched, np.array(expected), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        loss = nn.functional.binary_cross_entropy_with_logits(module(images), torch.tensor(_labels(5)).float())
    assert mean_bce(in_place[0], _labels(5)) == pytest.approx(float(loss), rel=1e-5)


def test_an_onnx_detector_exposes_no_weights(tmp_path: Path) -> None:
    detector = load_detector(write_onnx(tmp_path / "d.onnx", seed=1, input_size=SIZE), ArtifactFormat.ONNX,
                             input_size=SIZE, device=torch.device("cpu"))
    with pytest.raises(DetectorCapabilityError, match="exposes no weights"):
        detector.weight_count()
    assert "weights" not in detector.capabilities


def test_pca_directions_and_projections_follow_gradvis_written_out_in_numpy() -> None:
    from sklearn.decomposition import PCA

    from evaluation.landscape import pca_directions, project

    module = TinyNet()
    final = [p.detach().clone() for _, p in named_weights(module)]
    g = torch.Generator().manual_seed(4)
    checkpoints = [[w + torch.randn(w.shape, generator=g) * 0.1 * (k + 1) for w in final] for k in range(5)]
    directions, variance = pca_directions(module, checkpoints)
    # GradVis: PCA of (θᵢ − θ_T)ᵀ, then each tensor's slice scaled to that tensor's norm, then lstsq.
    flat = lambda ts: np.concatenate([t.double().numpy().ravel() for t in ts])  # noqa: E731
    data = np.stack([flat(c) - flat(final) for c in checkpoints])
    pca = PCA(n_components=2)
    scores = pca.fit_transform(data.T)
    sizes = np.cumsum([0, *(w.numel() for w in final)])
    expected = []
    for k in range(2):
        pieces = [scores[lo:hi, k] * (np.linalg.norm(w.numpy()) / np.linalg.norm(scores[lo:hi, k]))
                  for lo, hi, w in zip(sizes[:-1], sizes[1:], final, strict=True)]
        expected.append(np.concatenate(pieces))
        np.testing.assert_allclose(flat(directions[k]), expected[-1], rtol=1e-5, atol=1e-7)
    assert variance == pytest.approx(pca.explained_variance_ratio_.tolist())
    coefficients = project(module, checkpoints, directions)
    basis = np.stack(expected, axis=1)
    for (a, b), c in zip(coefficients, checkpoints, strict=True):
        assert [a, b] == pytest.approx(np.linalg.lstsq(basis, flat(c) - flat(final), rcond=None)[0].tolist(), rel=1e-4)


def test_a_trajectory_in_a_plane_of_one_tensor_is_recovered_exactly() -> None:
    from evaluation.landscape import pca_directions, project

    module = nn.Linear(6, 1, bias=False)  # one tensor: the layer-wise scaling is a global one, the plane is kept
    final = module.weight.detach().clone()
    # Zero-mean steps: GradVis's PCA centres each checkpoint over the parameters, which then changes nothing.
    u, w = torch.randn(final.shape), torch.randn(final.shape)
    u, w = u - u.mean(), w - w.mean()
    path = [(1.0, 0.5), (0.6, 0.7), (0.3, 0.2), (0.1, -0.1)]
    checkpoints = [[final + a * u + b * w] for a, b in path]
    directions, variance = pca_directions(module, checkpoints)
    assert sum(variance) == pytest.approx(1.0)
    for (a, b), c in zip(project(module, checkpoints, directions), checkpoints, strict=True):
        np.testing.assert_allclose((final + a * directions[0][0] + b * directions[1][0]).numpy(), c[0].numpy(), atol=1e-5)


@needs_sandbox
def test_a_fine_grid_travels_in_the_payload_not_the_header(scorers: ScorerCache, tmp_path: Path) -> None:
    axis = np.linspace(-2.5, 2.5, 51)  # the full-scale grid: 2601 points, more than a frame header holds
    points = [(float(x), float(y)) for x in axis for y in axis]
    module = TinyNet().eval()
    detector = _sandboxed(scorers, module, tmp_path / "fine.pt")
    values = detector.grid_logits(_images(2, seed=3), points, 9, LAYER)
    assert values.shape == (2601, 2)
    here = TorchModuleDetector(module, SIZE, torch.device("cpu"), ArtifactFormat.SAFETENSORS)
    np.testing.assert_allclose(values[::97], here.grid_logits(_images(2, seed=3), points[::97], 9, LAYER),
                               rtol=1e-4, atol=1e-5)
