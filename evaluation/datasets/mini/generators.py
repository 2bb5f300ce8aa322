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
_GEN_STREAM = {"vae": 1, "upsample": 2, "spectral": 3, "gan": 4, "blend": 5}  # keeps each family's random stream separate


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


# ---------------------------------------------------------------- gan

GAN_LATENT = 64
GAN_STEPS = 300
GAN_BATCH = 64


def _gan_modules() -> tuple[torch.nn.Module, torch.nn.Module]:
    """A small DCGAN pair: 4x4x128 -> 64x64x3 generator (stride-2 transposed convs), mirror discriminator."""
    from torch import nn

    def up(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    generator = nn.Sequential(
        nn.Linear(GAN_LATENT, 128 * 4 * 4), nn.Unflatten(1, (128, 4, 4)), nn.BatchNorm2d(128), nn.ReLU(),
        *up(128, 64), *up(64, 32), *up(32, 16),  # 8, 16, 32 px
        nn.ConvTranspose2d(16, 3, 4, 2, 1), nn.Sigmoid(),  # 64 px
    )
    discriminator = nn.Sequential(
        nn.Conv2d(3, 16, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(16, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(128 * 4 * 4, 1),
    )
    return generator, discriminator


def _train_gan(data: torch.Tensor, steps: int, seed: int, progress: Callable[[str], None] | None) -> torch.nn.Module:
    import torch
    from torch.nn.functional import binary_cross_entropy_with_logits as bce

    torch.manual_seed(seed)
    generator, discriminator = _gan_modules()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    draws = torch.Generator().manual_seed(seed + 1)
    ones, zeros = torch.ones(GAN_BATCH, 1), torch.zeros(GAN_BATCH, 1)
    for step in range(steps):
        real = data[torch.randint(len(data), (GAN_BATCH,), generator=draws)]
        fake = generator(torch.randn((GAN_BATCH, GAN_LATENT), generator=draws))
        loss_d = bce(discriminator(real), ones) + bce(discriminator(fake.detach()), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = bce(discriminator(fake), ones)  # non-saturating generator loss
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if progress is not None and (step + 1) % 50 == 0:
            progress(f"gan: training step {step + 1}/{steps}, loss D {loss_d.item():.2f} G {loss_g.item():.2f}")
    generator.eval()  # batch norm uses its running statistics when sampling
    return generator


class PriorSampler:
    """Trains one generative network (``family`` "vae" or "gan") once on the train tiles, then draws images
    from its latent prior for any split."""

    def __init__(self, family: str, train_tiles: Sequence[Tile], *, seed: int, steps: int,
                 progress: Callable[[str], None] | None = None) -> None:
        import torch

        trainers = {"vae": (_train_vae, VAE_LATENT), "gan": (_train_gan, GAN_LATENT)}
        train, self.latent = trainers[family]
        self.family, self.seed = family, seed
        data = torch.from_numpy(tiles_to_float(train_tiles))
        with _torch_settings():
            self.network = train(data, steps, torch_seed_for(seed, family, 99), progress)

    def sample(self, count: int, split_index: int) -> np.ndarray:
        """``count`` new images as N x 64 x 64 x 3 uint8; split_index selects an independent stream."""
        import torch

        with _torch_settings(), torch.no_grad():
            noise = torch.Generator().manual_seed(torch_seed_for(self.seed, self.family, split_index))
            z = torch.randn((count, self.latent), generator=noise)
            images = [self.network(chunk).numpy() for chunk in z.split(128)]
        return float_to_uint8(np.concatenate(images)) if images else np.zeros((0, TILE, TILE, 3), np.uint8)


# ---------------------------------------------------------------- blend

BLEND_LEVELS = 4
_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(images: np.ndarray) -> np.ndarray:
    """Separable 5-tap binomial blur over axes 1 and 2 of an N x H x W x C array, reflected borders."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    h, w = images.shape[1:3]
    rows = sum(k * padded[:, i:i + h, :, :] for i, k in enumerate(_BINOMIAL))
    return sum(k * rows[:, :, i:i + w, :] for i, k in enumerate(_BINOMIAL))


def _down(images: np.ndarray) -> np.ndarray:
    return _blur(images)[:, ::2, ::2, :]


def _up(images: np.ndarray) -> np.ndarray:
    n, h, w, c = images.shape
    zeros = np.zeros((n, 2 * h, 2 * w, c))
    zeros[:, ::2, ::2, :] = images
    return 4.0 * _blur(zeros)


def blend_images(tiles: Sequence[Tile], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` Laplacian-pyramid blends (Burt & Adelson) of two random tiles from ``tiles``.

    Each image joins the band-pass levels of two different real tiles under a random smooth mask (a
    thresholded, blurred 4x4 noise field) taken down its own Gaussian pyramid, then collapses the
    pyramid. Every output is a new image whose content is real but whose composition is not.
    """
    out = np.empty((count, TILE, TILE, 3), dtype=np.uint8)
    for i in range(count):
        a, b = rng.choice(len(tiles), size=2, replace=False)
        pair = np.stack([tiles[int(a)].pixels, tiles[int(b)].pixels]).astype(np.float64)
        coarse = rng.standard_normal((1, 4, 4, 1))
        mask = coarse
        while mask.shape[1] < TILE:
            mask = _up(mask)
        mask = 1.0 / (1.0 + np.exp(-4.0 * mask / max(float(mask.std()), 1e-9)))  # soft 0..1 regions
        gauss_a, gauss_b, gauss_m = [pair[:1]], [pair[1:]], [mask]
        for _ in range(BLEND_LEVELS - 1):
            gauss_a.append(_down(gauss_a[-1]))
            gauss_b.append(_down(gauss_b[-1]))
            gauss_m.append(_down(gauss_m[-1]))
        result = gauss_m[-1] * gauss_a[-1] + (1 - gauss_m[-1]) * gauss_b[-1]
        for level in range(BLEND_LEVELS - 2, -1, -1):
            lap_a = gauss_a[level] - _up(gauss_a[level + 1])
            lap_b = gauss_b[level] - _up(gauss_b[level + 1])
            band = gauss_m[level] * lap_a + (1 - gauss_m[level]) * lap_b
            result = _up(result) + band
        out[i] = np.clip(np.rint(result[0]), 0, 255).astype(np.uint8)
    return out
