"""The generator families of the mini benchmark: real image-generating processes, small enough for a CPU.

* ``vae``: a small convolutional VAE trained on the *train* real tiles only, sampled from its prior.
  Its decoder upsamples with stride-2 transposed convolutions whose 3x3 kernels overlap unevenly,
  the source of the checkerboard artefacts that detectors of generated images pick up.
* ``upsample``: each real tile of a split is area-downsampled 4x and brought back with a fixed 4x
  transposed-convolution kernel that gives each of the 16 output phases a slightly different gain,
  as trained transposed convolutions do, so the images carry periodic spectral peaks at multiples
  of 64/4 = 16 cycles per tile.
* ``spectral``: random-phase noise whose amplitude spectrum follows a power law 1/f^a fitted to the
  train tiles, coloured with the mean and spread of a random train tile.

torch is imported inside the functions that need it so that importing this module stays light.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from evaluation.datasets.mini.photos import TILE, Tile

if TYPE_CHECKING:
    import torch

MAX_THREADS = 2
VAE_LATENT = 32
VAE_STEPS = 400
VAE_BATCH = 64
UPSAMPLE_FACTOR = 4
UPSAMPLE_PHASE_SPREAD = 0.12
_GEN_STREAM = {"vae": 1, "upsample": 2, "spectral": 3}  # keeps each family's random stream separate


def rng_for(seed: int, family: str, split_index: int) -> np.random.Generator:
    """A numpy random stream for one (seed, family, split); streams never overlap."""
    return np.random.default_rng([seed, _GEN_STREAM[family], split_index])


def torch_seed_for(seed: int, family: str, split_index: int) -> int:
    """A 63-bit torch seed derived like ``rng_for``, so torch and numpy streams follow one scheme."""
    state = np.random.SeedSequence([seed, _GEN_STREAM[family], split_index]).generate_state(1, np.uint64)
    return int(state[0]) >> 1


def tiles_to_float(tiles: Sequence[Tile]) -> np.ndarray:
    """Stack tiles as an N x 3 x 64 x 64 float32 array in [0, 1]."""
    stack = np.stack([tile.pixels for tile in tiles]).astype(np.float32) / 255.0
    return np.ascontiguousarray(stack.transpose(0, 3, 1, 2))


def float_to_uint8(batch: np.ndarray) -> np.ndarray:
    """N x 3 x H x W floats in [0, 1] -> N x H x W x 3 uint8, rounding half to even (numpy's rule)."""
    scaled = np.clip(np.rint(np.asarray(batch, dtype=np.float64) * 255.0), 0, 255)
    return np.ascontiguousarray(scaled.astype(np.uint8).transpose(0, 2, 3, 1))


# ---------------------------------------------------------------- vae


def _vae_modules() -> tuple[torch.nn.Module, torch.nn.Module]:
    from torch import nn

    widths = (16, 32, 64, 128)  # small enough to train in ~15 s on two CPU cores
    encoder = nn.Sequential(
        nn.Conv2d(3, widths[0], 4, 2, 1), nn.LeakyReLU(0.2),  # 32 px
        nn.Conv2d(widths[0], widths[1], 4, 2, 1), nn.LeakyReLU(0.2),  # 16 px
        nn.Conv2d(widths[1], widths[2], 4, 2, 1), nn.LeakyReLU(0.2),  # 8 px
        nn.Conv2d(widths[2], widths[3], 4, 2, 1), nn.LeakyReLU(0.2),  # 4 px
        nn.Flatten(), nn.Linear(widths[3] * 4 * 4, 2 * VAE_LATENT),
    )

    def up(c_in: int, c_out: int) -> nn.Module:
        # kernel 3, stride 2: pixels receive 1 or 2 taps per axis, hence the checkerboard pattern
        return nn.ConvTranspose2d(c_in, c_out, 3, 2, padding=1, output_padding=1)

    decoder = nn.Sequential(
        nn.Linear(VAE_LATENT, widths[3] * 4 * 4), nn.Unflatten(1, (widths[3], 4, 4)), nn.ReLU(),
        up(widths[3], widths[2]), nn.ReLU(), up(widths[2], widths[1]), nn.ReLU(),
        up(widths[1], widths[0]), nn.ReLU(), up(widths[0], 3), nn.Sigmoid(),
    )
    return encoder, decoder


def _train_vae(data: torch.Tensor, steps: int, seed: int, progress: Callable[[str], None] | None) -> torch.nn.Module:
    import torch

    torch.manual_seed(seed)
    encoder, decoder = _vae_modules()
    params = list(encoder.parameters()) + list(decoder.parameters())
    optimiser = torch.optim.Adam(params, lr=2e-3)
    batches = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        x = data[torch.randint(len(data), (VAE_BATCH,), generator=batches)]
        mu, logvar = encoder(x).chunk(2, dim=1)
        z = mu + torch.randn(mu.shape, generator=batches) * torch.exp(0.5 * logvar)
        recon = ((decoder(z) - x) ** 2).sum(dim=(1, 2, 3)).mean()
        kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)).mean()
        # Squared error in [0,1] units, so KL is weighted to stay comparable to ~12k-pixel recon term.
        loss = recon / 0.02 + kl
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if progress is not None and (step + 1) % 50 == 0:
            progress(f"vae: training step {step + 1}/{steps}, loss {loss.item():.0f}")
    decoder.eval()
    return decoder


class VaeSampler:
    """Trains the VAE once on the train tiles, then draws images from its prior for any split."""

    def __init__(self, train_tiles: Sequence[Tile], *, seed: int, steps: int = VAE_STEPS,
                 progress: Callable[[str], None] | None = None) -> None:
        import torch

        self.seed = seed
        data = torch.from_numpy(tiles_to_float(train_tiles))
        with _torch_settings():
            self.decoder = _train_vae(data, steps, torch_seed_for(seed, "vae", 99), progress)

    def sample(self, count: int, split_index: int) -> np.ndarray:
        """``count`` new images as N x 64 x 64 x 3 uint8; split_index selects an independent stream."""
        import torch

        with _torch_settings(), torch.no_grad():
            noise = torch.Generator().manual_seed(torch_seed_for(self.seed, "vae", split_index))
            z = torch.randn((count, VAE_LATENT), generator=noise)
            images = [self.decoder(chunk).numpy() for chunk in z.split(128)]
        return float_to_uint8(np.concatenate(images)) if images else np.zeros((0, TILE, TILE, 3), np.uint8)


class _torch_settings:
    """Fix threads, determinism and the global RNG for the duration of a block, then restore them.

    The thread count changes the order of float sums, so it is pinned (not left to the machine) to
    keep builds byte-identical; the caller's RNG state and settings are restored afterwards.
    """

    def __enter__(self) -> None:
        import torch

        self._threads = torch.get_num_threads()
        self._deterministic = torch.are_deterministic_algorithms_enabled()
        self._rng = torch.random.get_rng_state()
        torch.set_num_threads(MAX_THREADS)
        torch.use_deterministic_algorithms(True)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self._threads)
        torch.use_deterministic_algorithms(self._deterministic)
        torch.random.set_rng_state(self._rng)


# ---------------------------------------------------------------- upsample


def upsample_kernel(seed: int) -> np.ndarray:
    """The family's fixed 3 x 8 x 8 transposed-convolution kernel for 4x upsampling.

    Bilinear taps (which alone would give every output phase the same gain, hence no artefact) times a
    random gain per output phase. Like a generator's weights it is drawn once per build from the seed
    and shared by every image. The gains are normalised to mean 1 (brightness kept) and a fixed 12 %
    spread, so the strength of the periodic peaks does not depend on the seed.
    """
    tent = np.array([0.5, 1.5, 2.5, 3.5, 3.5, 2.5, 1.5, 0.5]) / UPSAMPLE_FACTOR  # 1 per phase
    spread = rng_for(seed, "upsample", 99).standard_normal((3, UPSAMPLE_FACTOR, UPSAMPLE_FACTOR))
    spread -= spread.mean(axis=(1, 2), keepdims=True)
    spread /= spread.std(axis=(1, 2), keepdims=True)
    gains = np.tile(1.0 + UPSAMPLE_PHASE_SPREAD * spread, (1, 2, 2))  # tap k feeds output phase k % 4
    return np.outer(tent, tent)[None] * gains


def upsample_images(tiles: Sequence[Tile], kernel: np.ndarray) -> np.ndarray:
    """Area-downsample each tile 4x, then transposed-convolve back to 64 px with ``kernel``.

    Done in numpy (no torch) as 64 shifted adds of the zero-inserted image: the same arithmetic as
    ``conv_transpose2d(stride=4)``, but its result does not depend on torch's threading.
    """
    f, n = UPSAMPLE_FACTOR, TILE // UPSAMPLE_FACTOR
    images = np.stack([tile.pixels for tile in tiles]).astype(np.float64)
    low = images.reshape(len(tiles), n, f, n, f, 3).mean(axis=(2, 4))
    # Edge-pad by one low-res pixel so the border gets the full two taps per axis, not a dark rim.
    low = np.pad(low, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    size = (n + 2 - 1) * f + 8
    out = np.zeros((len(tiles), size, size, 3))
    for ky in range(8):
        for kx in range(8):
            out[:, ky:ky + (n + 2) * f:f, kx:kx + (n + 2) * f:f, :] += low * kernel[:, ky, kx]
    # Low-res pixel i (padded index i+1) is centred at (i+1)*4 + 3.5 in ``out`` and at i*4 + 1.5 in a tile.
    crop = f + 2
    result = out[:, crop:crop + TILE, crop:crop + TILE, :]
    return np.clip(np.rint(result), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- spectral


def fit_power_law(tiles: Sequence[Tile]) -> np.ndarray:
    """Per channel (a, log c) of the mean amplitude spectrum |F|(f) ~ c / f^a of the tiles, DC excluded."""
    freqs = np.fft.fftfreq(TILE) * TILE
    radius = np.hypot(freqs[:, None], freqs[None, :])
    amplitude = np.zeros((3, TILE, TILE))
    for tile in tiles:
        pixels = tile.pixels.astype(np.float64).transpose(2, 0, 1)
        amplitude += np.abs(np.fft.fft2(pixels - pixels.mean(axis=(1, 2), keepdims=True)))
    amplitude /= max(len(tiles), 1)
    mask = (radius >= 1) & (radius <= TILE // 2)
    log_f = np.log(radius[mask])
    fits = [np.polyfit(log_f, np.log(amplitude[c][mask] + 1e-9), 1) for c in range(3)]
    return np.array([(-slope, intercept) for slope, intercept in fits])


def spectral_images(count: int, exponents: np.ndarray, train_tiles: Sequence[Tile],
                    rng: np.random.Generator) -> np.ndarray:
    """``count`` random-phase images with the fitted 1/f^a spectra, as N x 64 x 64 x 3 uint8.

    One white-noise phase field is shared by the three channels, because real colour channels are
    strongly correlated; each image takes its mean colour and contrast from a random train tile.
    """
    freqs = np.fft.fftfreq(TILE) * TILE
    radius = np.hypot(freqs[:, None], freqs[None, :])
    radius[0, 0] = 1.0
    out = np.empty((count, TILE, TILE, 3), dtype=np.uint8)
    for i in range(count):
        phase = np.fft.fft2(rng.standard_normal((TILE, TILE)))
        ref = train_tiles[int(rng.integers(len(train_tiles)))].pixels.astype(np.float64)
        for c in range(3):
            shaped = phase * radius ** (-exponents[c, 0])
            shaped[0, 0] = 0.0
            field = np.fft.ifft2(shaped).real
            field *= ref[..., c].std() / max(field.std(), 1e-9)
            out[i, :, :, c] = np.clip(np.rint(field + ref[..., c].mean()), 0, 255).astype(np.uint8)
    return out
