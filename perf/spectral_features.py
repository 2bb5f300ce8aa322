"""Spectral profiles: the batched torch pipeline over the reference's per-image numpy loop (goal >= 20x at 256 px).

Both start from the same 8-bit gray images; the slow one is radialProfile.py's algorithm as the authors run it
(one FFT and one argsort per image), kept in tests/models_zoo/slow_spectral.py.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import ROOT, report, timed

from models_zoo.spectral import RadialProfile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--images", type=int, default=128)
    args = parser.parse_args()
    import sys

    sys.path.insert(0, str(ROOT))
    from tests.models_zoo.slow_spectral import obvious_profile, slow_profile

    gray = np.random.default_rng(0).integers(0, 256, (args.images, args.size, args.size)).astype(np.float64)
    batch = torch.from_numpy(gray)
    rates = {}
    for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        profile = RadialProfile(args.size, args.size, dtype=dtype)
        profile(batch[:2])  # warm-up
        rates[name] = args.images / timed(lambda profile=profile: [profile(chunk) for chunk in batch.split(64)], 3)
    obvious = args.images / timed(lambda: [obvious_profile(image) for image in gray], 3)
    authors = args.images / timed(lambda: [slow_profile(image) for image in gray], 3)
    print(f"{args.images} images of {args.size} px, images/s: batched float64 {rates['float64']:.0f}, float32 "
          f"{rates['float32']:.0f}; per image: obvious ring masks {obvious:.0f}, the authors' radialProfile {authors:.0f}")
    note = f"{torch.get_num_threads()} CPU threads: the FFT itself bounds both sides here; a GPU widens the gap"
    report("batched float64 / obvious per-image", rates["float64"] / obvious, ">= 20", note)
    report("batched float32 / obvious per-image", rates["float32"] / obvious, ">= 20", note)
    report("batched float64 / the authors' per-image radialProfile", rates["float64"] / authors, "none set")


if __name__ == "__main__":
    main()
