"""Helpers that write real detector files (TorchScript, ONNX, and the formats Spectra refuses).

Used by the unit tests of ``evaluation.detectors`` and by the end-to-end tests, which upload these files
and compare the stored scores with :func:`reference_scores`, an eager computation that shares nothing
with the loaders under test.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy
import torch
from torch import nn

Output = Literal["logit", "logit1", "two"]

# ImageNet statistics: the detector normalises its own input, as the Detector contract asks.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class TinyDetector(nn.Module):
    """A small deterministic CNN: N×3×H×W in [0, 1] (any H = W >= 16) -> logits of "generated".

    ``output`` picks the contract variant: "logit" -> N, "logit1" -> N×1, "two" -> N×2 [real, generated].
    """

    def __init__(self, seed: int = 0, output: Output = "logit") -> None:
        super().__init__()
        if output not in ("logit", "logit1", "two"):
            raise ValueError(f"unknown output variant {output!r}")
        self.output = output
        # fork_rng keeps the caller's global RNG stream untouched while the weights come from `seed`.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.body = nn.Sequential(
                nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
            self.head = nn.Linear(16, 2 if output == "two" else 1)
            # Larger head weights spread the scores of different images apart (not all near 0.5).
            self.head.weight.data.mul_(4.0)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Latent features (N×16), the optional capability robustness indicators use."""
        return self.body((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(x))
        if self.output == "logit":
            return logits[:, 0]
        return logits


class _NaNDetector(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)) * float("nan")


class _RowMeansDetector(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=3)  # N×3×S: a mean per row and channel, not a contract shape


class _FixedSizeDetector(nn.Module):
    """A Linear layer on the flattened image: it only runs at one input size."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.fc = nn.Linear(3 * input_size * input_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class SpreadLogits(nn.Module):
    """logit = scale · (mean pixel − centre): a fixed linear map of a pixel statistic whose logits can run far
    beyond where float32 probabilities saturate (sigmoid(x) rounds to 1.0 in float32 for x above ~17)."""

    def __init__(self, scale: float, centre: float) -> None:
        super().__init__()
        self.scale, self.centre = scale, centre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.mean(dim=(1, 2, 3)) - self.centre) * self.scale


def spread_logit_map(images: torch.Tensor, *, low: float = -60.0, high: float = 60.0) -> tuple[float, float]:
    """(scale, centre) of a SpreadLogits that maps these images' mean pixels onto [low, high] (low = −high)."""
    means = images.double().mean(dim=(1, 2, 3))
    lo, hi = float(means.min()), float(means.max())
    return (high - low) / (hi - lo), (lo + hi) / 2


def write_spread_logits(path: Path | str, *, scale: float, centre: float) -> Path:
    """``torch.jit.save`` of a scripted :class:`SpreadLogits`."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(_script(SpreadLogits(scale, centre)), str(path))
    return path


def _script(module: nn.Module) -> torch.jit.ScriptModule:
    # TorchScript is deprecated upstream; the warning is noise in tests that deliberately use it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.script(module.eval())


def save_scripted(module: nn.Module, path: Path | str) -> Path:
    """``torch.jit.save`` of ``module`` scripted in eval mode, as an upload would be made."""
    path = Path(path)
    scripted = _script(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(scripted, str(path))
    return path


def write_torchscript(path: Path | str, *, seed: int = 0, output: Output = "logit") -> Path:
    """``torch.jit.save`` of a scripted :class:`TinyDetector`."""
    return save_scripted(TinyDetector(seed, output), path)


def write_bad_torchscript(path: Path | str, kind: Literal["nan", "rows", "fixed_size"], *,
                          input_size: int = 32) -> Path:
    """A TorchScript file that loads but breaks the contract when run.

    "nan" returns NaN logits, "rows" returns N×3×S, "fixed_size" only accepts ``input_size``.
    """
    modules = {"nan": _NaNDetector, "rows": _RowMeansDetector}
    module = _FixedSizeDetector(input_size) if kind == "fixed_size" else modules[kind]()
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(_script(module), str(path))
    return path


def write_onnx(path: Path | str, *, seed: int = 0, input_size: int = 64, output: Output = "logit",
               fixed_batch: int | None = None) -> Path:
    """``torch.onnx.export`` of a :class:`TinyDetector` at ``input_size``, batch axis dynamic.

    ``fixed_batch`` exports a static batch dimension instead (as many hand-made exports have).
    """
    path = Path(path)
    model = TinyDetector(seed, output).eval()
    example = torch.rand(fixed_batch or 2, 3, input_size, input_size)
    dynamic = None if fixed_batch else {"image": {0: "batch"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"], dynamic_axes=dynamic)
    return path


def write_pickled_checkpoint(path: Path | str) -> Path:
    """``torch.save`` of a state dict (a zip whose data.pkl is a pickle)."""
    path = Path(path)
    torch.save(TinyDetector().state_dict(), path)
    return path


def write_pickled_model(path: Path | str) -> Path:
    """``torch.save`` of the whole module object."""
    path = Path(path)
    torch.save(TinyDetector(), path)
    return path


def write_legacy_pickle(path: Path | str) -> Path:
    """``torch.save`` in the pre-1.6 format: a bare pickle stream, no zip."""
    path = Path(path)
    torch.save(TinyDetector().state_dict(), path, _use_new_zipfile_serialization=False)
    return path


def write_export_archive(path: Path | str, *, input_size: int = 32) -> Path:
    """``torch.export.save`` of an exported :class:`TinyDetector` (a .pt2 archive)."""
    path = Path(path)
    program = torch.export.export(TinyDetector().eval(), (torch.rand(1, 3, input_size, input_size),))
    torch.export.save(program, str(path))
    return path


def write_torch_package(path: Path | str) -> Path:
    """A ``torch.package`` archive holding a TinyDetector state dict."""
    from torch.package import PackageExporter

    path = Path(path)
    with warnings.catch_warnings(), PackageExporter(str(path)) as exporter:
        warnings.simplefilter("ignore")  # torch.package's own TypedStorage deprecation noise
        exporter.extern("torch.**")
        exporter.save_pickle("detector", "state.pkl", TinyDetector().state_dict())
    return path


def reference_scores(images: torch.Tensor, *, seed: int = 0, output: Output = "logit") -> numpy.ndarray:
    """The logit of "generated" for each image, straight from an eager TinyDetector (float64, shape (N,)): for
    N×2 outputs the logit of the softmax probability of "generated", computed here from that probability."""
    model = TinyDetector(seed, output).eval()
    with torch.no_grad():
        logits = model(images.float().cpu()).double()
    if output == "two":
        return torch.logit(torch.softmax(logits, dim=1)[:, 1]).numpy()
    return logits.reshape(-1).numpy()


# Hostile detectors: each is a real TorchScript program doing what an attacker's upload would try.
class _ReadsFile(nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stolen = torch.from_file(self.path, False, 64, dtype=torch.uint8)  # folds the bytes into its scores
        return x.mean((1, 2, 3)) + stolen.float().sum()


class _Segfaults(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # An unchecked view far beyond its storage: reading it faults.
        return torch.ops.aten._reshape_alias(x.flatten(), [1 << 34], [1 << 12]).sum().expand(x.shape[0])


class _Loops(nn.Module):
    def __init__(self, from_batch: int) -> None:
        super().__init__()
        self.from_batch = from_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.sum()
        while x.shape[0] >= self.from_batch and bool(total > -1.0):  # for ever, from that batch size on
            total = total + 1.0
        return x.mean((1, 2, 3))


class _Allocates(nn.Module):
    def __init__(self, gigabytes: float) -> None:
        super().__init__()
        self.count = int(gigabytes * 2**30 / 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block = torch.ones([self.count])
        return x.mean((1, 2, 3)) + block[-1]


class _Outputs(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.mean((1, 2, 3))
        if self.kind == "inf":
            return score / 0.0
        if self.kind == "int":
            return (score * 100).long()
        if self.kind == "fewer":
            return score[:-1]
        if self.kind == "wide":
            return x.flatten(1)
        return score


HostileKind = Literal["reads_file", "segfault", "loop", "loop_after_probe", "allocate", "inf", "int", "fewer", "wide"]


def write_hostile_torchscript(path: Path | str, kind: HostileKind, *, target: str = "/etc/passwd",
                              gigabytes: float = 60.0) -> Path:
    module = {
        "reads_file": lambda: _ReadsFile(target), "segfault": _Segfaults, "loop": lambda: _Loops(0),
        "loop_after_probe": lambda: _Loops(3), "allocate": lambda: _Allocates(gigabytes),
    }.get(kind, lambda: _Outputs(kind))()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(_script(module), str(path))
    return Path(path)
