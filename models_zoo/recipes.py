"""Training recipes for the ResNet-50 and Swin-T detectors (``models_zoo.classifiers``), scaled by configuration.

One training loop, configured by a ``TrainConfig``. ``RECIPES`` holds two presets per architecture: "full" is
the paper's recipe (seeds.md §1.6; timm 0.6.12 defaults for ResNet-50, Microsoft Swin-Transformer defaults for
Swin-T) for a GPU and a GenImage copy, "mini" a CPU run of a few minutes on the 64-px mini benchmark. The
paper's code departs from this loop where the cards say so (no AugMix/JSD splits, no Mixup/CutMix).

A GPU user runs the full recipe with::

    python -m models_zoo.recipes --arch resnet50 --recipe full --root /data/genimage-unbiased/<version> \\
        --out resnet50.safetensors

and uploads the safetensors file, naming the architecture (its metadata says which).
"""
from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from torchvision import transforms

from evaluation.datasets.images import centre_crop
from evaluation.datasets.manifest import LABEL_GENERATED, centre_crops, read_manifest
from evaluation.perturbations import jpeg_reencode  # the reference code's compress_img, as the JPEG sweep's
from models_zoo.classifiers import ARCHITECTURES, IMAGENET_MEAN, IMAGENET_STD, ImageClassifierDetector, build

OPTIMISERS = ("sgd", "adamw")
BALANCING = ("loss", "sampler")
NO_DECAY_KEYWORDS = ("relative_position_bias_table",)  # Swin's skip list: tables of biases, not weights


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run. Defaults are the neutral choice; the presets in ``RECIPES`` set the rest."""

    epochs: int
    batch_size: int
    optimiser: str  # "sgd" (Nesterov when ``nesterov``, as timm's "sgd") or "adamw"
    lr: float  # the peak learning rate, reached at the end of the warmup
    weight_decay: float  # never applied to biases, norm weights or Swin's relative-position tables
    momentum: float = 0.9  # SGD only
    nesterov: bool = True
    warmup_epochs: float = 0.0  # linear warmup from ``warmup_lr`` to ``lr``
    warmup_lr: float = 0.0
    cosine: bool = True  # cosine decay from ``lr`` to ``min_lr`` after the warmup; False: constant ``lr``
    min_lr: float = 0.0
    label_smoothing: float = 0.0  # targets y(1−s) + s/2: timm's two-class smoothing, written for one logit
    grad_clip: float | None = None  # max global gradient norm (Swin: 5.0)
    amp: bool = False  # float16 autocast with a GradScaler; CUDA only
    channels_last: bool = False  # CUDA only
    num_workers: int = 0  # DataLoader processes (0: decode in the training process)
    random_resized_crop: bool = False  # RandomResizedCrop(scale 0.08–1) as timm/Swin; False: resize like scoring
    hflip: float = 0.5  # horizontal-flip probability
    randaugment: bool = False  # torchvision RandAugment(num_ops=2, magnitude=9) ≈ timm's rand-m9-mstd0.5
    random_erasing: float = 0.0  # probability of one erased box of per-pixel noise (timm's "pixel" mode)
    jpeg_qf: int | None = None  # in-memory JPEG re-compression of generated training images (the debiasing)
    jpeg_natural: bool = False  # also re-compress real images (the reference code's --compress_natural)
    balance: str = "loss"  # "loss": BCE pos_weight = #real/#generated; "sampler": class-balanced draws
    max_steps: int | None = None  # caps the run; the schedule then spans the capped number of steps
    input_size: int = 224

    def __post_init__(self) -> None:
        if self.optimiser not in OPTIMISERS:
            raise ValueError(f"unknown optimiser {self.optimiser!r}; use {' or '.join(OPTIMISERS)}")
        if self.balance not in BALANCING:
            raise ValueError(f"unknown class balancing {self.balance!r}; use {' or '.join(BALANCING)}")
        if self.jpeg_qf is not None and not 1 <= self.jpeg_qf <= 100:
            raise ValueError(f"the JPEG quality must be from 1 to 100, not {self.jpeg_qf}")
        if self.epochs < 1 or self.batch_size < 2 or (self.max_steps is not None and self.max_steps < 1):
            raise ValueError("epochs and max_steps must be at least 1, the batch size at least 2 (batch norm)")


def _swin_scaled(value: float, batch_size: int) -> float:
    """The Swin repo's linear scaling rule: its base values are meant for a total batch of 512."""
    return value * batch_size / 512


RECIPES: dict[tuple[str, str], TrainConfig] = {
    # timm 0.6.12: -b 128 --sched cosine --epochs 200 --lr 0.05 --amp --remode pixel --reprob 0.6 --aa rand-m9-...
    # plus its defaults (SGD Nesterov 0.9, wd 2e-5, warmup 3 epochs from 1e-4, min lr 1e-6, smoothing 0.1).
    ("resnet50", "full"): TrainConfig(
        epochs=200, batch_size=128, optimiser="sgd", lr=0.05, weight_decay=2e-5, momentum=0.9, nesterov=True,
        warmup_epochs=3, warmup_lr=1e-4, min_lr=1e-6, label_smoothing=0.1, amp=True, channels_last=True,
        num_workers=8, random_resized_crop=True, randaugment=True, random_erasing=0.6, input_size=224),
    # Swin-Transformer swin_tiny_patch4_window7_224 defaults: AdamW, base lr 5e-4, warmup 20 epochs from 5e-7,
    # min lr 5e-6 (all three scaled by batch/512), wd 0.05, 300 epochs, clip 5, smoothing 0.1, reprob 0.25.
    ("swin-t", "full"): TrainConfig(
        epochs=300, batch_size=128, optimiser="adamw", lr=_swin_scaled(5e-4, 128), weight_decay=0.05,
        warmup_epochs=20, warmup_lr=_swin_scaled(5e-7, 128), min_lr=_swin_scaled(5e-6, 128), label_smoothing=0.1,
        grad_clip=5.0, amp=True, channels_last=False, num_workers=8, random_resized_crop=True, randaugment=True,
        random_erasing=0.25, input_size=224),
    # CPU, 64 px, 1-3 minutes on two idle cores (2,634 train images of the mini benchmark, 1 real : 5 generated):
    # AdamW, which gets somewhere in a few hundred steps from scratch; class-balanced draws, which measured
    # better than pos_weight for Swin-T (train accuracy 76 % against 71 %) and the same for ResNet-50.
    # ResNet-50: 2 epochs = 164 steps of ~0.6 s. Swin-T: ~1.2 s a step at 64 px (its windows are padded), so it
    # is capped at 140 steps, and lr 2.5e-4 learnt where 5e-4 and 1e-3 were erratic.
    ("resnet50", "mini"): TrainConfig(
        epochs=2, batch_size=32, optimiser="adamw", lr=1e-3, weight_decay=0.05, warmup_epochs=0.2, min_lr=1e-5,
        balance="sampler", input_size=64),
    ("swin-t", "mini"): TrainConfig(
        epochs=2, batch_size=32, optimiser="adamw", lr=2.5e-4, weight_decay=0.05, warmup_epochs=0.2, min_lr=1e-5,
        grad_clip=5.0, balance="sampler", max_steps=140, input_size=64),
}


class FitSize:
    """Bilinear resize to size×size unless the image already has that size: evaluation's own resize
    (evaluation.datasets.images.to_tensor), so a model trains on the pixels it is later scored on."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        if image.size == (self.size, self.size):
            return image
        return image.resize((self.size, self.size), Image.Resampling.BILINEAR)


class PixelErasing:
    """timm's RandomErasing(mode="pixel", count 1): one box (2–33 % of the area, aspect 0.3–3.3) of N(0, 1)
    noise in *normalised* units. The detector normalises inside, so the noise is written as mean + std·N(0, 1)."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(1).item() >= self.probability:
            return image
        top, left, height, width, noise = transforms.RandomErasing.get_params(
            image, scale=(0.02, 1 / 3), ratio=(0.3, 3.3), value=None)
        if noise is image:  # no box fitted in ten tries: torchvision then returns the image itself
            return image
        erased = image.clone()
        erased[:, top:top + height, left:left + width] = self.mean + self.std * noise
        return erased


def train_transform(config: TrainConfig) -> transforms.Compose:
    """PIL image (already re-compressed and centre-cropped) → augmented 3×S×S float tensor in [0, 1]."""
    size = config.input_size
    steps: list[Callable[..., object]] = [
        transforms.RandomResizedCrop(size, scale=(0.08, 1.0), interpolation=transforms.InterpolationMode.BILINEAR)
        if config.random_resized_crop else FitSize(size)]
    if config.hflip > 0:
        steps.append(transforms.RandomHorizontalFlip(config.hflip))
    if config.randaugment:
        steps.append(transforms.RandAugment(num_ops=2, magnitude=9))
    steps.append(transforms.ToTensor())
    if config.random_erasing > 0:
        steps.append(PixelErasing(config.random_erasing))
    return transforms.Compose(steps)


Item = tuple[str, int, int, bool]  # (path, label, centre crop or 0, re-compress?)


def train_items(root: Path, config: TrainConfig) -> list[Item]:
    """The train split of the version at ``root``, one short tuple per image (a million fit in memory).

    An image the manifest lists as a JPEG of exactly ``jpeg_qf`` is not compressed again: the Spectra unbiased
    version already stores its generated images that way (evaluation.datasets.unbiased)."""
    crops = centre_crops(str(root))
    items: list[Item] = []
    for row in read_manifest(Path(root) / "manifest.jsonl"):
        if row.split != "train":
            continue
        already = row.format.upper() in ("JPEG", "JPG") and row.jpeg_quality == config.jpeg_qf
        wanted = config.jpeg_qf is not None and (row.label == LABEL_GENERATED or config.jpeg_natural)
        items.append((row.path, row.label, crops.get(row.generator or "", 0), wanted and not already))
    return items


class TrainImages(Dataset[tuple[torch.Tensor, float]]):
    """Decodes lazily: RGB → JPEG re-compression (if asked) → centre crop (dataset.json) → the transform.
    The order is the reference code's: compression before cropping, augmentation last."""

    def __init__(self, root: Path, items: Sequence[Item], transform: Callable[[Image.Image], torch.Tensor],
                 jpeg_qf: int | None) -> None:
        self.root, self.items, self.transform, self.jpeg_qf = Path(root), items, transform, jpeg_qf

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, float]:
        path, label, crop, recompress = self.items[index]
        with Image.open(self.root / path) as image:
            rgb = image.convert("RGB")
        if recompress and self.jpeg_qf is not None:
            rgb = jpeg_reencode(rgb, self.jpeg_qf)
        if crop:
            rgb = centre_crop(rgb, crop)
        return self.transform(rgb), float(label)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Weight decay on weight matrices and kernels only (timm's filter_bias_and_bn, Swin's skip list)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            skip = parameter.ndim <= 1 or any(key in name for key in NO_DECAY_KEYWORDS)
            (no_decay if skip else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimiser(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, config.weight_decay)
    if config.optimiser == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999), eps=1e-8)


def learning_rate(step: int, total_steps: int, warmup_steps: int, config: TrainConfig) -> float:
    """Per optimiser step: linear warmup, then cosine to ``min_lr`` at the last step (or constant)."""
    if step < warmup_steps:
        return config.warmup_lr + (config.lr - config.warmup_lr) * step / warmup_steps
    if not config.cosine:
        return config.lr
    progress = (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_loader(images: TrainImages, config: TrainConfig, seed: int, device: torch.device) -> DataLoader:
    """Shuffled by a generator of its own, so the order depends on the seed only; the last partial batch is
    dropped (as timm does) so batch norm never sees a batch of one. With balance="sampler", an epoch is as many
    draws with replacement, each class drawn with probability 1/2."""
    if len(images) < config.batch_size:
        raise ValueError(f"the train split has {len(images)} images, fewer than one batch of {config.batch_size}")
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if config.balance == "sampler":
        labels = torch.tensor([item[1] for item in images.items])
        weights = 1.0 / torch.bincount(labels, minlength=2).double()[labels]
        sampler = WeightedRandomSampler(weights, num_samples=len(images), replacement=True, generator=generator)
    return DataLoader(images, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
                      drop_last=True, num_workers=config.num_workers, generator=generator,
                      pin_memory=device.type == "cuda", persistent_workers=config.num_workers > 0)


def balancing_weight(items: Sequence[Item]) -> float:
    """BCE's pos_weight = #real / #generated: both classes then weigh the same in the loss."""
    generated = sum(1 for item in items if item[1] == LABEL_GENERATED)
    real = len(items) - generated
    if not real or not generated:
        raise ValueError(f"the train split needs both classes; it has {real} real and {generated} generated images")
    return real / generated


@dataclass
class TrainProgress:
    """What the loop reports after each step; running accuracies are over the current epoch's batches."""

    step: int
    total_steps: int
    epoch: int
    loss: float
    lr: float
    seconds: float
    correct: list[int] = field(default_factory=lambda: [0, 0])  # per label: real, generated
    seen: list[int] = field(default_factory=lambda: [0, 0])

    def accuracy(self, label: int) -> float:
        return self.correct[label] / max(1, self.seen[label])

    def __str__(self) -> str:
        return (f"step {self.step}/{self.total_steps} epoch {self.epoch} loss {self.loss:.4f} lr {self.lr:.3g} "
                f"train acc real {self.accuracy(0):.1%} generated {self.accuracy(1):.1%} ({self.seconds:.0f} s)")


class _Step:
    """One optimiser step: autocast and the GradScaler only on CUDA with ``amp``; clipping after unscaling."""

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device, pos_weight: float) -> None:
        self.model, self.config, self.device = model, config, device
        self.amp = config.amp and device.type == "cuda"
        self.channels_last = config.channels_last and device.type == "cuda"
        self.optimiser = make_optimiser(model, config)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, lr: float) -> tuple[float, torch.Tensor]:
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(self.device, torch.float32)
        targets = labels * (1 - self.config.label_smoothing) + self.config.label_smoothing / 2
        for group in self.optimiser.param_groups:
            group["lr"] = lr
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            logits = self.model(images)
        loss = self.loss(logits.float(), targets)
        self.optimiser.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimiser)
        else:
            loss.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimiser)
            self.scaler.update()
        else:
            self.optimiser.step()
        return float(loss.detach()), (logits.detach() > 0).long().cpu()


def _run(step: _Step, loader: DataLoader, config: TrainConfig, log: Callable[[TrainProgress], None] | None) -> None:
    """The epochs; the schedule spans min(epochs × batches, max_steps) steps."""
    total = len(loader) * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    warmup, done, start = round(config.warmup_epochs * len(loader)), 0, time.monotonic()
    for epoch in range(1, config.epochs + 1):
        progress = TrainProgress(done, total, epoch, math.nan, 0.0, 0.0)
        for images, labels in loader:
            lr = learning_rate(done, total, warmup, config)
            loss, predicted = step(images, labels, lr)
            done += 1
            for label in (0, 1):
                mine = labels.long() == label
                progress.seen[label] += int(mine.sum())
                progress.correct[label] += int((predicted[mine] == label).sum())
            progress.step, progress.loss, progress.lr = done, loss, lr
            progress.seconds = time.monotonic() - start
            if log is not None:
                log(progress)
            if done >= total:
                return


def train_classifier(arch: str, root: Path, *, config: TrainConfig, seed: int = 0,
                     device: str | torch.device | None = None,
                     log: Callable[[TrainProgress], None] | None = None) -> ImageClassifierDetector:
    """Train ``arch`` from scratch on the train split of the dataset version at ``root``.

    ``torch.manual_seed(seed)`` comes first, so the initial weights are ``build(arch, size)`` under that seed,
    and the loader's order and the augmentations (torch's RNG) follow it: on CPU the same seed gives the same
    weights. Returns the model in eval mode, on the CPU, in the contiguous layout (safetensors needs it)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; use {', '.join(ARCHITECTURES)}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    model = build(arch, config.input_size).to(device)
    if config.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    items = train_items(Path(root), config)
    images = TrainImages(Path(root), items, train_transform(config), config.jpeg_qf)
    model.train()
    weight = balancing_weight(items)  # also refuses a split with one class only
    pos_weight = weight if config.balance == "loss" else 1.0
    _run(_Step(model, config, device, pos_weight), make_loader(images, config, seed, device), config, log)
    return model.to("cpu", memory_format=torch.contiguous_format).eval()


def recipe_config(arch: str, recipe: str, input_size: int | None = None) -> TrainConfig:
    try:
        config = RECIPES[(arch, recipe)]
    except KeyError:
        raise ValueError(f"no recipe {recipe!r} for {arch!r}; have {sorted(RECIPES)}") from None
    return config if input_size is None else replace(config, input_size=input_size)


def train_resnet50(root: Path, *, input_size: int, seed: int = 0, recipe: str = "mini",
                   **overrides: Any) -> ImageClassifierDetector:
    """The registry's trainer for "resnet50": the named preset at ``input_size``; ``overrides`` are TrainConfig
    fields (max_steps=3, say)."""
    config = replace(recipe_config("resnet50", recipe, input_size), **overrides)
    return train_classifier("resnet50", root, config=config, seed=seed)


def train_swin_t(root: Path, *, input_size: int, seed: int = 0, recipe: str = "mini",
                 **overrides: Any) -> ImageClassifierDetector:
    """The registry's trainer for "swin-t": the named preset at ``input_size``; ``overrides`` as train_resnet50."""
    config = replace(recipe_config("swin-t", recipe, input_size), **overrides)
    return train_classifier("swin-t", root, config=config, seed=seed)


def save_weights(model: ImageClassifierDetector, path: Path) -> None:
    """The safetensors file an upload carries, with the architecture and size it was trained for."""
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(path),
              metadata={"spectra.architecture": model.arch, "spectra.input_size": str(model.input_size)})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m models_zoo.recipes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, choices=sorted(ARCHITECTURES))
    parser.add_argument("--recipe", default="full", choices=sorted({recipe for _, recipe in RECIPES}))
    parser.add_argument("--root", required=True, type=Path, help="a dataset version: a folder with manifest.jsonl")
    parser.add_argument("--out", required=True, type=Path, help="where to write the .safetensors weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    parser.add_argument("--log-every", type=int, default=50, help="print progress every N steps")
    for knob, kind in (("input_size", int), ("epochs", int), ("batch_size", int), ("lr", float),
                       ("num_workers", int), ("max_steps", int), ("jpeg_qf", int)):
        parser.add_argument("--" + knob.replace("_", "-"), type=kind, default=None, help="override the preset")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    overrides = {knob: value for knob in ("input_size", "epochs", "batch_size", "lr", "num_workers", "max_steps",
                                          "jpeg_qf") if (value := getattr(args, knob)) is not None}
    config = replace(recipe_config(args.arch, args.recipe), **overrides)
    print(f"training {args.arch} ({args.recipe}) on {args.root}: {config}", flush=True)

    def log(progress: TrainProgress) -> None:
        if progress.step % args.log_every == 0 or progress.step == progress.total_steps:
            print(progress, flush=True)

    model = train_classifier(args.arch, args.root, config=config, seed=args.seed, device=args.device, log=log)
    save_weights(model, args.out)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
