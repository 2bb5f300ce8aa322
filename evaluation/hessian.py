"""Second-order analysis from Hessian-vector products alone, as GradVis's hessian_functions.py does it
(seeds.md §10.3): the top eigenvalues by ARPACK's implicitly restarted Lanczos (``scipy.sparse.linalg.eigsh``,
which='LA'), and the eigenvalue density by stochastic Lanczos quadrature with full re-orthogonalisation in float64,
nodes and weights from ``scipy.linalg.eigh_tridiagonal`` (weights = squared first components). Numpy and scipy
only: the products come from wherever the model is (the scorer child for an upload)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MatVec = Callable[[np.ndarray], np.ndarray]


def top_eigenvalues(matvec: MatVec, size: int, k: int = 2, seed: int = 0, tol: float = 1e-6) -> list[float]:
    """The ``k`` largest (algebraic) eigenvalues, largest first."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    operator = LinearOperator((size, size), matvec=lambda v: np.asarray(matvec(np.ravel(v)), dtype=np.float64),
                              dtype=np.float64)
    start = np.random.default_rng(seed).normal(size=size)
    values = eigsh(operator, k=min(k, size - 1), which="LA", v0=start, tol=tol, return_eigenvectors=False)
    return sorted((float(v) for v in values), reverse=True)


@dataclass(frozen=True)
class Quadrature:
    """One Lanczos run's Ritz values (nodes) and their weights (squared first eigenvector components)."""

    nodes: list[float]
    weights: list[float]


def lanczos(matvec: MatVec, size: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The tridiagonal (α, β) of ``steps`` Lanczos steps from v₀ ~ N(0, 1/P) (GradVis's start; it is normalised,
    so only its direction matters), every new vector re-orthogonalised against all earlier ones."""
    steps = min(steps, size)
    basis = np.zeros((steps, size))
    alpha, beta = np.zeros(steps), np.zeros(max(steps - 1, 0))
    v = rng.normal(0.0, 1.0 / size, size=size)
    basis[0] = v / np.linalg.norm(v)
    for j in range(steps):
        w = np.asarray(matvec(basis[j]), dtype=np.float64)
        alpha[j] = basis[j] @ w
        w -= basis[: j + 1].T @ (basis[: j + 1] @ w)  # full re-orthogonalisation (twice is enough)
        w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        if j + 1 == steps:
            break
        beta[j] = np.linalg.norm(w)
        if beta[j] < 1e-12:  # an invariant subspace: the spectrum seen from v₀ is exhausted
            return alpha[: j + 1], beta[:j]
        basis[j + 1] = w / beta[j]
    return alpha, beta


def stochastic_lanczos_quadrature(matvec: MatVec, size: int, steps: int = 80, repeats: int = 10,
                                  seed: int = 0) -> list[Quadrature]:
    from scipy.linalg import eigh_tridiagonal

    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(repeats):
        alpha, beta = lanczos(matvec, size, steps, rng)
        nodes, vectors = eigh_tridiagonal(alpha, beta)
        runs.append(Quadrature(nodes=nodes.tolist(), weights=(vectors[0] ** 2).tolist()))
    return runs


def spectral_density(runs: list[Quadrature], grid: np.ndarray, sigma: float) -> np.ndarray:
    """φ(t) = mean over runs of Σᵢ wᵢ N(t; λᵢ, σ²)."""
    grid = np.asarray(grid, dtype=np.float64)
    total = np.zeros_like(grid)
    for run in runs:
        nodes, weights = np.asarray(run.nodes), np.asarray(run.weights)
        total += (weights[:, None] * np.exp(-0.5 * ((grid[None, :] - nodes[:, None]) / sigma) ** 2)).sum(0)
    return total / (len(runs) * sigma * np.sqrt(2 * np.pi))
