"""The spectral detector: reading files as cv2.imread(path, 0), the authors' per-image profile at 256 and 1024 px,
lengths, a known spectrum, one ring index per size, fitting against scikit-learn, export."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image, JpegImagePlugin, PngImagePlugin
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from models_zoo.cards import SPECTRAL_PROFILE_VERSION
from models_zoo.registry import create_model
from models_zoo.spectral import (
    EPS,
    RadialProfile,
    fit_detector,
    luma,
    profiles,
    profiles_of_split,
    read_gray,
    ring_index,
    spectral_features,
)
from tests.models_zoo.slow_spectral import obvious_profile, slow_profile

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.script/load are deprecated


def _colour_image(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients plus noise: chroma varies, so a 4:2:0 JPEG's RGB differs from its Y plane."""
    y, x = np.mgrid[:height, :width]
    smooth = np.stack([128 + 100 * np.sin(x / 7), 128 + 90 * np.cos(y / 5), 128 + 60 * np.sin((x + y) / 9)], -1)
    noisy = smooth + np.random.default_rng(seed).normal(0, 25, smooth.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _libpng_gray(rgb: np.ndarray) -> np.ndarray:
    """png_set_rgb_to_gray(0.299, 0.587) written out: weights 0.299·2^15 and 0.587·2^15 cut to integers, blue the
    rest of 2^15, the sum truncated."""
    red, green = int(0.299 * 32768), int(0.587 * 32768)
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((red * r + green * g + (32768 - red - green) * b) // 32768).astype(np.uint8)


def _cvtcolor_gray(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's RGB2GRAY: weights rounded to 2^-14, the sum rounded."""
    red, green = round(0.299 * 16384), round(0.587 * 16384)
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((red * r + green * g + (16384 - red - green) * b + 8192) // 16384).astype(np.uint8)


def _jpeg_y_plane(path: Path) -> np.ndarray:
    """The Y plane by another binding of libjpeg (torchvision's own), asked for greyscale output."""
    data = torchvision.io.read_file(str(path))
    return torchvision.io.decode_jpeg(data, mode=torchvision.io.ImageReadMode.GRAY)[0].numpy()


def _cv2():  # noqa: ANN202 - a module
    return pytest.importorskip("cv2", reason="opencv-python-headless (requirements-dev.txt) is the reference")


# ---------------------------------------------------------------- reading files as the authors do


@pytest.mark.parametrize(("subsampling", "sampling"), [(2, (2, 2)), (1, (2, 1)), (0, (1, 1))])
def test_a_colour_jpeg_is_read_as_its_luminance_plane(tmp_path, subsampling, sampling) -> None:
    path = tmp_path / "colour.jpg"
    Image.fromarray(_colour_image()).save(path, quality=90, subsampling=subsampling)
    with Image.open(path) as image:
        assert JpegImagePlugin.get_sampling(image) == {(2, 2): 2, (2, 1): 1, (1, 1): 0}[sampling]
        rgb = np.asarray(image.convert("RGB"))
    gray = read_gray(path)
    assert gray.dtype == np.uint8 and gray.shape == (40, 56)
    assert np.array_equal(gray, _jpeg_y_plane(path))
    # The test can fail: grey from the decoded RGB (upsampled chroma, colour conversion) is another image.
    assert np.abs(_cvtcolor_gray(rgb).astype(int) - gray).max() >= 2


def test_a_greyscale_jpeg_is_read_as_stored(tmp_path) -> None:
    path = tmp_path / "grey.jpg"
    Image.fromarray(_colour_image()[..., 1]).save(path, quality=80)
    assert np.array_equal(read_gray(path), _jpeg_y_plane(path))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P"])
def test_a_colour_png_is_read_as_libpng_makes_it_grey(tmp_path, mode) -> None:
    rgba = np.dstack([_colour_image(), np.random.default_rng(1).integers(0, 256, (40, 56), dtype=np.uint8)])
    image = Image.fromarray(rgba if mode == "RGBA" else rgba[..., :3]).convert(mode)
    image.save(tmp_path / "colour.png")
    rgb = np.asarray(image.convert("RGB"))  # the pixels written (a palette image: its colours)
    gray = read_gray(tmp_path / "colour.png")
    assert np.array_equal(gray, _libpng_gray(rgb))
    assert not np.array_equal(gray, _cvtcolor_gray(rgb))  # truncated, not rounded: the two conventions differ
    assert np.array_equal(luma(torch.from_numpy(rgb.transpose(2, 0, 1)[None] / 255)).numpy()[0], gray)


def test_grey_pngs_are_read_as_stored_and_16_bit_ones_by_their_high_byte(tmp_path) -> None:
    grey = _colour_image()[..., 0]
    Image.fromarray(grey).save(tmp_path / "l.png")
    Image.fromarray(grey).convert("LA").save(tmp_path / "la.png")
    deep = grey.astype(np.uint16) * 256 + np.random.default_rng(2).integers(0, 256, grey.shape).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "i16.png")
    for name in ("l.png", "la.png", "i16.png"):
        assert np.array_equal(read_gray(tmp_path / name), grey), name


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_other_formats_use_opencvs_rounded_weights(tmp_path, fmt) -> None:
    rgb = _colour_image()
    path = tmp_path / f"colour.{fmt.lower()}"
    Image.fromarray(rgb).save(path, format=fmt)
    assert np.array_equal(read_gray(path), _cvtcolor_gray(rgb))


def test_exif_orientation_is_applied_as_imread_does(tmp_path) -> None:
    plain, turned = tmp_path / "plain.jpg", tmp_path / "turned.jpg"
    image = Image.fromarray(_colour_image())
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(plain, quality=90)
    image.save(turned, quality=90, exif=exif)
    assert np.array_equal(read_gray(turned), np.rot90(read_gray(plain), k=-1))


def test_a_file_that_is_no_image_gets_a_message(tmp_path) -> None:
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="x.png: not an image that can be read"):
        read_gray(tmp_path / "x.png")


def _gamma_png(path: Path, rgb: np.ndarray, chunk: bytes, data: bytes) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add(chunk, data)
    Image.fromarray(rgb).save(path, pnginfo=info)
    return path


def test_read_gray_equals_opencv_imread_on_every_kind_of_file(tmp_path) -> None:
    cv2 = _cv2()
    rgb = _colour_image(64, 48)
    for subsampling in (0, 1, 2):
        Image.fromarray(rgb).save(tmp_path / f"s{subsampling}.jpg", subsampling=subsampling)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.jpg")
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(rgb).save(tmp_path / "exif.jpg", exif=exif)
    for mode in ("RGB", "RGBA", "P", "L", "LA"):
        Image.fromarray(rgb).convert(mode).save(tmp_path / f"{mode}.png")
    for gamma in (45455, 55556, 100000, 180000):  # 1/2.2, 1/1.8, linear, and one below 1 in decoding terms
        _gamma_png(tmp_path / f"g{gamma}.png", rgb, b"gAMA", gamma.to_bytes(4, "big"))
    _gamma_png(tmp_path / "srgb.png", rgb, b"sRGB", b"\x00")
    Image.fromarray(rgb).save(tmp_path / "c.bmp")
    Image.fromarray(rgb).save(tmp_path / "c.tiff")
    paths = sorted(tmp_path.iterdir())
    assert len(paths) == 17
    for path in paths:
        assert np.array_equal(read_gray(path), cv2.imread(str(path), 0)), path.name


def test_luma_of_the_rgb_is_opencvs_grey_of_the_png(tmp_path) -> None:
    cv2 = _cv2()
    rgb = np.random.default_rng(3).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "noise.png")
    ours = luma(torch.from_numpy(rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255)).numpy()[0]
    assert np.array_equal(ours, cv2.imread(str(tmp_path / "noise.png"), 0))


# ---------------------------------------------------------------- profiles


@pytest.mark.parametrize(("height", "width", "length"), [(1024, 1024, 722), (256, 256, 179), (218, 178, 139),
                                                        (128, 128, 88), (64, 64, 43), (32, 32, 20)])
def test_profile_lengths_are_the_ones_measured_on_the_reference(height: int, width: int, length: int) -> None:
    assert ring_index(height, width).bins - 2 == length  # seeds.md §8.2: lengths of radialProfile.py's output
    assert profiles(np.zeros((1, height, width))).shape == (1, length)


def test_a_flat_image_has_a_flat_profile_at_the_epsilon_floor() -> None:
    # The FFT of a constant image is zero away from DC (which the profile drops): every ring is 20·ln(1e-8).
    images = torch.full((1, 3, 64, 64), 0.5)
    assert np.allclose(spectral_features(images).numpy(), 20 * np.log(EPS), atol=1e-3)


def test_a_cosine_puts_its_energy_in_the_rings_of_its_frequency() -> None:
    # 128 + 100·cos(π x / 2) takes the integer values 228, 128, 28, 128: no rounding noise in the 8-bit luma.
    k = 16
    gray = np.tile(128 + 100 * np.round(np.cos(2 * np.pi * k * np.arange(64) / 64)), (64, 1))
    profile = spectral_features(torch.from_numpy(np.repeat(gray[None, None] / 255, 3, axis=1))).numpy()[0]
    # The two peaks sit k columns either side of the DC bin (32, 32); from the centre (31.5, 31.5) they fall in
    # rings floor(hypot(k ± 0.5, 0.5)) = 16 and 15, each ring mean = (peak + (n − 1)·floor) / n.
    counts = ring_index(64, 64).counts
    peak, floor = 20 * np.log(100 * 64 * 64 / 2), 20 * np.log(EPS)
    for ring in (15, 16):
        expected = (peak + (counts[ring] - 1) * floor) / counts[ring]
        assert profile[ring - 1] == pytest.approx(expected, rel=1e-4)  # ring r is entry r − 1 (DC dropped)
    others = np.delete(profile, [14, 15])
    assert np.allclose(others, floor, atol=0.5)


@pytest.mark.parametrize(("height", "width", "count"), [(256, 256, 4), (1024, 1024, 2), (218, 178, 3), (47, 33, 3)])
def test_batched_profiles_equal_the_authors_per_image_algorithm(height: int, width: int, count: int) -> None:
    gray = np.random.default_rng(height).integers(0, 256, (count, height, width)).astype(np.uint8)
    gray[0, : height // 2] = 77  # a flat half: many spectral values near zero, where ε matters
    authors = np.stack([slow_profile(image.astype(np.float64)) for image in gray])
    for ours in (profiles(gray), RadialProfile(height, width)(torch.from_numpy(gray)).numpy()):
        assert ours.shape == authors.shape and np.abs(ours / authors - 1).max() <= 1e-6
    if height < 300:
        assert np.allclose(profiles(gray)[1], obvious_profile(gray[1].astype(np.float64)), rtol=1e-9, atol=0)
    single = RadialProfile(height, width, dtype=torch.float32)(torch.from_numpy(gray))  # the fast variant
    assert np.allclose(single.numpy(), authors, rtol=1e-4, atol=1e-2)


def test_profiles_refuse_an_array_that_is_not_a_stack_of_images() -> None:
    with pytest.raises(ValueError, match="expected N×H×W grey images"):
        profiles(np.zeros((64, 64)))


def _version_of(root: Path, target: Path, rows: list[dict]) -> Path:
    target.mkdir()
    for row in rows:
        (target / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        (target / row["path"]).symlink_to(root / row["path"])
    (target / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return target


def test_split_profiles_come_from_the_files_with_one_ring_index(mini_root, tmp_path) -> None:
    from tests.reference import json_rows, load_images

    rows = [row for row in json_rows(mini_root) if row["split"] == "val"][:70]  # three chunks of images
    version = _version_of(mini_root, tmp_path / "v", rows)
    ring_index(64, 64)
    before = ring_index.cache_info()
    features, labels = profiles_of_split(version, "val")
    assert ring_index.cache_info().misses == before.misses  # built once per size, never per image
    assert labels.tolist() == [row["label"] for row in rows]
    authors = np.stack([slow_profile(read_gray(mini_root / row["path"]).astype(np.float64)) for row in rows])
    assert np.abs(features / authors - 1).max() <= 1e-6
    # The mini benchmark is PNG: the detector's luma of the platform's RGB sees the same profiles.
    in_model = spectral_features(load_images(mini_root, rows, 64).double()).numpy()
    assert np.abs(in_model / features - 1).max() <= 1e-9


def test_a_split_of_mixed_sizes_gets_a_message(mini_root, tmp_path) -> None:
    from tests.reference import json_rows

    rows = [row for row in json_rows(mini_root) if row["split"] == "val"][:2]
    version = _version_of(mini_root, tmp_path / "v", rows)
    (version / rows[1]["path"]).unlink()
    Image.new("RGB", (80, 72)).save(version / rows[1]["path"], format="PNG")
    with pytest.raises(ValueError, match="is 80×72 px, the split's first image 64×64 px"):
        profiles_of_split(version, "val")
    with pytest.raises(ValueError, match="holds no images"):
        profiles_of_split(version, "test")


# ---------------------------------------------------------------- fitting and export


def _upsample_split(mini_root: Path, split: str, limit: int) -> tuple[torch.Tensor, np.ndarray]:
    """Real tiles and the 'upsample' family (periodic spectral peaks) of one split, balanced."""
    from tests.reference import json_rows, load_images

    rows = [r for r in json_rows(mini_root) if r["split"] == split and r["generator"] in (None, "upsample")]
    real = [r for r in rows if r["label"] == 0][:limit]
    fake = [r for r in rows if r["label"] == 1][:limit]
    return load_images(mini_root, real + fake, 64).double(), np.r_[np.zeros(len(real)), np.ones(len(fake))]


def _authors_profiles(images: torch.Tensor) -> np.ndarray:
    """The authors' per-image profiles of the images' grey (independent of the batched paths)."""
    return np.stack([slow_profile(gray) for gray in luma(images).numpy()])


def _sklearn_logits(method: str, train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The notebook's classifiers fitted by scikit-learn itself; k-means: the squared distance to the centre of
    the cluster holding fewer generated training images minus that to the other one."""
    if method == "lr":
        fitted = LogisticRegression(solver="liblinear", max_iter=1000, random_state=0).fit(train, labels)
        return fitted.decision_function(test)
    if method == "svm":
        return SVC(kernel="linear").fit(train, labels).decision_function(test)
    clusters = KMeans(n_clusters=2, n_init=10, random_state=0).fit(train)
    fake = int(clusters.labels_[labels == 1].mean() > clusters.labels_[labels == 0].mean())
    distances = ((test[:, None, :] - clusters.cluster_centers_[None]) ** 2).sum(axis=2)
    return distances[:, 1 - fake] - distances[:, fake]


@pytest.mark.parametrize(("method", "at_least"), [("lr", 0.9), ("svm", 0.9), ("kmeans", 0.6)])
def test_the_exported_detector_scores_as_scikit_learn_on_the_authors_profiles(mini_root, method, at_least) -> None:
    train_x, train_y = _upsample_split(mini_root, "train", 100)
    test_x, test_y = _upsample_split(mini_root, "test", 100)
    model = fit_detector(method, train_x, train_y)
    assert model.state_dict().keys() == create_model(f"spectral-{method}", input_size=64).state_dict().keys()
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    buffer.seek(0)
    with torch.no_grad():
        logits = torch.jit.load(buffer)(test_x).numpy()
        assert np.array_equal(logits, model(test_x).numpy())
    # Trained on the detector's own profiles: liblinear's solution moves by ~10 % when the unscaled, strongly
    # correlated profiles move by 1e-13 (its stopping tolerance), so the fit needs the very same numbers. Scored
    # on the authors' per-image profiles of the test images.
    train = spectral_features(train_x).numpy()
    expected = _sklearn_logits(method, train, train_y, _authors_profiles(test_x))
    assert np.abs(expected).max() > 1 and np.allclose(logits, expected, rtol=1e-5, atol=1e-3)
    assert np.mean((logits > 0) == (test_y == 1)) >= at_least


def test_the_few_shot_curve_is_seeded_and_equals_a_direct_fit() -> None:
    from models_zoo.spectral import few_shot_curve

    rng = np.random.default_rng(2)
    train = np.r_[rng.normal(0, 1, (60, 5)), rng.normal(1.5, 1, (60, 5))]
    labels = np.r_[np.zeros(60, int), np.ones(60, int)]
    test = np.r_[rng.normal(0, 1, (100, 5)), rng.normal(1.5, 1, (100, 5))]
    test_labels = np.r_[np.zeros(100, int), np.ones(100, int)]
    curve = few_shot_curve(train, labels, test, test_labels, sizes=(20, 100, 500), repeats=1, seed=4, methods=("lr",))
    assert curve["sizes"] == [20, 100] and curve["profile_version"] == SPECTRAL_PROFILE_VERSION  # 500 needs 250 per class
    assert curve == few_shot_curve(train, labels, test, test_labels, sizes=(20, 100, 500), repeats=1, seed=4,
                                   methods=("lr",))
    # The same draws, fitted by scikit-learn directly.
    draw = np.random.default_rng(4)
    for i, n in enumerate((20, 100)):
        pick = np.r_[draw.choice(np.arange(60), n // 2, replace=False), draw.choice(np.arange(60, 120), n // 2, replace=False)]
        fitted = LogisticRegression(solver="liblinear", max_iter=1000, random_state=0).fit(train[pick], labels[pick])
        predicted = fitted.decision_function(test) > 0
        expected = (np.mean(~predicted[test_labels == 0]) + np.mean(predicted[test_labels == 1])) / 2
        assert curve["methods"]["lr"]["mean"][i] == pytest.approx(expected)
    assert curve["methods"]["lr"]["mean"][-1] > 0.75  # the classes are 1.5 standard deviations apart
