"""Real-world distortions for the ``wild`` protocol: a registry of kinds, seeded chains of them, sharing presets.

Each kind is a pair of functions: ``sample(rng)`` draws its parameters and ``apply(image, params)`` applies them
to an RGB image. Parameters never depend on the image (a crop is drawn as fractions of the size), so an image's
chain is a function of its id and the seed alone: ``chain_for(image_id, seed)`` gives the same chain on every
worker, in every shard, and on the platform, which lists it without touching pixels. The draws come from SHA-256
in counter mode (``ChainRandom``), not from numpy's generators, whose streams may change between numpy versions:
the platform and the workers may run different ones. An image's id is the sha256
of its file, as the manifest records it, not its path: a path can name the generator, and a chain drawn from it
could then be matched back to guessed paths, telling a hidden split's labels. A chain has 1–5 distinct
kinds in a random order. Noise draws its pixels from a seed that is itself one of the parameters.

The presets imitate what sharing platforms are reported to do to an upload (cap the long side, re-encode as
JPEG with 4:2:0 chroma), with the values the NTIRE 2026 "in the wild" discussion and the issue that asked for them
give as examples. They are simulations: no platform was measured. Numpy and Pillow only (no torch), since the
platform imports this module to describe chains.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from scipy import ndimage

from evaluation.errors import UserFault

Params = dict[str, Any]
CHAIN_LENGTHS = (1, 5)  # a chain has between 1 and 5 kinds, inclusive
CHAIN_PREFIX = "chain-s"  # condition "chain-s<seed>": every image under its own chain
PRESET_PREFIX = "sim-"


@dataclass(frozen=True)
class Distortion:
    name: str
    description: str  # what it does and its parameter ranges, shown on the protocol's page
    sample: Callable[[Random], Params]
    apply: Callable[[Image.Image, Params], Image.Image]


_KINDS: dict[str, Distortion] = {}


def distortion(name: str, description: str, sample: Callable[[Random], Params]
               ) -> Callable[[Callable[[Image.Image, Params], Image.Image]], Callable[[Image.Image, Params], Image.Image]]:
    """Register ``apply`` as the kind ``name`` whose parameters ``sample`` draws."""
    def register(apply: Callable[[Image.Image, Params], Image.Image]) -> Callable[[Image.Image, Params], Image.Image]:
        if name in _KINDS:
            raise ValueError(f"distortion {name!r} is registered twice")
        _KINDS[name] = Distortion(name, description, sample, apply)
        return apply
    return register


def list_kinds() -> list[str]:
    return list(_KINDS)


def get_kind(name: str) -> Distortion:
    try:
        return _KINDS[name]
    except KeyError:
        raise UserFault(f"unknown distortion {name!r}; the kinds are: {', '.join(_KINDS)}") from None


# -- helpers ------------------------------------------------------------------------------------------------------

def encode(image: Image.Image, fmt: str, **options: Any) -> Image.Image:
    """``image`` saved in memory as ``fmt`` with Pillow's ``options`` and decoded again, as RGB."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


class ChainRandom:
    """Uniform draws from SHA-256(key ‖ counter): the same numbers on every machine, numpy version and language.
    The methods a kind's ``sample`` uses, named as numpy's Generator names them."""

    def __init__(self, key: bytes) -> None:
        self._key, self._counter = key, 0

    def _bits(self) -> int:
        digest = hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
        self._counter += 1
        return int.from_bytes(digest[:8], "big")

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * ((self._bits() >> 11) / 2.0**53)

    def integers(self, low: int, high: int, size: int | None = None) -> Any:
        """An integer in [low, high) (a list of ``size`` of them); the modulo bias of 64 bits is below 2⁻³⁰ here."""
        if size is not None:
            return [self.integers(low, high) for _ in range(size)]
        return low + self._bits() % (high - low)

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.integers(0, len(options))]

    def permutation(self, n: int) -> list[int]:
        order = list(range(n))
        for i in range(n - 1, 0, -1):  # Fisher–Yates
            j = self.integers(0, i + 1)
            order[i], order[j] = order[j], order[i]
        return order


Random = ChainRandom | np.random.Generator  # what ``sample`` accepts (tests also pass numpy's)


def _uniform(low: float, high: float, digits: int = 3) -> Callable[[Random], float]:
    return lambda rng: round(float(rng.uniform(low, high)), digits)


def _integer(low: int, high: int) -> Callable[[Random], int]:
    """An integer in [low, high], inclusive."""
    return lambda rng: int(rng.integers(low, high + 1))


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def _image(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "RGB")


def _crop_fraction(image: Image.Image, width_kept: float, height_kept: float, x: float, y: float) -> Image.Image:
    """The crop keeping those fractions of the width and height, its top-left corner at fractions x, y of the
    slack (0: left/top edge, 1: right/bottom edge)."""
    w, h = max(1, round(image.width * width_kept)), max(1, round(image.height * height_kept))
    left, top = round((image.width - w) * x), round((image.height - h) * y)
    return image.crop((left, top, left + w, top + h))


def long_side_limited(image: Image.Image, limit: int) -> Image.Image:
    """Downscaled (antialiased bicubic) so its long side is at most ``limit``; never upscaled, as platforms do."""
    long_side = max(image.size)
    if long_side <= limit:
        return image
    size = (max(1, round(image.width * limit / long_side)), max(1, round(image.height * limit / long_side)))
    return image.resize(size, Image.Resampling.BICUBIC)


# -- the kinds ----------------------------------------------------------------------------------------------------

@distortion("jpeg", "JPEG re-encoding, quality 30–95, 4:2:0 chroma", lambda rng: {"quality": _integer(30, 95)(rng)})
def _jpeg(image: Image.Image, p: Params) -> Image.Image:
    return encode(image, "JPEG", quality=p["quality"], subsampling="4:2:0")


@distortion("double-jpeg", "JPEG twice: quality 60–95, then 50–90",
            lambda rng: {"first": _integer(60, 95)(rng), "second": _integer(50, 90)(rng)})
def _double_jpeg(image: Image.Image, p: Params) -> Image.Image:
    return _jpeg(_jpeg(image, {"quality": p["first"]}), {"quality": p["second"]})


@distortion("webp", "WebP re-encoding (lossy), quality 30–90", lambda rng: {"quality": _integer(30, 90)(rng)})
def _webp(image: Image.Image, p: Params) -> Image.Image:
    return encode(image, "WEBP", quality=p["quality"], method=4)


@distortion("down-up", "downscale by 0.4–0.9 (bilinear) and back up to the original size (bicubic)",
            lambda rng: {"factor": _uniform(0.4, 0.9)(rng)})
def _down_up(image: Image.Image, p: Params) -> Image.Image:
    small = (max(1, round(image.width * p["factor"])), max(1, round(image.height * p["factor"])))
    return image.resize(small, Image.Resampling.BILINEAR).resize(image.size, Image.Resampling.BICUBIC)


@distortion("long-side", "long side capped at 512, 720, 1080, 1280 or 2048 px (bicubic, never upscaled)",
            lambda rng: {"limit": int(rng.choice([512, 720, 1080, 1280, 2048]))})
def _long_side(image: Image.Image, p: Params) -> Image.Image:
    return long_side_limited(image, p["limit"])


@distortion("crop", "random crop keeping 60–95 % of each side, same aspect",
            lambda rng: {"kept": _uniform(0.6, 0.95)(rng), "x": _uniform(0, 1)(rng), "y": _uniform(0, 1)(rng)})
def _crop(image: Image.Image, p: Params) -> Image.Image:
    return _crop_fraction(image, p["kept"], p["kept"], p["x"], p["y"])


_ASPECTS = {"4:5": 4 / 5, "16:9": 16 / 9, "9:16": 9 / 16, "3:2": 3 / 2}


@distortion("aspect-crop", "the largest crop of aspect 4:5, 16:9, 9:16 or 3:2, at a random position",
            lambda rng: {"aspect": str(rng.choice(list(_ASPECTS))), "x": _uniform(0, 1)(rng), "y": _uniform(0, 1)(rng)})
def _aspect_crop(image: Image.Image, p: Params) -> Image.Image:
    ratio, current = _ASPECTS[p["aspect"]], image.width / image.height
    width_kept, height_kept = (ratio / current, 1.0) if ratio < current else (1.0, current / ratio)
    return _crop_fraction(image, width_kept, height_kept, p["x"], p["y"])


@distortion("pad", "a border of 2–15 % of the long side, black, white or grey",
            lambda rng: {"fraction": _uniform(0.02, 0.15)(rng), "fill": int(rng.choice([0, 128, 255]))})
def _pad(image: Image.Image, p: Params) -> Image.Image:
    border = max(1, round(max(image.size) * p["fraction"]))
    canvas = Image.new("RGB", (image.width + 2 * border, image.height + 2 * border), (p["fill"],) * 3)
    canvas.paste(image, (border, border))
    return canvas


@distortion("gaussian-blur", "Gaussian blur, σ 0.5–2 px", lambda rng: {"sigma": _uniform(0.5, 2.0)(rng)})
def _gaussian_blur(image: Image.Image, p: Params) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(p["sigma"]))


@distortion("motion-blur", "linear motion blur over 3–9 px at 0°, 45°, 90° or 135°",
            lambda rng: {"length": int(rng.choice([3, 5, 7, 9])), "angle": int(rng.choice([0, 45, 90, 135]))})
def _motion_blur(image: Image.Image, p: Params) -> Image.Image:
    return _image(np.stack([ndimage.convolve(channel, motion_kernel(p["length"], p["angle"]), mode="nearest")
                            for channel in np.moveaxis(_pixels(image), 2, 0)], axis=2))


def motion_kernel(length: int, angle: int) -> np.ndarray:
    """A length×length kernel averaging the pixels on a centred line at ``angle`` degrees (0: horizontal)."""
    kernel, centre = np.zeros((length, length)), length // 2
    for t in range(-centre, centre + 1):
        dx, dy = {0: (t, 0), 45: (t, -t), 90: (0, t), 135: (t, t)}[angle]
        kernel[centre + dy, centre + dx] = 1.0
    return kernel / kernel.sum()


@distortion("sharpen", "sharpening (Pillow's ImageEnhance.Sharpness), factor 1.5–3",
            lambda rng: {"factor": _uniform(1.5, 3.0)(rng)})
def _sharpen(image: Image.Image, p: Params) -> Image.Image:
    return ImageEnhance.Sharpness(image).enhance(p["factor"])


def _noise_params(low: float, high: float, name: str) -> Callable[[Random], Params]:
    return lambda rng: {name: _uniform(low, high)(rng), "noise_seed": int(rng.integers(0, 2**31 - 1))}


@distortion("gaussian-noise", "additive Gaussian noise, σ 2–15 grey levels", _noise_params(2.0, 15.0, "sigma"))
def _gaussian_noise(image: Image.Image, p: Params) -> Image.Image:
    pixels = _pixels(image)
    return _image(pixels + np.random.default_rng(p["noise_seed"]).normal(0.0, p["sigma"], pixels.shape))


@distortion("poisson-noise", "Poisson (shot) noise, 10–100 photons at full white", _noise_params(10.0, 100.0, "peak"))
def _poisson_noise(image: Image.Image, p: Params) -> Image.Image:
    photons = _pixels(image) / 255.0 * p["peak"]
    return _image(np.random.default_rng(p["noise_seed"]).poisson(photons) / p["peak"] * 255.0)


@distortion("gamma", "gamma curve 255·(x/255)^γ, γ 0.7–1.5", lambda rng: {"gamma": _uniform(0.7, 1.5)(rng)})
def _gamma(image: Image.Image, p: Params) -> Image.Image:
    lookup = [min(255, max(0, round(255.0 * (v / 255.0) ** p["gamma"]))) for v in range(256)]
    return image.point(lookup * 3)


@distortion("contrast", "contrast (ImageEnhance.Contrast), factor 0.6–1.5", lambda rng: {"factor": _uniform(0.6, 1.5)(rng)})
def _contrast(image: Image.Image, p: Params) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(p["factor"])


@distortion("brightness", "brightness (ImageEnhance.Brightness), factor 0.7–1.3",
            lambda rng: {"factor": _uniform(0.7, 1.3)(rng)})
def _brightness(image: Image.Image, p: Params) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(p["factor"])


@distortion("saturation", "saturation (ImageEnhance.Color), factor 0.5–1.5", lambda rng: {"factor": _uniform(0.5, 1.5)(rng)})
def _saturation(image: Image.Image, p: Params) -> Image.Image:
    return ImageEnhance.Color(image).enhance(p["factor"])


@distortion("rotate", "rotation by −8° to 8° about the centre (bilinear, black corners, same size)",
            lambda rng: {"degrees": _uniform(-8.0, 8.0, 2)(rng)})
def _rotate(image: Image.Image, p: Params) -> Image.Image:
    return image.rotate(p["degrees"], resample=Image.Resampling.BILINEAR)


@distortion("flip", "horizontal flip", lambda rng: {})
def _flip(image: Image.Image, p: Params) -> Image.Image:
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


@distortion("screenshot", "a screenshot: resize by 0.5–1 (bilinear), 64–256 colours (median cut), PNG",
            lambda rng: {"factor": _uniform(0.5, 1.0)(rng), "colours": int(rng.choice([64, 128, 256]))})
def _screenshot(image: Image.Image, p: Params) -> Image.Image:
    size = (max(1, round(image.width * p["factor"])), max(1, round(image.height * p["factor"])))
    quantised = image.resize(size, Image.Resampling.BILINEAR).quantize(p["colours"], method=Image.Quantize.MEDIANCUT,
                                                                        dither=Image.Dither.NONE)
    return encode(quantised, "PNG")


# -- chains and presets -------------------------------------------------------------------------------------------

Chain = list[tuple[str, Params]]  # (kind, parameters), applied in order


def chain_rng(image_id: str, seed: int) -> ChainRandom:
    """The draws an image's chain comes from, keyed by (seed, image id): no shared state, no numpy stream."""
    return ChainRandom(f"spectra-wild\0{int(seed)}\0{image_id}".encode())


def chain_for(image_id: str, seed: int, kinds: Sequence[str] | None = None) -> Chain:
    """The chain of 1–5 distinct kinds (of ``kinds``, default all) that image ``image_id`` gets under ``seed``."""
    names = list(kinds or _KINDS)
    rng = chain_rng(image_id, seed)
    length = int(rng.integers(CHAIN_LENGTHS[0], min(CHAIN_LENGTHS[1], len(names)) + 1))
    chosen = [names[i] for i in rng.permutation(len(names))[:length]]
    return [(name, get_kind(name).sample(rng)) for name in chosen]


def apply_chain(image: Image.Image, chain: Chain) -> Image.Image:
    for name, params in chain:
        image = get_kind(name).apply(image, params)
    return image


def describe_chain(chain: Chain) -> str:
    """``jpeg(quality=71) → flip()``: how pages and downloads show a chain."""
    return " → ".join(f"{name}({', '.join(f'{k}={v}' for k, v in params.items() if k != 'noise_seed')})"
                      for name, params in chain)


@dataclass(frozen=True)
class Preset:
    name: str
    chain: Chain
    based_on: str


PRESETS: Mapping[str, Preset] = {p.name: p for p in (
    Preset(f"{PRESET_PREFIX}share-2048-q85", [("long-side", {"limit": 2048}), ("jpeg", {"quality": 85})],
           "a photo-sharing upload kept large: long side capped at 2048 px, JPEG quality 85 with 4:2:0"),
    Preset(f"{PRESET_PREFIX}share-1080-q70", [("long-side", {"limit": 1080}), ("jpeg", {"quality": 70})],
           "a feed or messenger upload: long side capped at 1080 px, JPEG quality 70 with 4:2:0"),
    Preset(f"{PRESET_PREFIX}reshare-twice", [("long-side", {"limit": 1080}), ("jpeg", {"quality": 75}),
                                              ("crop", {"kept": 0.9, "x": 0.5, "y": 0.5}), ("jpeg", {"quality": 70})],
           "a re-shared image: capped at 1080 px and JPEG 75, cropped to 90 % by the next user, JPEG 70 again"),
    Preset(f"{PRESET_PREFIX}screenshot", [("screenshot", {"factor": 0.75, "colours": 256}), ("jpeg", {"quality": 80})],
           "a screenshot of the image sent on: shown at 75 %, 256 colours, PNG, then JPEG 80"),
)}


def chain_condition(seed: int) -> str:
    return f"{CHAIN_PREFIX}{int(seed)}"


def is_wild_condition(condition: str) -> bool:
    return condition.startswith((CHAIN_PREFIX, PRESET_PREFIX))


def condition_chain(condition: str, image_id: str) -> Chain:
    """The chain an image gets under a ``wild`` condition: its own seeded chain, or a preset's fixed one."""
    if condition.startswith(CHAIN_PREFIX):
        seed = condition.removeprefix(CHAIN_PREFIX)
        if seed.isascii() and seed.isdigit():  # str.isdigit alone admits '²' (int() fails) and '٣'
            return chain_for(image_id, int(seed))
    elif condition in PRESETS:
        return PRESETS[condition].chain
    raise UserFault(f"unknown wild condition {condition!r}: use {CHAIN_PREFIX}<seed> or one of {', '.join(PRESETS)}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evaluation.wild IMAGE [--seed N] [--out FILE]``: the chain an image file gets, and its result."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m evaluation.wild", description=main.__doc__)
    parser.add_argument("image", help="an image file of a dataset version (its sha256 is the image's id)")
    parser.add_argument("--seed", type=int, default=0, help="the wild protocol's seed (default 0)")
    parser.add_argument("--out", help="write the image after its chain here (PNG), before any resize")
    args = parser.parse_args(argv)
    try:
        with open(args.image, "rb") as handle:
            data = handle.read()
        chain = chain_for(hashlib.sha256(data).hexdigest(), args.seed)
        print(describe_chain(chain))
        if args.out:
            with Image.open(io.BytesIO(data)) as image:
                apply_chain(image.convert("RGB"), chain).save(args.out, format="PNG")
    except (OSError, UserFault) as error:
        print(f"error: {getattr(error, 'message', error)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
