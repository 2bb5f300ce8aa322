"""A JPEG's encoding traits: the quality factor of its luminance and chroma tables, and its chroma subsampling.

GenImage's real images are ImageNet JPEGs (mostly quality 96 and 75 among others) while its generated images
are PNGs, so the format and the quality are a shortcut a detector can learn. The manifest records the estimated
quality so that bias can be measured and removed (the "Fake or JPEG?" debiasing recipe).

The estimate follows that paper's code (compute_qf.py): compare the file's luminance table with the IJG
standard table scaled for q = 100, 99, ... and keep the closest, stopping as soon as the distance grows.
The chroma quality is the same search on the chroma table against the IJG chroma table (Annex K, Table K.2).

Chroma subsampling is a shortcut as well: ImageNet JPEGs are mostly 4:2:0, a lossless PNG keeps full chroma,
and an encoder at quality >= 90 may keep 4:4:4. ``jpeg_traits`` is the one reader every manifest row builder
uses, so all manifests describe a JPEG the same way.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, JpegImagePlugin

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
# ITU-T T.81 Annex K, Table K.2: the standard chrominance quantisation table, in natural order.
_ANNEX_K_CHROMA = np.array(
    [[17, 18, 24, 47, 99, 99, 99, 99], [18, 21, 26, 66, 99, 99, 99, 99], [24, 26, 56, 99, 99, 99, 99, 99],
     [47, 66, 99, 99, 99, 99, 99, 99]] + [[99] * 8] * 4,
    dtype=np.int64,
)
# Pillow's JpegImagePlugin.get_sampling codes, named as Pillow's ``subsampling`` save option names them.
_SUBSAMPLING_NAMES = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def _ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    if not 1 <= quality <= 100:
        raise ValueError(f"the JPEG quality must be from 1 to 100, not {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


def ijg_luma_table(quality: int) -> np.ndarray:
    """The 8x8 luminance table libjpeg writes for ``quality`` (1-100), in natural order.

    Same arithmetic as libjpeg's jpeg_quality_scaling + jpeg_add_quant_table with force_baseline, which
    is what Pillow (and most encoders built on libjpeg) use: integer division, then clipping to 1..255.
    """
    return _ijg_table(_ANNEX_K_LUMA, quality)


def ijg_chroma_table(quality: int) -> np.ndarray:
    """The 8x8 chrominance table libjpeg writes for ``quality`` (1-100), in natural order (same arithmetic)."""
    return _ijg_table(_ANNEX_K_CHROMA, quality)


def _table(image: Image.Image, index: int) -> np.ndarray | None:
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables or index not in tables:
        return None
    values = np.asarray(list(tables[index]), dtype=np.int64)
    if values.size != 64:
        return None
    # Pillow >= 8.3 reorders each DQT table from the file's zigzag order to natural order while parsing
    # (JpegImagePlugin.DQT indexes the data with zigzag_index), so this is comparable to Annex K as is.
    return values.reshape(8, 8)


def _chroma_table(image: Image.Image) -> np.ndarray | None:
    """The table the Cb component is quantised with (table 1 in every libjpeg file); None without chroma."""
    layers = getattr(image, "layer", None) or []
    if len(layers) < 3:
        return None
    return _table(image, layers[1][3])


def _closest_quality(table: np.ndarray, reference: Callable[[int], np.ndarray]) -> int:
    """Search q = 100 down to 1, stopping at the first rise of the MSE to ``reference(q)``.

    The distance to a libjpeg table is minimal at the saved quality and grows on both sides, so the search
    is usually short. Ties keep the higher quality (the first one seen), and a flat stretch does not stop it.
    """
    def mse(quality: int) -> float:
        return float(np.mean((table - reference(quality)) ** 2))

    best_q, best_mse = 100, mse(100)
    previous = best_mse
    for quality in range(99, 0, -1):
        distance = mse(quality)
        if distance > previous:
            break
        if distance < best_mse:
            best_q, best_mse = quality, distance
        previous = distance
    return best_q


def estimate_jpeg_quality(image: Image.Image) -> int | None:
    """The IJG quality whose luminance table is closest (MSE) to the image's; None if it is not a JPEG."""
    table = _table(image, 0)
    return None if table is None else _closest_quality(table, ijg_luma_table)


def estimate_chroma_quality(image: Image.Image) -> int | None:
    """The IJG quality whose chroma table is closest (MSE) to the image's; None without a chroma table."""
    table = _chroma_table(image)
    return None if table is None else _closest_quality(table, ijg_chroma_table)


def chroma_subsampling(image: Image.Image) -> str | None:
    """"4:4:4", "4:2:2" or "4:2:0" as Pillow names them; another layout as its components' sampling factors
    ("1x1" for greyscale, "4x1,1x1,1x1" for 4:1:1); None if the image is not a JPEG."""
    if image.format != "JPEG":
        return None
    code = JpegImagePlugin.get_sampling(image)
    if code in _SUBSAMPLING_NAMES:
        return _SUBSAMPLING_NAMES[code]
    return ",".join(f"{h}x{v}" for _, h, v, _ in getattr(image, "layer", [])) or "unknown"


def jpeg_traits(image: Image.Image) -> tuple[int | None, str | None, int | None]:
    """(luma quality, chroma subsampling, chroma quality) of an opened image; all None for a non-JPEG."""
    return estimate_jpeg_quality(image), chroma_subsampling(image), estimate_chroma_quality(image)
