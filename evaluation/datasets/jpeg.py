"""Estimating the quality factor a JPEG was saved at, from its luminance quantisation table.

GenImage's real images are ImageNet JPEGs (mostly quality 96 and 75 among others) while its generated images
are PNGs, so the format and the quality are a shortcut a detector can learn. The manifest records the estimated
quality so that bias can be measured and removed (the "Fake or JPEG?" debiasing recipe).

The estimate follows that paper's code (compute_qf.py): compare the file's luminance table with the IJG
standard table scaled for q = 100, 99, ... and keep the closest, stopping as soon as the distance grows.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

# ITU-T T.81 Annex K, Table K.1: the standard luminance quantisation table, in natural (row-major) order.
_ANNEX_K_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)


def ijg_luma_table(quality: int) -> np.ndarray:
    """The 8x8 luminance table libjpeg writes for ``quality`` (1-100), in natural order.

    Same arithmetic as libjpeg's jpeg_quality_scaling + jpeg_add_quant_table with force_baseline, which
    is what Pillow (and most encoders built on libjpeg) use: integer division, then clipping to 1..255.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"the JPEG quality must be from 1 to 100, not {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_ANNEX_K_LUMA * scale + 50) // 100, 1, 255)


def _luma_table(image: Image.Image) -> np.ndarray | None:
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables or 0 not in tables:
        return None
    values = np.asarray(list(tables[0]), dtype=np.int64)
    if values.size != 64:
        return None
    # Pillow >= 8.3 reorders each DQT table from the file's zigzag order to natural order while parsing
    # (JpegImagePlugin.DQT indexes the data with zigzag_index), so this is comparable to Annex K as is.
    return values.reshape(8, 8)


def _mse(table: np.ndarray, quality: int) -> float:
    return float(np.mean((table - ijg_luma_table(quality)) ** 2))


def estimate_jpeg_quality(image: Image.Image) -> int | None:
    """The IJG quality whose luminance table is closest (MSE) to the image's; None if it is not a JPEG.

    Searches q = 100 down to 1 and stops at the first rise of the MSE: the distance to a libjpeg table
    is minimal at the saved quality and grows on both sides, so the search is usually short. Ties keep
    the higher quality (the first one seen), and a flat stretch does not stop the search.
    """
    table = _luma_table(image)
    if table is None:
        return None
    best_q, best_mse = 100, _mse(table, 100)
    previous = best_mse
    for quality in range(99, 0, -1):
        mse = _mse(table, quality)
        if mse > previous:
            break
        if mse < best_mse:
            best_q, best_mse = quality, mse
        previous = mse
    return best_q
