"""Real tiles for the mini benchmark, cut from photos that ship inside installed Python packages.

Nothing is downloaded: every photo below is a file inside the scikit-image, scikit-learn or matplotlib
wheel. Only RGB photographs are used, and of the stereo motorcycle pair only the left image (the right
one is a near duplicate). Tiles of one photo are strongly correlated, so the split is made by photo,
never by tile.
"""
from __future__ import annotations

import importlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from evaluation.errors import DatasetError

TILE = 64
MIN_LUMA_STD = 10.0  # drops flat sky, bokeh and the black border of the retina photo
MIN_REAL_PER_SPLIT = 60


@dataclass(frozen=True)
class PhotoSource:
    """Where one photo comes from and under which terms."""

    name: str
    package: str
    origin: str
    licence: str


# Every source photo, in build order (sorted by name so tile order never depends on this listing).
SOURCES: tuple[PhotoSource, ...] = tuple(sorted((
    PhotoSource("astronaut", "scikit-image", "skimage.data.astronaut() (NASA, Eileen Collins)",
                "public domain (no known copyright restrictions)"),
    PhotoSource("chelsea", "scikit-image", "skimage.data.chelsea() (Stefan van der Walt)", "CC0"),
    PhotoSource("coffee", "scikit-image", "skimage.data.coffee() (Rachel Michetti)", "CC0"),
    PhotoSource("hubble_deep_field", "scikit-image", "skimage.data.hubble_deep_field() (NASA)", "public domain"),
    PhotoSource("ihc", "scikit-image", "skimage.data.immunohistochemistry() (CMMI)",
                "no known copyright restrictions"),
    PhotoSource("motorcycle_left", "scikit-image", "skimage.data.stereo_motorcycle()[0] (Middlebury 2014 stereo)",
                "no licence stated by scikit-image; research benchmark image"),
    PhotoSource("retina", "scikit-image", "skimage.data.retina() (Mikael Häggström, Wikimedia)", "CC0 1.0"),
    PhotoSource("rocket", "scikit-image", "skimage.data.rocket() (SpaceX)", "public domain"),
    PhotoSource("china", "scikit-learn", "sklearn.datasets.load_sample_images() china.jpg (danielbuechele, Flickr)",
                "CC BY 2.0"),
    PhotoSource("flower", "scikit-learn", "sklearn.datasets.load_sample_images() flower.jpg (vultilion, Flickr)",
                "CC BY 2.0"),
    PhotoSource("grace_hopper", "matplotlib", "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
                "US Navy photograph (public domain; the wheel states no licence)"),
), key=lambda source: source.name))

# The fixed photo -> split assignment. Chosen by hand from the honest 64 px tile counts (scikit-image
# 0.26, scikit-learn 1.9, matplotlib 3.11), to land near 60/15/25 % of tiles while giving each of
# train and test one face and a mix of content:
#   train 439 tiles: astronaut 59, hubble_deep_field 177, motorcycle_left 74, retina 129
#   val   113 tiles: coffee 49, ihc 64
#   test  184 tiles: chelsea 28, china 43, flower 32, grace_hopper 57, rocket 24
PHOTO_SPLIT: dict[str, str] = {
    "astronaut": "train", "hubble_deep_field": "train", "motorcycle_left": "train", "retina": "train",
    "coffee": "val", "ihc": "val",
    "chelsea": "test", "china": "test", "flower": "test", "grace_hopper": "test", "rocket": "test",
}


@dataclass(frozen=True)
class Tile:
    """One honest 64x64 RGB tile and where it was cut from."""

    photo: str
    y: int
    x: int
    pixels: np.ndarray  # uint8, 64x64x3

    @property
    def name(self) -> str:
        """File stem that records the source photo and position, e.g. ``astronaut_y0064_x0128``."""
        return f"{self.photo}_y{self.y:04d}_x{self.x:04d}"


def photo_of(stem: str) -> str:
    """The source photo of a tile's file stem (the inverse of ``Tile.name``)."""
    return stem.rsplit("_y", 1)[0]


def tile_position(stem: str) -> tuple[str, int, int]:
    """(photo, y, x) of a tile's file stem, e.g. ``astronaut_y0064_x0128`` -> ("astronaut", 64, 128)."""
    photo, _, position = stem.rpartition("_y")
    row, _, column = position.partition("_x")
    if not (photo and row.isdigit() and column.isdigit()):
        raise DatasetError(f"{stem!r} is not the name of a mini benchmark tile (<photo>_y<row>_x<col>)")
    return photo, int(row), int(column)


def source_named(name: str) -> PhotoSource:
    """The source photo called ``name``."""
    for source in SOURCES:
        if source.name == name:
            return source
    raise DatasetError(f"the mini benchmark has no source photo called {name!r}")


def _import(module: str, package: str) -> object:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DatasetError(
            f"the mini benchmark needs the sample photos of {package}, which is not installed"
        ) from None


def _skimage_photo(name: str) -> np.ndarray:
    data = _import("skimage.data", "scikit-image")
    if name == "motorcycle_left":
        return data.stereo_motorcycle()[0]  # type: ignore[attr-defined]
    loader = "immunohistochemistry" if name == "ihc" else name
    return getattr(data, loader)()


def _sklearn_photo(name: str) -> np.ndarray:
    datasets = _import("sklearn.datasets", "scikit-learn")
    bunch = datasets.load_sample_images()  # type: ignore[attr-defined]
    for filename, image in zip(bunch.filenames, bunch.images, strict=True):
        if filename.replace("\\", "/").rsplit("/", 1)[-1] == f"{name}.jpg":
            return image
    raise DatasetError(f"scikit-learn no longer ships the sample photo {name}.jpg")


def _matplotlib_photo(name: str) -> np.ndarray:
    cbook = _import("matplotlib.cbook", "matplotlib")
    from PIL import Image

    with cbook.get_sample_data(f"{name}.jpg") as handle:  # type: ignore[attr-defined]
        data = handle.read()
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


_LOADERS: dict[str, Callable[[str], np.ndarray]] = {
    "scikit-image": _skimage_photo, "scikit-learn": _sklearn_photo, "matplotlib": _matplotlib_photo,
}


def load_photo(source: PhotoSource) -> np.ndarray:
    """Decode one photo as an H x W x 3 uint8 array."""
    image = np.asarray(_LOADERS[source.package](source.name))
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] < 3:
        raise DatasetError(f"the sample photo {source.name} is not an 8-bit RGB image as expected")
    return np.ascontiguousarray(image[:, :, :3])


def luminance_std(pixels: np.ndarray) -> float:
    """Standard deviation of the ITU-R BT.601 luminance of an RGB uint8 tile, in 0-255 units."""
    rgb = pixels.astype(np.float64)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return float(luma.std())


def cut_tiles(photo: str, image: np.ndarray) -> Iterator[Tile]:
    """Non-overlapping 64 px tiles from the top-left corner, keeping only the honest (textured) ones."""
    height, width = image.shape[:2]
    for y in range(0, height - TILE + 1, TILE):
        for x in range(0, width - TILE + 1, TILE):
            pixels = image[y:y + TILE, x:x + TILE].copy()
            if luminance_std(pixels) >= MIN_LUMA_STD:
                yield Tile(photo, y, x, pixels)


def real_tiles_by_split(progress: Callable[[str], None] | None = None) -> dict[str, list[Tile]]:
    """Every honest tile of every source photo, grouped by split, photo by photo (one photo in memory)."""
    by_split: dict[str, list[Tile]] = {"train": [], "val": [], "test": []}
    for source in SOURCES:
        if progress is not None:
            progress(f"cutting tiles from {source.name} ({source.package})")
        by_split[PHOTO_SPLIT[source.name]].extend(cut_tiles(source.name, load_photo(source)))
    _check_split_sizes(by_split)
    return by_split


def _check_split_sizes(by_split: dict[str, list[Tile]]) -> None:
    # A newer package could ship different photos; fail loudly rather than build a lopsided benchmark.
    for split, tiles in by_split.items():
        if len(tiles) < MIN_REAL_PER_SPLIT:
            raise DatasetError(
                f"the {split} split of the mini benchmark has only {len(tiles)} real tiles "
                f"(at least {MIN_REAL_PER_SPLIT} are needed); the packages' sample photos have changed"
            )
    if len({tile.photo for tile in by_split["test"]}) < 2:
        raise DatasetError("the test split of the mini benchmark must come from at least two photos")
