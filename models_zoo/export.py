"""Write a zoo detector in the platform's three upload formats: TorchScript, ONNX and safetensors.

Each writer loads its file the way the platform will, with ``evaluation.detectors.loading.load_detector`` (for
safetensors that rebuilds ``create_model(architecture, input_size=S)`` and loads the state dict strictly), so an
export that would be refused or would score differently fails here, not after an upload.

ONNX goes through ``torch.onnx.export`` with the TorchScript-based exporter (opset 17, dynamic batch); only when
that exporter has no translation for an operator is the dynamo exporter tried (opset 18, which has the Resize
``antialias`` attribute the probe's resize needs). The spectral detector is never handed to an exporter as is:
the TorchScript-based one has no ``aten::fft_rfft2``, and the dynamo one gets its numbers wrong: it rounds the
luma weights 0.299/0.587/0.114 to float32 (a few pixels' luma then rounds the other way), adds the real ε to the
imaginary part of the spectrum as well, and writes the ring sums as ScatterND additions with duplicate indices,
which onnxruntime 1.32 sums wrongly and non-deterministically on large batches (seen at 128 and 512 images).
``SpectralOnnx`` computes the detector's numbers from operators ONNX has (see its docstring).
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.onnx.errors import OnnxExporterError

from evaluation.detectors.loading import load_detector
from evaluation.errors import DetectorLoadError
from models_zoo.registry import get_card
from models_zoo.spectral import SpectralDetector, luma

ONNX_OPSET = 17
DYNAMO_OPSET = 18  # the first opset whose Resize has the antialias attribute
ONNX_TOLERANCE = 1e-4  # atol and rtol of onnxruntime's outputs against torch's
_CHECK_BATCH = 2  # images in the random batch each export is checked on (a batch > 1 checks the dynamic axis)
_MAX_REASON = 400
_ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")


class ExportNotSupported(ValueError):
    """The model cannot be written in this format; the message says why (for ONNX: which operator)."""


def export_torchscript(model: nn.Module, path: Path | str, *, input_size: int | None = None) -> Path:
    """Save ``model`` as TorchScript at ``path`` and check that the platform loads it and gets the same outputs.

    The module is *scripted* (``torch.jit.script``), which keeps every branch and so every input size working
    (the probe resizes only when the size differs from its own). Only if scripting fails, and ``input_size`` is
    given, is it *traced* on one fixed batch ``torch.rand(1, 3, S, S)`` (seed 0): a trace freezes
    shape-dependent branches at that size, which is why it is the fallback and not the default. With
    ``input_size`` the saved file is also loaded as the platform loads it and must give exactly the same outputs.
    """
    path = Path(path)
    model = model.eval()
    with warnings.catch_warnings():
        # torch deprecates torch.jit in favour of torch.export, but TorchScript is what the platform loads.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            compiled = torch.jit.script(model)
        except Exception as scripting_error:
            compiled = _traced(model, input_size, scripting_error)
        torch.jit.save(compiled, str(path))
    if input_size is not None:  # without a size there is no batch to compare on (a spectral detector has one S)
        _check_loaded(model, path, "torchscript", input_size, tolerance=0.0)
    return path


def _traced(model: nn.Module, input_size: int | None, scripting_error: Exception) -> torch.jit.ScriptModule:
    reason = _first_line(scripting_error)
    if input_size is None:
        raise ExportNotSupported(f"TorchScript: scripting failed ({reason}) and no input size was given to "
                                 "trace with") from scripting_error
    example = torch.rand(1, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            return torch.jit.trace(model, example)
    except Exception as tracing_error:
        raise ExportNotSupported(f"TorchScript: scripting failed ({reason}) and tracing failed too "
                                 f"({_first_line(tracing_error)})") from tracing_error


def export_onnx(model: nn.Module, path: Path | str, *, input_size: int) -> Path:
    """Save ``model`` as one self-contained ONNX file (float32 N×3×S×S ``image`` in, ``logit`` out, dynamic N).

    A ``SpectralDetector`` is exported as its ``SpectralOnnx`` equivalent. The file is then loaded with the
    platform's loader (onnxruntime, CPU) and its outputs on a random batch must match torch's within
    ``ONNX_TOLERANCE``; otherwise, or when neither exporter can translate an operator, the file is removed and
    ``ExportNotSupported`` says why.
    """
    path = Path(path)
    model = model.eval()
    exportable = SpectralOnnx(model, input_size) if isinstance(model, SpectralDetector) else model
    try:
        _export_legacy(exportable, path, input_size)
    except OnnxExporterError as legacy_error:
        _export_dynamo(exportable, path, input_size, legacy_error)
    try:
        _check_loaded(model, path, "onnx", input_size, tolerance=ONNX_TOLERANCE)
    except Exception:
        path.unlink(missing_ok=True)
        raise
    return path


def _export_legacy(model: nn.Module, path: Path, input_size: int) -> None:
    with _stdout_silenced(), torch.no_grad(), warnings.catch_warnings():
        # Chosen on purpose (the platform's own instructions use it), and the input size is fixed, so shape
        # branches frozen by its trace (TracerWarning) are frozen at the only size the file is used at.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(model, (torch.rand(1, 3, input_size, input_size),), str(path), dynamo=False,
                          opset_version=ONNX_OPSET, input_names=["image"], output_names=["logit"],
                          dynamic_axes={"image": {0: "batch"}, "logit": {0: "batch"}})


def _export_dynamo(model: nn.Module, path: Path, input_size: int, legacy_error: Exception) -> None:
    # An example batch of 2, not 1: torch.export specialises a dimension of size 1 and the batch would not be dynamic.
    example = torch.rand(2, 3, input_size, input_size)
    try:
        with _stdout_silenced(), torch.no_grad():
            torch.onnx.export(model, (example,), str(path), dynamo=True, opset_version=DYNAMO_OPSET,
                              input_names=["image"], output_names=["logit"], external_data=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
    except Exception as dynamo_error:
        path.unlink(missing_ok=True)
        raise ExportNotSupported(
            f"ONNX: the TorchScript-based exporter cannot translate it ({_first_line(legacy_error)}) and the "
            f"dynamo exporter failed too ({_dynamo_reason(dynamo_error)})"
        ) from dynamo_error


def export_safetensors(model: nn.Module, path: Path | str, *, architecture: str, input_size: int) -> Path:
    """Save the state dict with the architecture and input size in the metadata, then load the file as the
    platform does (``load_detector``: ``create_model(architecture, input_size=S)`` and a strict load): weights
    that do not fit raise ValueError, and outputs that are not exactly the model's raise ``ExportNotSupported``
    (the model depends on something its state dict does not hold, such as a probe fitted at another size)."""
    if not get_card(architecture).uploadable:
        raise ValueError(f"zoo entry {architecture!r} is not a detector; a safetensors upload cannot name it")
    # clone(): safetensors refuses tensors that share memory (tied or expanded weights); copies never do.
    state = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in model.state_dict().items()}
    path = Path(path)
    save_file(state, str(path), metadata={"spectra.architecture": architecture, "spectra.input_size": str(input_size)})
    try:
        _check_loaded(model.eval(), path, "safetensors", input_size, tolerance=0.0, architecture=architecture)
    except DetectorLoadError as error:
        path.unlink(missing_ok=True)
        raise ValueError(f"the state dict does not fit {architecture!r} at input size {input_size}: "
                         f"{error.message}") from None
    except ExportNotSupported as error:
        path.unlink(missing_ok=True)
        raise ExportNotSupported(f"safetensors: create_model({architecture!r}, input_size={input_size}) with these "
                                 f"weights gives other outputs ({error}); the model depends on something its state "
                                 "dict does not hold") from None
    return path


def export_all(model: nn.Module, folder: Path | str, *, architecture: str, input_size: int) -> dict[str, Path | str]:
    """``<architecture>.pt``, ``.onnx`` and ``.safetensors`` in ``folder``: format → path, or → the reason
    (an ``ExportNotSupported`` message) for a format the model cannot be written in."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    writers = {
        "torchscript": lambda: export_torchscript(model, folder / f"{architecture}.pt", input_size=input_size),
        "onnx": lambda: export_onnx(model, folder / f"{architecture}.onnx", input_size=input_size),
        "safetensors": lambda: export_safetensors(model, folder / f"{architecture}.safetensors",
                                                  architecture=architecture, input_size=input_size),
    }
    results: dict[str, Path | str] = {}
    for fmt, write in writers.items():
        try:
            results[fmt] = write()
        except ExportNotSupported as exc:
            results[fmt] = str(exc)
    return results


def _check_loaded(model: nn.Module, path: Path, fmt: str, input_size: int, *, tolerance: float,
                  architecture: str = "") -> None:
    """Load ``path`` as the platform does and compare its raw output on a random batch with the model's."""
    batch = _check_batch(input_size)
    detector = load_detector(path, fmt, input_size=input_size, device=torch.device("cpu"), architecture=architecture)
    with torch.no_grad():
        expected = model(batch).to(torch.float64).numpy()
    found = detector.raw_output(batch)
    if found.shape != expected.shape or not np.allclose(found, expected, atol=tolerance, rtol=tolerance):
        gap = float(np.max(np.abs(found - expected))) if found.shape == expected.shape else math.inf
        raise ExportNotSupported(f"{fmt}: the exported file's outputs differ from torch's (shape {found.shape} vs "
                                 f"{expected.shape}, largest difference {gap:.3g}, tolerance {tolerance:g})")


def _check_batch(input_size: int) -> torch.Tensor:
    return torch.rand(_CHECK_BATCH, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    # The TorchScript-based exporter dumps the whole graph to the process's stdout from C++ when an operator is
    # missing (verbose=False does not stop it), and the dynamo one prints progress lines; redirecting file
    # descriptor 1, not just sys.stdout, silences both. The errors themselves still propagate.
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(io.StringIO()):
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _first_line(error: BaseException | str) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    line = lines[0] if lines else type(error).__name__ if isinstance(error, BaseException) else "no detail"
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"


def _dynamo_reason(error: BaseException) -> str:
    """The dynamo exporter's error in one line: the operator it could not translate and the root cause, which
    its message puts under "## Exception summary" after a paragraph of generic advice (with colour codes)."""
    text = _ANSI_CODES.sub("", str(error))
    target = re.search(r"target=torch\.ops\.([\w.]+)", text)
    summary = text.partition("## Exception summary")[2]
    detail = re.sub(r"^<class '[\w.]+'>: ", "", _first_line(summary if summary.strip() else text))
    return f"operator {target.group(1)}: {detail}" if target else detail


def dft_matrices(n: int, columns: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of 2π·j·k/n for j < n, k < ``columns`` (n × columns). The product j·k is reduced mod n in
    integers first, so every angle is below 2π and as exact as a double allows."""
    j, k = torch.arange(n).view(-1, 1), torch.arange(columns).view(1, -1)
    angle = 2 * math.pi * ((j * k) % n).to(torch.float64) / n
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


class SpectralOnnx(nn.Module):
    """A ``SpectralDetector``'s numbers from operators the TorchScript-based ONNX exporter has, for a fixed S.

    - luma: the detector's own ``luma`` (that exporter keeps the weights in float64);
    - the half spectrum ``rfft2``: as real matrix products, F = E_H · G · E_W with E = cos − i·sin, i.e.
      T = G·C_W − i·G·S_W, then Re F = C_H·Re T + S_H·Im T and Im F = C_H·Im T − S_H·Re T
      (the DFT itself, exact up to float64 rounding, instead of an FFT);
    - 20·ln|F + ε| as 10·ln((Re F + ε)² + (Im F)²), as ``RadialProfile`` writes it;
    - the ring sums: one ``scatter_add`` (ONNX ScatterElements with reduction add, which onnxruntime sums
      exactly and in order, checked up to 4,096 rows and 4 threads) over the elements and their mirrored copies,
      in place of the two ``index_add_``.

    The profiles agree with the FFT's within 4e-6 on all 4,416 images of the mini benchmark (within 1e-11 on
    most). They differ where a spectral value is exactly zero (flat or exactly periodic images): the FFT returns
    0 there and the matrix products rounding noise near 1e-10, which 20·ln(|F| + 1e-8) amplifies to up to ~0.04
    (on profile values of about −368, the ε floor) whatever computes F.
    """

    def __init__(self, detector: SpectralDetector, input_size: int) -> None:
        super().__init__()
        profile = detector.profile
        half = input_size // 2 + 1
        if profile.own.numel() != input_size * half:
            raise ValueError(f"this spectral detector was not built for {input_size}×{input_size} images")
        cos_w, sin_w = dft_matrices(input_size, half, profile.dtype)
        cos_h, sin_h = dft_matrices(input_size, input_size, profile.dtype)
        for name, tensor in (("cos_w", cos_w), ("sin_w", sin_w), ("cos_h", cos_h), ("sin_h", sin_h),
                             ("rings", torch.cat([profile.own, profile.mirror])),
                             ("mirrored", profile.mirrored), ("counts", profile.counts),
                             ("weight", detector.weight.detach()), ("bias", detector.bias.detach())):
            self.register_buffer(name, tensor.clone())
        self.bins, self.eps, self.dtype = profile.bins, profile.eps, profile.dtype

    def features(self, x: torch.Tensor) -> torch.Tensor:
        gray = luma(x).to(self.dtype)
        real_t, imag_t = gray @ self.cos_w, -(gray @ self.sin_w)
        real = self.cos_h @ real_t + self.sin_h @ imag_t + self.eps
        imag = self.cos_h @ imag_t - self.sin_h @ real_t
        magnitude = (10 * torch.log(real * real + imag * imag)).flatten(1).to(torch.float64)
        values = torch.cat([magnitude, magnitude.index_select(1, self.mirrored)], dim=1)
        sums = torch.zeros(values.shape[0], self.bins, dtype=torch.float64)
        sums = sums.scatter_add(1, self.rings.expand(values.shape[0], -1), values)
        return (sums / self.counts)[:, 1:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.features(x) @ self.weight + self.bias).to(torch.float32)
