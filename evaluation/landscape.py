"""Weight-space computations on a detector's torch module, as GradVis does them (seeds.md §10): directions, the
loss surface's logits on a grid, and Hessian-vector products. They run where the module is: inside the scorer
child for an upload, in process for the zoo. Labels never enter here; a loss arrives as per-image coefficients.

- Parameters: the tensors whose name contains "weight" or "bias" (GradVis), so BatchNorm's running statistics
  are left alone.
- Random directions: i.i.d. N(0, 1) per parameter from a seeded generator, normalised layer-wise as GradVis does
  (each tensor's slice scaled to the tensor's Frobenius norm), or filter-wise as Li et al. (2018) do (each
  output filter's slice scaled to that filter's norm; 1-D tensors, biases and norms, set to zero).
- The grid: logits at θ + x·d₁ + y·d₂ for each (x, y), x-major, the weights moved in place (see grid_logits).
- The Hessian of L(θ) = Σᵢ ℓ(zᵢ(θ)) times v, given ℓ'(zᵢ) and ℓ''(zᵢ) per image: Σᵢ ℓ''ᵢ (∇zᵢ·v) ∇zᵢ (the
  Gauss-Newton part) + ∇²(Σᵢ ℓ'ᵢ zᵢ) v (Pearlmutter's double backward), which is the loss's exact HVP.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

LAYER, FILTER = "layer", "filter"
NORMALISATIONS = (LAYER, FILTER)

Logits = Callable[[torch.Tensor], torch.Tensor]  # the module's output -> one logit per image


def named_weights(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(name, p) for name, p in module.named_parameters() if "weight" in name or "bias" in name]


def weight_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for _, p in named_weights(module))


def _normalised(direction: torch.Tensor, weight: torch.Tensor, normalisation: str) -> torch.Tensor:
    if normalisation == LAYER:
        return direction * (weight.norm() / direction.norm().clamp_min(1e-12))
    if weight.ndim <= 1:
        return torch.zeros_like(direction)
    d, w = direction.flatten(1), weight.flatten(1)
    return (d * (w.norm(dim=1, keepdim=True) / d.norm(dim=1, keepdim=True).clamp_min(1e-12))).reshape_as(weight)


def random_directions(module: torch.nn.Module, seed: int, normalisation: str = LAYER) -> list[list[torch.Tensor]]:
    """Two directions, one tensor per weight of ``named_weights``, drawn on the CPU (the same on any device)."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}; choose one of {', '.join(NORMALISATIONS)}")
    generator = torch.Generator().manual_seed(seed)
    weights = [p.detach() for _, p in named_weights(module)]
    return [[_normalised(torch.randn(w.shape, generator=generator, dtype=torch.float32).to(w.device), w, normalisation)
             for w in weights] for _ in range(2)]


def grid_logits(module: torch.nn.Module, logits_of: Logits, images: torch.Tensor, directions: list[list[torch.Tensor]],
                points: Sequence[tuple[float, float]]) -> torch.Tensor:
    """Each grid point's logits for ``images``: (len(points), N), float64.

    The weights are moved in place with the optimisers' fused multi-tensor kernels (``_foreach``): at a new x,
    θ + x·d₁ + y·d₂ (three passes over the weights); along the same x, one axpy of (y − y_prev)·d₂, so a point
    costs little more than its forward pass (perf/landscape_grid.py). That works for TorchScript, which cannot
    be called statelessly, and beat ``functional_call`` under ``vmap`` on a CPU by 2× as well. The weights are
    restored exactly afterwards."""
    weights = [p for _, p in named_weights(module)]
    centre = [w.detach().clone() for w in weights]
    rows, at = [], None
    try:
        with torch.no_grad():
            for x, y in points:
                if at is None or x != at[0]:
                    torch._foreach_copy_(weights, centre)
                    torch._foreach_add_(weights, directions[0], alpha=x)
                    torch._foreach_add_(weights, directions[1], alpha=y)
                else:
                    torch._foreach_add_(weights, directions[1], alpha=y - at[1])
                at = (x, y)
                rows.append(logits_of(module(images)).double())
    finally:
        with torch.no_grad():
            torch._foreach_copy_(weights, centre)
    return torch.stack(rows)


def hessian_vector(module: torch.nn.Module, logits_of: Logits, images: torch.Tensor, first: torch.Tensor,
                   second: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """H v for the loss whose per-image derivatives at the current logits are ``first`` (ℓ') and ``second``
    (ℓ''); ``vector`` is flat over ``named_weights`` in order. Float32 on the module's device, flat."""
    weights = [p for _, p in named_weights(module)]
    pieces = list(torch.split(vector.to(weights[0].device, torch.float32), [w.numel() for w in weights]))
    v = [piece.reshape(w.shape) for piece, w in zip(pieces, weights, strict=True)]
    with torch.enable_grad():
        z = logits_of(module(images))
        gradient = torch.autograd.grad((first * z).sum(), weights, create_graph=True)
        curvature = torch.autograd.grad(sum((g * u).sum() for g, u in zip(gradient, v, strict=True)), weights,
                                        retain_graph=True, allow_unused=True)
        # J v per image by the double-backward trick: d/dt of z(θ) along v, via the gradient of <Jᵀ s, v> in s.
        s = torch.zeros_like(z, requires_grad=True)
        jt_s = torch.autograd.grad(z, weights, grad_outputs=s, create_graph=True)
        (jv,) = torch.autograd.grad(sum((g * u).sum() for g, u in zip(jt_s, v, strict=True)), s)
        gauss_newton = torch.autograd.grad(z, weights, grad_outputs=(second * jv).detach(), allow_unused=True)
    return torch.cat([(c if c is not None else torch.zeros_like(w)).reshape(-1)
                      + (g if g is not None else torch.zeros_like(w)).reshape(-1)
                      for c, g, w in zip(curvature, gauss_newton, weights, strict=True)]).detach()


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).double().cpu() for t in tensors])


def _unflat(vector: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    pieces = torch.split(vector, [t.numel() for t in like])
    return [p.reshape(t.shape).to(t.dtype) for p, t in zip(pieces, like, strict=True)]


def pca_directions(module: torch.nn.Module, checkpoints: Sequence[Sequence[torch.Tensor]]
                   ) -> tuple[list[list[torch.Tensor]], list[float]]:
    """GradVis's PCA directions of a training trajectory: the rows θᵢ − θ_T (each checkpoint of ``named_weights``
    minus the module's own, final, weights), PCA with the parameters as samples (``sklearn.PCA(2).fit_transform``
    of the transposed matrix: its two score columns are the directions), then normalised layer-wise like the
    random ones. Returns the directions and the two explained-variance ratios."""
    from sklearn.decomposition import PCA

    final = [p.detach() for _, p in named_weights(module)]
    differences = torch.stack([_flat(c) - _flat(final) for c in checkpoints]).numpy()
    pca = PCA(n_components=2)
    scores = pca.fit_transform(differences.T)
    directions = [[_normalised(d, w.float(), LAYER) for d, w in zip(_unflat(torch.from_numpy(scores[:, k]), final),
                                                                    final, strict=True)] for k in range(2)]
    return directions, [float(v) for v in pca.explained_variance_ratio_]


def project(module: torch.nn.Module, checkpoints: Sequence[Sequence[torch.Tensor]],
            directions: list[list[torch.Tensor]]) -> list[tuple[float, float]]:
    """Each checkpoint's (α, β): least squares of θᵢ − θ_T on [d₁ d₂] (``np.linalg.lstsq``), as GradVis does."""
    final = _flat([p for _, p in named_weights(module)])
    basis = torch.stack([_flat(directions[0]), _flat(directions[1])], dim=1).numpy()
    return [tuple(float(c) for c in np.linalg.lstsq(basis, (_flat(ck) - final).numpy(), rcond=None)[0])
            for ck in checkpoints]


def trajectory_axis(coefficients: Sequence[float], points: int, margin: float = 0.5) -> list[float]:
    """GradVis's range around a projected trajectory: [min − margin·span, max + margin·span]."""
    low, high = min(coefficients), max(coefficients)
    span = (high - low) or 1.0
    return np.linspace(low - margin * span, high + margin * span, points).tolist()
