"""Perturbations of the robustness protocols, applied to a decoded image before it is resized to the input size.

A condition is named ``jpeg-<quality>`` (re-encode in memory with Pillow's defaults, 4:2:0 chroma subsampling,
as the Unbiased GenImage code does) or ``scale-<factor>`` (downscale by the factor with an antialiased
bilinear filter; the pipeline then resizes to the detector's input size, so detail is lost, not the size).
The ``wild`` protocol's conditions (``chain-s<seed>``, ``sim-…``) are chains of real-world distortions
(evaluation.wild) that depend on the image's id too. Real and generated images get the same perturbation.
"""
from __future__ import annotations

from PIL import Image

from evaluation.errors import UserFault
from evaluation.wild import apply_chain, condition_chain, encode, is_wild_condition


def jpeg_condition(quality: int) -> str:
    return f"jpeg-{int(quality)}"


def scale_condition(factor: float) -> str:
    return f"scale-{float(factor):g}"


def jpeg_reencode(image: Image.Image, quality: int) -> Image.Image:
    """The image JPEG-encoded in memory at ``quality`` with Pillow's defaults (4:2:0) and decoded again, as RGB."""
    return encode(image.convert("RGB"), "JPEG", quality=quality)


def _scale(image: Image.Image, factor: float) -> Image.Image:
    if factor == 1:
        return image
    width, height = image.size
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)


def perturb(image: Image.Image, condition: str, image_id: str = "") -> Image.Image:
    """``image`` under ``condition``; "" is the clean image itself. ``image_id`` is the file's sha256 (the
    manifest's), which a wild condition draws the image's chain from."""
    if not condition:
        return image
    if is_wild_condition(condition):
        if not image_id:  # every image would get the same chain
            raise UserFault(f"the wild condition {condition!r} needs the image's id (its file's sha256)")
        return apply_chain(image, condition_chain(condition, image_id))
    kind, _, value = condition.partition("-")
    try:
        if kind == "jpeg" and 1 <= int(value) <= 100:
            return jpeg_reencode(image, int(value))
        if kind == "scale" and 0 < float(value) <= 1:
            return _scale(image, float(value))
    except ValueError:
        pass
    raise UserFault(f"unknown perturbation {condition!r}: use jpeg-<quality 1..100>, scale-<factor in (0, 1]> "
                    "or a wild condition (chain-s<seed>, sim-…)")
