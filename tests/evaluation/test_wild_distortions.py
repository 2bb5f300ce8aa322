"""The ``wild`` protocol's distortions, each checked against a computation made here (not by its own code again).

Codecs are compared with Pillow round trips done in the test, tone curves and enhancements with their closed forms,
geometry with numpy slices, the blur with scipy's Gaussian filter, the noise with its moments. Then the chains:
seeded per (image id, seed), plain JSON parameters, the same bytes in threads and in fresh processes.
"""
from __future__ import annotations

import copy
import io
import json
import math
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage import data

from evaluation import wild
from evaluation.errors import UserFault
from evaluation.perturbations import perturb

KINDS = ("jpeg", "double-jpeg", "webp", "down-up", "long-side", "crop", "aspect-crop", "pad", "gaussian-blur",
         "motion-blur", "sharpen", "gaussian-noise", "poisson-noise", "gamma", "contrast", "brightness", "saturation",
         "rotate", "flip", "screenshot")
SIZE_KEEPING = {"jpeg", "double-jpeg", "webp", "down-up", "gaussian-blur", "motion-blur", "sharpen", "gaussian-noise",
                "poisson-noise", "gamma", "contrast", "brightness", "saturation", "rotate", "flip"}
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, what Pillow's "L" conversion uses

# What each kind's description promises its parameters to be: (low, high) inclusive, or the allowed values.
RANGES: dict[str, dict[str, tuple[float, float] | set[Any]]] = {
    "jpeg": {"quality": (30, 95)},
    "double-jpeg": {"first": (60, 95), "second": (50, 90)},
    "webp": {"quality": (30, 90)},
    "down-up": {"factor": (0.4, 0.9)},
    "long-side": {"limit": {512, 720, 1080, 1280, 2048}},
    "crop": {"kept": (0.6, 0.95), "x": (0, 1), "y": (0, 1)},
    "aspect-crop": {"aspect": {"4:5", "16:9", "9:16", "3:2"}, "x": (0, 1), "y": (0, 1)},
    "pad": {"fraction": (0.02, 0.15), "fill": {0, 128, 255}},
    "gaussian-blur": {"sigma": (0.5, 2.0)},
    "motion-blur": {"length": {3, 5, 7, 9}, "angle": {0, 45, 90, 135}},
    "sharpen": {"factor": (1.5, 3.0)},
    "gaussian-noise": {"sigma": (2.0, 15.0), "noise_seed": (0, 2**31 - 1)},
    "poisson-noise": {"peak": (10.0, 100.0), "noise_seed": (0, 2**31 - 1)},
    "gamma": {"gamma": (0.7, 1.5)},
    "contrast": {"factor": (0.6, 1.5)},
    "brightness": {"factor": (0.7, 1.3)},
    "saturation": {"factor": (0.5, 1.5)},
    "rotate": {"degrees": (-8.0, 8.0)},
    "flip": {},
    "screenshot": {"factor": (0.5, 1.0), "colours": {64, 128, 256}},
}


# -- images and helpers -------------------------------------------------------------------------------------------

def noise_image(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """Uniform random RGB: every pixel independent, so any misplaced pixel shows."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def smooth_image(width: int = 64, height: int = 64, seed: int = 0) -> Image.Image:
    """Random noise smoothed (σ 3 px) and stretched to 20..235: textured but with no hard edges."""
    noise = np.random.default_rng(seed).normal(size=(height, width, 3))
    smooth = ndimage.gaussian_filter(noise, (3, 3, 0), mode="wrap")
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return Image.fromarray(np.rint(20 + 215 * smooth).astype(np.uint8), "RGB")


def flat_image(level: int, width: int = 96, height: int = 96) -> Image.Image:
    return Image.new("RGB", (width, height), (level,) * 3)


@cache
def _astronaut_bytes(size: int) -> bytes:
    return Image.fromarray(data.astronaut(), "RGB").resize((size, size), Image.Resampling.BICUBIC).tobytes()


def astronaut(size: int = 96) -> Image.Image:
    """skimage's astronaut photo (512×512) downscaled: a real photo with edges, skin, and flat areas."""
    return Image.frombytes("RGB", (size, size), _astronaut_bytes(size))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def apply(kind: str, image: Image.Image, **params: Any) -> Image.Image:
    out = wild.get_kind(kind).apply(image, params)
    assert out.mode == "RGB"
    return out


def round_trip(image: Image.Image, fmt: str, **options: Any) -> np.ndarray:
    """Pillow's own in-memory save and decode, written out here."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def luma(values: np.ndarray) -> np.ndarray:
    """The exact (unrounded) ITU-R 601-2 luma; Pillow's 'L' image is this rounded, in fixed point."""
    return values @ LUMA


def blend_tolerance(factor: float) -> float:
    """How far Pillow's ImageEnhance blend may be from the exact closed form.

    Pillow blends with the *integer* grey image (off by ≤ ½ from the exact luma, or its mean rounded) and truncates
    the result: the error is under 1 from truncation plus ½·|1 − factor| from the rounded grey it pivots on.
    """
    return 1.0 + 0.5 * abs(1.0 - factor) + 1e-6


def interior(values: np.ndarray, border: int) -> np.ndarray:
    return values[border:-border, border:-border]


def laplacian_variance(image: Image.Image) -> float:
    return float(ndimage.laplace(pixels(image) @ LUMA).var())


def centroid(values: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted (x, y) of a 2-D array, in Pillow's continuous coordinates (pixel centres at i + ½)."""
    ys, xs = np.mgrid[0:values.shape[0], 0:values.shape[1]] + 0.5
    return float((values * xs).sum() / values.sum()), float((values * ys).sum() / values.sum())


# -- the registry -------------------------------------------------------------------------------------------------

def test_the_twenty_kinds_are_registered_with_descriptions() -> None:
    assert sorted(wild.list_kinds()) == sorted(KINDS)
    for name in KINDS:
        kind = wild.get_kind(name)
        assert kind.name == name and kind.description


def test_an_unknown_kind_is_the_users_fault_and_the_message_lists_the_kinds() -> None:
    with pytest.raises(UserFault) as raised:
        wild.get_kind("jpg")
    assert "'jpg'" in raised.value.message
    assert all(name in raised.value.message for name in KINDS)
    with pytest.raises(UserFault):
        wild.apply_chain(astronaut(32), [("flip", {}), ("vignette", {})])


@pytest.mark.parametrize("name", KINDS)
def test_sampled_parameters_stay_in_the_described_ranges(name: str) -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        params = wild.get_kind(name).sample(rng)
        assert set(params) == set(RANGES[name])
        for key, allowed in RANGES[name].items():
            value = params[key]
            assert type(value) in (int, float, str)  # plain Python, never numpy scalars
            if isinstance(allowed, set):
                assert value in allowed
            else:
                assert allowed[0] <= value <= allowed[1]


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_gives_rgb_and_touches_neither_the_image_nor_its_parameters(name: str) -> None:
    image = astronaut(64)
    before = pixels(image).copy()
    params = wild.get_kind(name).sample(np.random.default_rng(7))
    kept = copy.deepcopy(params)
    out = wild.get_kind(name).apply(image, params)
    assert out.mode == "RGB"
    assert params == kept
    assert np.array_equal(pixels(image), before)
    if name in SIZE_KEEPING:
        assert out.size == image.size


# -- codecs -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("quality", [30, 62, 95])
def test_jpeg_is_pillows_round_trip_with_420_chroma(quality: int) -> None:
    image = astronaut()
    out = np.asarray(apply("jpeg", image, quality=quality))
    assert np.array_equal(out, round_trip(image, "JPEG", quality=quality, subsampling="4:2:0"))
    assert not np.array_equal(out, round_trip(image, "JPEG", quality=quality, subsampling="4:4:4"))
    assert not np.array_equal(out, np.asarray(image))


@pytest.mark.parametrize(("first", "second"), [(60, 50), (95, 90), (70, 85)])
def test_double_jpeg_is_two_round_trips(first: int, second: int) -> None:
    image = astronaut()
    once = Image.fromarray(round_trip(image, "JPEG", quality=first, subsampling="4:2:0"))
    expected = round_trip(once, "JPEG", quality=second, subsampling="4:2:0")
    assert np.array_equal(np.asarray(apply("double-jpeg", image, first=first, second=second)), expected)


@pytest.mark.parametrize("quality", [30, 60, 90])
def test_webp_is_pillows_lossy_round_trip(quality: int) -> None:
    image = astronaut()
    out = np.asarray(apply("webp", image, quality=quality))
    assert np.array_equal(out, round_trip(image, "WEBP", quality=quality))
    assert not np.array_equal(out, np.asarray(image))


# -- tone ---------------------------------------------------------------------------------------------------------

def ramp_image() -> Image.Image:
    """Every grey level 0..255 in red, reversed in green, halved in blue."""
    x = np.tile(np.arange(256), (4, 1))
    return Image.fromarray(np.stack([x, 255 - x, x // 2], axis=2).astype(np.uint8), "RGB")


@pytest.mark.parametrize("gamma", [0.7, 0.913, 1.0, 1.5])
def test_gamma_is_the_closed_form_curve(gamma: float) -> None:
    image = ramp_image()
    expected = np.rint(255.0 * (pixels(image) / 255.0) ** gamma)
    assert np.array_equal(pixels(apply("gamma", image, gamma=gamma)), expected)


@pytest.mark.parametrize("factor", [0.7, 1.0, 1.13, 1.3])
def test_brightness_scales_every_value(factor: float) -> None:
    image = noise_image()
    expected = np.clip(pixels(image) * factor, 0, 255)
    error = np.abs(pixels(apply("brightness", image, factor=factor)) - expected)
    assert error.max() < blend_tolerance(1.0) and error.mean() < 0.75  # the blend's pivot is black: exact


@pytest.mark.parametrize("factor", [0.6, 1.0, 1.27, 1.5])
def test_contrast_blends_with_the_mean_grey_level(factor: float) -> None:
    image = noise_image(seed=1)
    mean = luma(pixels(image)).mean()
    expected = np.clip(mean + factor * (pixels(image) - mean), 0, 255)
    error = np.abs(pixels(apply("contrast", image, factor=factor)) - expected)
    assert error.max() < blend_tolerance(factor) and error.mean() < 0.75


@pytest.mark.parametrize("factor", [0.5, 1.0, 1.21, 1.5])
def test_saturation_blends_with_the_grey_version(factor: float) -> None:
    image = noise_image(seed=2)
    grey = luma(pixels(image))[..., None]
    expected = np.clip(grey + factor * (pixels(image) - grey), 0, 255)
    error = np.abs(pixels(apply("saturation", image, factor=factor)) - expected)
    assert error.max() < blend_tolerance(factor) and error.mean() < 0.75


# -- geometry -----------------------------------------------------------------------------------------------------

def test_flip_mirrors_left_to_right() -> None:
    image = noise_image()
    out = apply("flip", image)
    assert np.array_equal(np.asarray(out), np.fliplr(np.asarray(image)))
    assert np.array_equal(np.asarray(apply("flip", out)), np.asarray(image))


def test_rotate_by_zero_is_the_identity() -> None:
    image = noise_image()
    assert np.array_equal(np.asarray(apply("rotate", image, degrees=0.0)), np.asarray(image))


def radial_image(size: int = 64, sigma: float = 10.0) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    return 255.0 * np.exp(-((xs - size / 2) ** 2 + (ys - size / 2) ** 2) / (2 * sigma**2))


def grey(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.repeat(np.rint(values)[..., None], 3, axis=2).astype(np.uint8), "RGB")


@pytest.mark.parametrize("degrees", [-8.0, 2.5, 8.0])
def test_rotate_leaves_a_centred_round_blob_in_place(degrees: float) -> None:
    image = grey(radial_image())
    out = apply("rotate", image, degrees=degrees)
    assert out.size == image.size
    difference = np.abs(pixels(out) - pixels(image))
    assert difference.mean() < 0.5 and difference.max() <= 3  # only bilinear resampling error


@pytest.mark.parametrize("degrees", [-8.0, 3.5, 8.0])
def test_rotate_turns_counter_clockwise_about_the_centre(degrees: float) -> None:
    size, dx, dy = 64, 14.0, 5.0
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    blob = 255.0 * np.exp(-((xs - size / 2 - dx) ** 2 + (ys - size / 2 - dy) ** 2) / (2 * 1.5**2))
    x, y = centroid(pixels(apply("rotate", grey(blob), degrees=degrees))[..., 0])
    t = math.radians(degrees)  # counter-clockwise on screen, where y points down
    assert x == pytest.approx(size / 2 + dx * math.cos(t) + dy * math.sin(t), abs=0.05)
    assert y == pytest.approx(size / 2 - dx * math.sin(t) + dy * math.cos(t), abs=0.05)


def test_rotate_fills_the_corners_with_black() -> None:
    out = pixels(apply("rotate", flat_image(255, 64, 64), degrees=8.0))
    assert (out[0, 0] == 0).all() and (out[-1, -1] == 0).all()
    assert (out[32, 32] == 255).all()


@pytest.mark.parametrize(("kept", "x", "y"), [(0.6, 0.0, 0.0), (0.75, 1.0, 1.0), (0.95, 0.5, 0.25), (0.8, 0.333, 0.9)])
@pytest.mark.parametrize(("width", "height"), [(96, 64), (50, 70)])
def test_crop_is_the_slice_at_those_fractions(kept: float, x: float, y: float, width: int, height: int) -> None:
    image = noise_image(width, height)
    w, h = round(width * kept), round(height * kept)
    left, top = round((width - w) * x), round((height - h) * y)
    out = apply("crop", image, kept=kept, x=x, y=y)
    assert out.size == (w, h)
    assert np.array_equal(np.asarray(out), np.asarray(image)[top:top + h, left:left + w])
    if x == 0:
        assert left == 0
    if x == 1:
        assert left + w == width


@pytest.mark.parametrize(("aspect", "ratio"), [("4:5", 4 / 5), ("16:9", 16 / 9), ("9:16", 9 / 16), ("3:2", 3 / 2)])
@pytest.mark.parametrize(("x", "y"), [(0.0, 1.0), (0.5, 0.5), (0.9, 0.1)])
@pytest.mark.parametrize(("width", "height"), [(96, 64), (48, 80), (60, 60)])
def test_aspect_crop_is_the_largest_slice_of_that_aspect(aspect: str, ratio: float, x: float, y: float,
                                                         width: int, height: int) -> None:
    image = noise_image(width, height)
    out = apply("aspect-crop", image, aspect=aspect, x=x, y=y)
    w, h = out.size
    if ratio < width / height:  # narrower than the image: full height
        assert h == height and abs(w - height * ratio) <= 0.5
    else:
        assert w == width and abs(h - width / ratio) <= 0.5
    assert abs(w / h - ratio) <= 0.5 / min(w, h) * max(1.0, ratio)
    left, top = round((width - w) * x), round((height - h) * y)
    assert np.array_equal(np.asarray(out), np.asarray(image)[top:top + h, left:left + w])


@pytest.mark.parametrize(("fraction", "fill"), [(0.02, 0), (0.1, 128), (0.15, 255), (0.001, 128)])
def test_pad_adds_a_flat_border_around_the_untouched_image(fraction: float, fill: int) -> None:
    image = noise_image(80, 50)
    border = max(1, round(80 * fraction))  # of the long side
    out = np.asarray(apply("pad", image, fraction=fraction, fill=fill))
    assert out.shape == (50 + 2 * border, 80 + 2 * border, 3)
    assert np.array_equal(out[border:-border, border:-border], np.asarray(image))
    frame = np.ones(out.shape[:2], bool)
    frame[border:-border, border:-border] = False
    assert (out[frame] == fill).all()


# -- resizing -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("factor", [0.4, 0.65, 0.9])
def test_down_up_keeps_the_size_and_loses_only_fine_detail(factor: float) -> None:
    smooth, noise = smooth_image(), noise_image()
    out = apply("down-up", smooth, factor=factor)
    assert out.size == smooth.size
    noisy_out = apply("down-up", noise, factor=factor)
    assert noisy_out.size == noise.size
    # σ-3 texture survives even a 0.4× resize (measured 0.5–2.2 grey levels off); per-pixel noise does not
    # (40–60 off, its Laplacian energy cut to ≤ 11 %).
    assert np.abs(pixels(out) - pixels(smooth)).mean() < 3
    assert np.abs(pixels(noisy_out) - pixels(noise)).mean() > 30
    assert laplacian_variance(noisy_out) < 0.2 * laplacian_variance(noise)


@pytest.mark.parametrize("limit", [512, 720, 1080, 1280, 2048])
def test_long_side_never_upscales(limit: int) -> None:
    image = noise_image(96, 64)
    assert np.array_equal(np.asarray(apply("long-side", image, limit=limit)), np.asarray(image))


@pytest.mark.parametrize(("width", "height", "expected"), [(600, 400, (512, 341)), (400, 600, (341, 512)),
                                                             (700, 700, (512, 512)), (512, 300, (512, 300))])
def test_long_side_caps_a_large_image_with_bicubic(width: int, height: int, expected: tuple[int, int]) -> None:
    image = Image.fromarray(data.astronaut(), "RGB").resize((width, height), Image.Resampling.BILINEAR)
    out = apply("long-side", image, limit=512)
    assert out.size == expected
    assert np.array_equal(np.asarray(out), np.asarray(image.resize(expected, Image.Resampling.BICUBIC)))


@pytest.mark.parametrize(("factor", "colours"), [(0.5, 64), (0.77, 128), (1.0, 256)])
def test_screenshot_resizes_and_limits_the_palette(factor: float, colours: int) -> None:
    for image in (noise_image(96, 80), astronaut()):
        out = np.asarray(apply("screenshot", image, factor=factor, colours=colours))
        assert out.shape == (round(image.height * factor), round(image.width * factor), 3)
        assert len(np.unique(out.reshape(-1, 3), axis=0)) <= colours
    # On a photo the palette keeps the picture: close to the plain resize (measured 2.8–4.7 grey levels off).
    photo = astronaut()
    shot = pixels(apply("screenshot", photo, factor=factor, colours=colours))
    resized = pixels(photo.resize(shot.shape[1::-1], Image.Resampling.BILINEAR))
    assert np.abs(shot - resized).mean() < 6


# -- filters ------------------------------------------------------------------------------------------------------

def scipy_blur(image: Image.Image, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(pixels(image), (sigma, sigma, 0), mode="nearest")


@pytest.mark.parametrize("sigma", [0.5, 0.8, 1.2, 2.0])
def test_gaussian_blur_matches_a_true_gaussian_of_that_sigma(sigma: float) -> None:
    # Pillow approximates the Gaussian with box blurs: within a grey level on average (measured 0.44–0.78 here),
    # so the bound is 1.5; away from an 8 px border, where the two treat the edge differently.
    image = astronaut()
    out = pixels(apply("gaussian-blur", image, sigma=sigma))
    error = np.abs(interior(out - scipy_blur(image, sigma), 8)).mean()
    assert error < 1.5
    assert error < 0.3 * np.abs(interior(pixels(image) - scipy_blur(image, sigma), 8)).mean()
    # The parameter is the standard deviation: the best-fitting true Gaussian has σ within 0.1 of it.
    candidates = np.arange(0.3, 3.0, 0.05)
    fits = [np.abs(interior(out - scipy_blur(image, float(s)), 8)).mean() for s in candidates]
    assert abs(candidates[int(np.argmin(fits))] - sigma) <= 0.1


def line_offsets(length: int, angle: int) -> set[tuple[int, int]]:
    """(row, column) offsets of a centred digital line at ``angle`` degrees, counter-clockwise on screen."""
    t = math.radians(angle)
    step = max(abs(math.cos(t)), abs(math.sin(t)))
    return {(-round(k * math.sin(t) / step), round(k * math.cos(t) / step))
            for k in range(-(length // 2), length // 2 + 1)}


@pytest.mark.parametrize("length", [3, 5, 7, 9])
@pytest.mark.parametrize("angle", [0, 45, 90, 135])
def test_motion_kernel_averages_a_line_at_that_angle(length: int, angle: int) -> None:
    kernel = wild.motion_kernel(length, angle)
    centre = length // 2
    assert kernel.shape == (length, length)
    assert kernel.sum() == pytest.approx(1.0)
    ones = {(int(r) - centre, int(c) - centre) for r, c in zip(*np.nonzero(kernel), strict=True)}
    assert ones == line_offsets(length, angle)
    assert np.allclose(kernel[kernel > 0], 1.0 / length)


@pytest.mark.parametrize(("length", "angle"), [(3, 0), (5, 45), (7, 90), (9, 135)])
def test_motion_blur_spreads_a_point_along_the_line(length: int, angle: int) -> None:
    point = np.zeros((31, 31))
    point[15, 15] = 255
    out = pixels(apply("motion-blur", grey(point), length=length, angle=angle))
    assert np.array_equal(out[..., 0], out[..., 2])
    lit = {(int(r) - 15, int(c) - 15) for r, c in zip(*np.nonzero(out[..., 0]), strict=True)}
    assert lit == line_offsets(length, angle)
    assert (out[out > 0] == round(255 / length)).all()


def test_sharpen_by_one_is_the_identity_and_more_sharpens_more() -> None:
    image = astronaut()
    assert np.array_equal(np.asarray(apply("sharpen", image, factor=1.0)), np.asarray(image))
    variances = [laplacian_variance(apply("sharpen", image, factor=f)) for f in (1.0, 1.5, 3.0)]
    assert variances[0] < variances[1] < variances[2]
    assert variances[2] > 1.5 * variances[0]


# -- noise --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [2.0, 7.5, 15.0])
def test_gaussian_noise_has_zero_mean_and_that_sigma(sigma: float) -> None:
    image = flat_image(128)
    residual = pixels(apply("gaussian-noise", image, sigma=sigma, noise_seed=11)) - 128
    # 27 648 samples: the mean's standard error is σ/166 and the deviation's about 0.4 %; rounding to integers
    # adds a variance of 1/12, which matters only at σ 2. No value reaches 0 or 255, so nothing is clipped.
    assert abs(residual.mean()) < 0.03 * sigma
    assert residual.std() == pytest.approx(math.sqrt(sigma**2 + 1 / 12), rel=0.03)
    neighbours = np.corrcoef(residual[:, :-1, 0].ravel(), residual[:, 1:, 0].ravel())[0, 1]
    assert abs(neighbours) < 0.05  # independent per pixel


@pytest.mark.parametrize("kind", ["gaussian-noise", "poisson-noise"])
def test_noise_is_a_function_of_its_parameters(kind: str) -> None:
    image = astronaut(64)
    scale = {"gaussian-noise": "sigma", "poisson-noise": "peak"}[kind]
    first = np.asarray(apply(kind, image, **{scale: 10.0, "noise_seed": 5}))
    assert np.array_equal(first, np.asarray(apply(kind, image, **{scale: 10.0, "noise_seed": 5})))
    assert not np.array_equal(first, np.asarray(apply(kind, image, **{scale: 10.0, "noise_seed": 6})))
    assert not np.array_equal(first, np.asarray(image))


@pytest.mark.parametrize("peak", [20.0, 50.0, 100.0])
@pytest.mark.parametrize("level", [64, 128])
def test_poisson_noise_has_the_shot_noise_variance(peak: float, level: int) -> None:
    out = pixels(apply("poisson-noise", flat_image(level), peak=peak, noise_seed=3))
    # Counts ~ Poisson(level/255·peak), scaled by 255/peak: mean level, variance level·255/peak grey levels².
    # The chosen levels keep counts above peak (clipped at 255) negligibly rare; 5 % is ~6 standard errors.
    assert out.mean() == pytest.approx(level, abs=1.0)
    assert out.var() == pytest.approx(level * 255 / peak, rel=0.05)


# -- chains -------------------------------------------------------------------------------------------------------

IDS = [f"img-{i:05d}" for i in range(2000)]


def test_a_chain_is_a_function_of_image_id_and_seed() -> None:
    first = [wild.chain_for(image_id, 0) for image_id in IDS[:50]]
    wild.chain_for("something else", 99)  # no state carried between calls
    assert [wild.chain_for(image_id, 0) for image_id in reversed(IDS[:50])] == first[::-1]
    assert wild.chain_for(IDS[0], "0") == first[0]  # type: ignore[arg-type]  # the seed is read as an integer
    assert all(wild.chain_for(image_id, 1) != chain for image_id, chain in zip(IDS[:50], first, strict=True))
    # One-kind chains may coincide (a lone flip has no parameters); longer ones differ image by image.
    longer = [json.dumps(chain) for chain in first if len(chain) > 1]
    assert len(set(longer)) == len(longer) > 30


def test_chains_have_one_to_five_distinct_kinds_and_use_them_all() -> None:
    chains = [wild.chain_for(image_id, 3) for image_id in IDS]
    lengths = Counter(len(chain) for chain in chains)
    assert sorted(lengths) == [1, 2, 3, 4, 5]
    assert all(300 < count < 500 for count in lengths.values())  # uniform: 400 each
    for chain in chains:
        names = [name for name, _ in chain]
        assert len(set(names)) == len(names)
    assert {name for chain in chains for name, _ in chain} == set(KINDS)
    firsts = Counter(chain[0][0] for chain in chains)
    assert set(firsts) == set(KINDS)  # the order is random too, not the registry's


def test_chains_can_be_drawn_from_a_subset_of_kinds() -> None:
    chains = [wild.chain_for(image_id, 0, kinds=["jpeg", "flip"]) for image_id in IDS[:100]]
    for chain in chains:
        assert 1 <= len(chain) <= 2 and {name for name, _ in chain} <= {"jpeg", "flip"}
        assert len({name for name, _ in chain}) == len(chain)  # distinct kinds
    # The subset is drawn from, not just capped: both lengths, both kinds and both orders occur.
    assert {len(chain) for chain in chains} == {1, 2}
    assert {tuple(name for name, _ in chain) for chain in chains if len(chain) == 2} == {("jpeg", "flip"), ("flip", "jpeg")}
    assert chains != [wild.chain_for(image_id, 0) for image_id in IDS[:100]]


def test_chain_parameters_are_plain_json_and_never_depend_on_the_image() -> None:
    chains = [wild.chain_for(image_id, 5) for image_id in IDS[:300]]
    restored = [[(name, params) for name, params in chain] for chain in json.loads(json.dumps(chains))]
    assert restored == chains
    kept = copy.deepcopy(chains[:12])
    for chain in chains[:12]:
        wild.apply_chain(astronaut(48), chain)
        wild.apply_chain(noise_image(40, 56), chain)
    assert chains[:12] == kept == [wild.chain_for(image_id, 5) for image_id in IDS[:12]]


def test_chain_rng_depends_on_id_and_seed_only() -> None:
    draws = wild.chain_rng("a", 1).integers(0, 2**62, 4)
    assert np.array_equal(draws, wild.chain_rng("a", 1).integers(0, 2**62, 4))
    assert not np.array_equal(draws, wild.chain_rng("a", 2).integers(0, 2**62, 4))
    assert not np.array_equal(draws, wild.chain_rng("b", 1).integers(0, 2**62, 4))
    assert not np.array_equal(wild.chain_rng("1", 2).integers(0, 2**62, 4),  # the separator keeps them apart
                              wild.chain_rng("", 12).integers(0, 2**62, 4))


def test_apply_chain_applies_the_kinds_in_order() -> None:
    image = astronaut(64)
    for image_id in IDS[:12]:
        chain = wild.chain_for(image_id, 2)
        expected = image
        for name, params in chain:
            expected = wild.get_kind(name).apply(expected, params)
        assert np.array_equal(np.asarray(wild.apply_chain(image, chain)), np.asarray(expected))
    flipped_then_cropped = wild.apply_chain(noise_image(), [("flip", {}), ("crop", {"kept": 0.5, "x": 0, "y": 0})])
    assert np.array_equal(np.asarray(flipped_then_cropped), np.fliplr(np.asarray(noise_image()))[:24, :32])


def test_describe_chain_shows_parameters_but_not_noise_seeds() -> None:
    chain = [("jpeg", {"quality": 71}), ("gaussian-noise", {"sigma": 4.5, "noise_seed": 123}), ("flip", {})]
    assert wild.describe_chain(chain) == "jpeg(quality=71) → gaussian-noise(sigma=4.5) → flip()"
    assert wild.describe_chain([]) == ""


# -- conditions and presets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 3, 41])
def test_a_chain_condition_is_chain_for_that_seed(seed: int) -> None:
    condition = wild.chain_condition(seed)
    assert condition == f"chain-s{seed}" and wild.is_wild_condition(condition)
    for image_id in IDS[:20]:
        assert wild.condition_chain(condition, image_id) == wild.chain_for(image_id, seed)


@pytest.mark.parametrize("name", sorted(wild.PRESETS))
def test_presets_resolve_to_their_fixed_chain(name: str) -> None:
    preset = wild.PRESETS[name]
    assert preset.name == name and name.startswith("sim-") and wild.is_wild_condition(name) and preset.based_on
    for image_id in IDS[:5]:
        assert wild.condition_chain(name, image_id) == preset.chain
    for kind, params in preset.chain:
        assert set(params) == set(RANGES[kind])
    assert wild.apply_chain(astronaut(), preset.chain).mode == "RGB"


def test_the_presets_do_what_they_say() -> None:
    photo = Image.fromarray(data.astronaut(), "RGB")
    assert wild.apply_chain(photo, wild.PRESETS["sim-share-1080-q70"].chain).size == (512, 512)  # never upscaled
    expected = round_trip(photo, "JPEG", quality=70, subsampling="4:2:0")
    assert np.array_equal(np.asarray(wild.apply_chain(photo, wild.PRESETS["sim-share-1080-q70"].chain)), expected)
    assert wild.apply_chain(photo, wild.PRESETS["sim-reshare-twice"].chain).size == (461, 461)  # 90 % crop
    assert wild.apply_chain(photo, wild.PRESETS["sim-screenshot"].chain).size == (384, 384)  # shown at 75 %


@pytest.mark.parametrize("condition", ["chain-s", "chain-sx", "chain-s-1", "chain-s1.5", "chain-s²", "chain-s٣",
                                       "sim-", "sim-share", "jpeg-50", ""])
def test_an_unknown_condition_is_the_users_fault_and_the_message_lists_the_valid_ones(condition: str) -> None:
    with pytest.raises(UserFault) as raised:
        wild.condition_chain(condition, "img-1")
    assert "chain-s<seed>" in raised.value.message
    assert all(name in raised.value.message for name in wild.PRESETS)


# -- the same bytes everywhere ------------------------------------------------------------------------------------

def _rich_ids(count: int, seed: int) -> list[str]:
    """The first ids whose chains are long, so the comparison covers many kinds (noise and codecs among them)."""
    return [image_id for image_id in IDS if len(wild.chain_for(image_id, seed)) >= 4][:count]


def test_chains_give_the_same_bytes_in_threads_and_in_fresh_processes() -> None:
    seed, image = 7, astronaut(64)
    ids = _rich_ids(6, seed)
    condition = wild.chain_condition(seed)
    assert len({name for image_id in ids for name, _ in wild.chain_for(image_id, seed)}) >= 10
    here = [np.asarray(wild.apply_chain(image, wild.chain_for(image_id, seed))) for image_id in ids]
    with ThreadPoolExecutor(max_workers=2) as threads:
        threaded = list(threads.map(perturb, [image] * len(ids), [condition] * len(ids), ids))
    # Spawned, not forked: fresh interpreters (their own hash seeds) that work out each chain from the id alone.
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as processes:
        spawned = list(processes.map(perturb, [image] * len(ids), [condition] * len(ids), ids))
        chains = list(processes.map(wild.chain_for, ids, [seed] * len(ids)))
    assert chains == [wild.chain_for(image_id, seed) for image_id in ids]
    for expected, in_thread, in_process in zip(here, threaded, spawned, strict=True):
        assert np.array_equal(np.asarray(in_thread), expected)
        assert np.array_equal(np.asarray(in_process), expected)
