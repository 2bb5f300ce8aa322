"""A dataset image's pixels as 8-bit RGB, decoded the one way every reader and builder does it (no torch here).

Pillow's ``convert("RGB")`` is right for the modes it opens except two:

* 16-bit greyscale (``I;16``, ``I;16B``…) is clipped to 255 instead of scaled, which turns a 16-bit PNG white.
  16-bit RGB PNGs already arrive as 8-bit RGB with the high byte of each sample, so greyscale gets the same: the
  high byte (``value >> 8``).
* A palette image whose transparency is a table of alpha bytes converts with a warning on every image; it goes
  through RGBA instead, which gives the same colours.

Transparency is dropped everywhere (palette, ``LA``, ``RGBA``): a detector sees the colours the file stores. CMYK
uses Pillow's conversion, R = (255 − C)(255 − K) / 255 and likewise for G and B.

Images of more than ``MAX_IMAGE_PIXELS`` pixels are refused from their header, before a pixel is decoded: Pillow
only warns between its limit and twice its limit, and a 10,000 × 10,000 image would take 300 MB as RGB.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from evaluation.errors import DatasetError

MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default decompression-bomb limit (Image.MAX_IMAGE_PIXELS)
_SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N")


def check_pixel_count(image: Image.Image) -> None:
    """DatasetError, in plain words, when the opened (not yet decoded) ``image`` has too many pixels."""
    pixels = image.width * image.height
    if pixels > MAX_IMAGE_PIXELS:
        raise DatasetError(f"the image is {image.width}×{image.height} = {pixels:,} pixels, more than the "
                           f"{MAX_IMAGE_PIXELS:,} Spectra decodes (a guard against decompression bombs)")


def to_rgb(image: Image.Image) -> Image.Image:
    """The image as 8-bit RGB (module docstring: 16-bit greyscale scaled, transparency dropped)."""
    if image.mode in _SIXTEEN_BIT_GREY:
        high_bytes = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(high_bytes, "L").convert("RGB")
    if image.mode == "P" and isinstance(image.info.get("transparency"), bytes):
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")
