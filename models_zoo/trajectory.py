"""A zoo model's loss landscape along its own training trajectory (GradVis's default mode, seeds.md §10.2): a small
CNN trained with checkpoints, the PCA directions of its checkpoints, the loss on a grid around the final weights,
and the trajectory projected onto the plane by least squares with its loss at each projected point.

Trusted code on the zoo's own model (no sandbox needed). The grid is GradVis's: [min − 0.5·span, max + 0.5·span]
of the projected coefficients on each axis.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluation.landscape import grid_logits, named_weights, pca_directions, project, trajectory_axis
from evaluation.protocols.base import sample_positions
from evaluation.protocols.landscape_run import mean_bce
from models_zoo.indicator_study import StudyCnn, load_split
from models_zoo.registry import register_model


def train_with_checkpoints(root: Path, *, steps: int, every: int, seed: int = 0) -> tuple[StudyCnn, list[list[torch.Tensor]]]:
    """Adam (lr 1e-3, batch 64) on the train split; a copy of the weights every ``every`` steps (the last is the
    final model itself, so it is not among the checkpoints)."""
    train = load_split(root, "train")
    images, labels = train.images[0], torch.from_numpy(train.labels).float()
    torch.manual_seed(seed)
    model = StudyCnn()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    checkpoints = []
    for step in range(steps):
        if step % every == 0:
            checkpoints.append([p.detach().clone() for _, p in named_weights(model)])
        pick = torch.randint(0, len(labels), (64,), generator=g)
        loss = nn.functional.binary_cross_entropy_with_logits(model(images[pick]), labels[pick])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval(), checkpoints


@register_model("landscape")
def trajectory_landscape(root: Path, *, steps: int = 300, every: int = 25, grid: int = 21, images: int = 256,
                         seed: int = 0) -> dict[str, Any]:
    model, checkpoints = train_with_checkpoints(root, steps=steps, every=every, seed=seed)
    test = load_split(root, "test")
    keep = list(sample_positions(len(test.labels), images))
    batch, labels = test.images[0][keep], test.labels[keep].astype(np.float64)
    directions, variance = pca_directions(model, checkpoints)
    path = project(model, checkpoints, directions)
    xs = trajectory_axis([a for a, _ in path], grid)
    ys = trajectory_axis([b for _, b in path], grid)
    logit = lambda output: output.reshape(-1)  # noqa: E731
    surface = grid_logits(model, logit, batch, directions, [(x, y) for x in xs for y in ys]).numpy()
    heights = grid_logits(model, logit, batch, directions, path).numpy()
    return {"xs": xs, "ys": ys, "loss": mean_bce(surface, labels).tolist(),
            "path": [list(p) for p in path], "path_loss": mean_bce(heights, labels).tolist(),
            "explained_variance": variance, "steps": steps, "every": every, "images": len(keep), "seed": seed}
