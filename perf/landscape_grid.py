"""(h) A loss-surface grid: its time ÷ (grid points × one batched forward), and GradVis's point-by-point loop ÷ it.

The reference is GradVis's own loop (toolbox/nn_model.py): per grid point, the parameters as a numpy dict, turned
into tensors and loaded with ``load_state_dict``, then one forward pass. Ours is ``evaluation.landscape``: the
weights moved in place with fused multi-tensor kernels, on a TorchScript module and on the same ``nn.Module``.
The batched alternative, ``torch.func.functional_call`` under ``vmap`` over chunks of grid points, is timed too
(written out here): it is what the library would otherwise use. A ResNet-18 (random weights), one batch.
"""
from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
import torchvision
from _common import report, timed

from evaluation.landscape import grid_logits, named_weights, random_directions


def _gradvis_loop(module: torch.nn.Module, images: torch.Tensor, directions: list[list[torch.Tensor]],
                  points: list[tuple[float, float]]) -> None:
    state = {k: v.numpy().copy() for k, v in module.state_dict().items()}
    names = [n for n, _ in named_weights(module)]
    d1 = {n: d.numpy() for n, d in zip(names, directions[0], strict=True)}
    d2 = {n: d.numpy() for n, d in zip(names, directions[1], strict=True)}
    with torch.no_grad():
        for x, y in points:
            moved = {k: (v + x * d1[k] + y * d2[k]) if k in d1 else v for k, v in state.items()}
            module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in moved.items()})
            module(images)
        module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})


def _vmap_grid(module: torch.nn.Module, images: torch.Tensor, directions: list[list[torch.Tensor]],
               points: list[tuple[float, float]], chunk: int = 8) -> torch.Tensor:
    from torch.func import functional_call, vmap

    names = [n for n, _ in named_weights(module)]
    centre = [p.detach() for _, p in named_weights(module)]
    rows = []
    with torch.no_grad():
        for start in range(0, len(points), chunk):
            at = torch.tensor(points[start:start + chunk])
            stacked = {n: c + at[:, 0].reshape(-1, *[1] * c.ndim) * d1 + at[:, 1].reshape(-1, *[1] * c.ndim) * d2
                       for n, c, d1, d2 in zip(names, centre, *directions, strict=True)}
            rows.append(vmap(lambda p: functional_call(module, p, (images,)))(stacked))
    return torch.cat(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=32, help="the batch (default 32)")
    parser.add_argument("--grid", type=int, default=7, help="points per axis (default 7: 49 points)")
    args, _ = parser.parse_known_args()
    torch.manual_seed(0)
    module = torchvision.models.resnet18(num_classes=1).eval()
    scripted = torch.jit.script(copy.deepcopy(module)).eval()
    images = torch.rand(args.images, 3, args.size, args.size)
    axis = np.linspace(-1, 1, args.grid)
    points = [(float(x), float(y)) for x in axis for y in axis]
    directions = random_directions(module, seed=0)
    with torch.no_grad():  # the forwards alone, as many as the grid has points (warm: TorchScript optimises)
        scripted(images), scripted(images), module(images)
        forwards = timed(lambda: [scripted(images) for _ in points], repeats=2)
        eager_forwards = timed(lambda: [module(images) for _ in points], repeats=2)
    logits = lambda output: output.reshape(-1)  # noqa: E731
    in_place = timed(lambda: grid_logits(scripted, logits, images, directions, points), repeats=2)
    eager = timed(lambda: grid_logits(module, logits, images, directions, points), repeats=2)
    batched = timed(lambda: _vmap_grid(module, images, directions, points), repeats=2)
    reference = timed(lambda: _gradvis_loop(module, images, directions, points), repeats=2)
    n = len(points)
    report(f"TorchScript grid of {n} points / ({n} × one batched forward)", in_place / forwards, "<= 1.1")
    report(f"nn.Module grid / ({n} × one batched forward)", eager / eager_forwards, "<= 1.1")
    report("GradVis point-by-point loop (numpy dict + load_state_dict) / TorchScript grid", reference / in_place, "> 1")
    report("functional_call under vmap, 8 points a call / nn.Module grid", batched / eager, "> 1")


if __name__ == "__main__":
    main()
