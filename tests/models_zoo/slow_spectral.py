"""The reference's radialProfile.py logic, per image in numpy: the slow, obvious version the tests compare with."""
from __future__ import annotations

import numpy as np


def slow_profile(gray: np.ndarray) -> np.ndarray:
    spectrum = np.fft.fftshift(np.fft.fft2(gray))
    spectrum += 1e-8
    magnitude = 20 * np.log(np.abs(spectrum))
    y, x = np.indices(magnitude.shape)
    center = np.array([(x.max() - x.min()) / 2.0, (y.max() - y.min()) / 2.0])
    r = np.hypot(x - center[0], y - center[1])
    ind = np.argsort(r.flat)
    r_sorted, i_sorted = r.flat[ind], magnitude.flat[ind]
    r_int = r_sorted.astype(int)
    rind = np.where(r_int[1:] - r_int[:-1])[0]
    nr = rind[1:] - rind[:-1]
    csim = np.cumsum(i_sorted, dtype=float)
    return (csim[rind[1:]] - csim[rind[:-1]]) / nr


def obvious_profile(gray: np.ndarray) -> np.ndarray:
    """The same, as one would write it first: one boolean mask per ring, mean inside it."""
    magnitude = 20 * np.log(np.abs(np.fft.fftshift(np.fft.fft2(gray)) + 1e-8))
    height, width = gray.shape
    y, x = np.indices(gray.shape)
    ring = np.floor(np.hypot(x - (width - 1) / 2, y - (height - 1) / 2)).astype(int)
    return np.array([magnitude[ring == r].mean() for r in range(1, ring.max())])
