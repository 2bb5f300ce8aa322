"""Spectral profiles: the project's batched float64 path over the authors' algorithm run per image (goal >= 20x).

The reference is the authors' Faces-HQ notebook loop at its natural speed, written out below: numpy ``fft2``,
``fftshift``, +1e-8, 20·ln|·|, then radialProfile.py's azimuthal average (centre ((W−1)/2, (H−1)/2), integer
radii, an argsort of the radii, sorted cumulative sums, first and last bins dropped), one image at a time. Both
sides get the same 8-bit grey images in the same run; every timing is the fastest of ``--repeats`` rounds, the
candidates interleaved within a round so that load from other processes hits them alike.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from _common import report

from models_zoo.spectral import EPS, RadialProfile, profiles


def authors_profile(gray: np.ndarray) -> np.ndarray:
    """One image's profile as the notebook computes it (the algorithm of radialProfile.azimuthalAverage)."""
    spectrum = np.fft.fftshift(np.fft.fft2(gray))
    spectrum += EPS
    magnitude = 20 * np.log(np.abs(spectrum))
    rows, columns = np.indices(magnitude.shape)
    centre_x, centre_y = (columns.max() - columns.min()) / 2, (rows.max() - rows.min()) / 2
    radius = np.hypot(columns - centre_x, rows - centre_y)
    order = np.argsort(radius.flat)
    ring = radius.flat[order].astype(int)  # bin width 1
    last_of_ring = np.where(ring[1:] - ring[:-1])[0]  # each ring but the outermost ends here
    running = np.cumsum(magnitude.flat[order], dtype=float)
    sums = running[last_of_ring[1:]] - running[last_of_ring[:-1]]  # rings 1 … second-outermost
    return sums / (last_of_ring[1:] - last_of_ring[:-1])


def fastest(candidates: dict[str, Callable[[], np.ndarray]], repeats: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Seconds of each candidate's fastest round, and its output."""
    seconds = dict.fromkeys(candidates, float("inf"))
    outputs = {}
    for _ in range(repeats):
        for name, work in candidates.items():
            started = time.perf_counter()
            outputs[name] = work()
            seconds[name] = min(seconds[name], time.perf_counter() - started)
    return seconds, outputs


def compare(size: int, count: int, repeats: int) -> None:
    gray = np.random.default_rng(size).integers(0, 256, (count, size, size), dtype=np.uint8)
    batch = torch.from_numpy(gray)
    modules = {dtype: RadialProfile(size, size, dtype=dtype) for dtype in (torch.float64, torch.float32)}
    profiles(gray[:2]), [module(batch[:2]) for module in modules.values()]  # warm-up: rings, FFT plans, threads
    seconds, outputs = fastest({
        "authors": lambda: np.stack([authors_profile(image) for image in gray]),
        "profiles": lambda: profiles(gray),
        "float64": lambda: modules[torch.float64](batch).numpy(),
        "float32": lambda: modules[torch.float32](batch).numpy(),
    }, repeats)
    difference = {name: float(np.abs(out / outputs["authors"] - 1).max()) for name, out in outputs.items()}
    per_image = {name: 1e3 * s / count for name, s in seconds.items()}
    print(f"{count} images of {size}×{size} px, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}; ms per image: authors {per_image['authors']:.2f}, profiles "
          f"{per_image['profiles']:.3f}, RadialProfile float64 {per_image['float64']:.3f}, float32 {per_image['float32']:.3f}")
    report(f"{size} px: batched float64 profiles (models_zoo.spectral.profiles) / the authors' per-image algorithm",
           seconds["authors"] / seconds["profiles"], ">= 20", f"max relative difference {difference['profiles']:.1e}")
    report(f"{size} px: the detector's RadialProfile (torch, float64) / the authors'",
           seconds["authors"] / seconds["float64"], "none set", f"max relative difference {difference['float64']:.1e}")
    report(f"{size} px: RadialProfile in float32 / the authors'", seconds["authors"] / seconds["float32"], "none set",
           f"max relative difference {difference['float32']:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs="+", default=[256, 1024], help="image sides (default 256 1024)")
    parser.add_argument("--images", type=int, default=32, help="images per size (default 32)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the fastest counts (default 5)")
    args = parser.parse_args()
    for size in args.size:
        compare(size, args.images, args.repeats)


if __name__ == "__main__":
    main()
