"""Load an accepted detector artifact and turn its raw output into the logit of "generated".

Runs only in the evaluation worker (its sandbox): TorchScript carries code. The web process recognised the
upload with ``formats.sniff_artifact``; ``load_detector`` checks the bytes again, then deserialises. A
safetensors upload is data only: the zoo builds the architecture it names and the tensors are loaded into it.

Contract (DESIGN.md, "Detector"): input float32 N×3×S×S in [0, 1], S the declared input size; output N or
N×1 logits of "generated" (sigmoid) or N×2 logits [real, generated] (softmax, column 1). Scores are kept as
logits (for N×2: logit[generated] − logit[real], the logit of the softmax probability), which float32 storage
keeps in order; probabilities would round to 1.0 for every logit above ~17 and tie a confident detector's images.
"""
from __future__ import annotations

import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy
import onnx
import onnxruntime
import torch
from onnx.external_data_helper import _get_all_tensors, uses_external_data

from evaluation.detectors.architectures import build_architecture
from evaluation.detectors.formats import ArtifactFormat, sniff_artifact
from evaluation.detectors.onnx_bytes import (
    EXTERNAL_DATA_ADVICE,
    input_channels_message,
    input_rank_message,
    input_type_message,
    inputs_message,
)
from evaluation.errors import (
    ArtifactRejected,
    DetectorCapabilityError,
    DetectorLoadError,
    DetectorOutputError,
    EvaluationError,
)
from evaluation.metrics import LOGIT_LIMIT

# Out-of-memory is about our batch size and hardware, not the submitter's model: let the worker see it.
_RESOURCE_ERRORS: tuple[type[BaseException], ...] = (MemoryError, torch.cuda.OutOfMemoryError)
_MAX_DETAIL = 300
# What isolates a detector loaded into the evaluating process itself (the local CLI): nothing.
IN_PROCESS: dict[str, object] = {"sandbox": "none", "network": "the evaluating process's",
                                 "filesystem": "the evaluating process's", "user": "the evaluating process's",
                                 "limits": {}, "full": False}


class Detector(ABC):
    """A loaded detector. ``scores`` is the only thing protocols need; ``raw_output`` is the model itself.

    ``capabilities`` names what optional protocols may use: "outputs" always, "gradients" and "weights"
    when the model is a differentiable torch module, "features" when it has a ``features(x)`` method.
    """

    input_size: int
    device: torch.device
    format: str
    capabilities: frozenset[str] = frozenset({"outputs"})
    isolation: dict[str, object] = IN_PROCESS

    @abstractmethod
    def raw_output(self, batch: torch.Tensor) -> numpy.ndarray:
        """The model's output for ``batch`` as is (no shape or finiteness check)."""

    def scores(self, batch: torch.Tensor) -> numpy.ndarray:
        """The logit of "generated" for each image of an N×3×S×S float batch in [0, 1]: float64, shape (N,)."""
        return self.outputs(batch)[0]

    def outputs(self, batch: torch.Tensor) -> tuple[numpy.ndarray, numpy.ndarray | None]:
        """The logit of "generated" per image, and an attribution detector's class logits (N×C over [real,
        generator₁…], C ≥ 3; None for a binary detector), float64."""
        n = _check_batch(batch, self.input_size)
        try:
            raw = self.raw_output(batch)
        except (EvaluationError, *_RESOURCE_ERRORS):
            raise
        except Exception as exc:
            raise DetectorOutputError(
                f"The detector failed on a batch of {n} images of {self.input_size}×{self.input_size} "
                f"pixels: {describe_error(exc)}"
            ) from exc
        logits = logits_from_output(raw, n)
        raw = numpy.asarray(raw)
        if raw.ndim != 2 or raw.shape[1] < 3:
            return logits, None
        huge = int(numpy.count_nonzero(numpy.abs(raw) > LOGIT_LIMIT))
        if huge:
            raise DetectorOutputError(f"The detector returned class logits beyond float32's range (about ±3.4e38): "
                                      f"{huge} of {raw.size} values.")
        return logits, raw.astype(numpy.float64)

    def features(self, batch: torch.Tensor) -> numpy.ndarray:
        """The model's ``features(x)`` for each image as the model shapes them: float32, (N, D) vectors or
        (N, C, H, W) feature maps (callers that need vectors reshape to (N, -1))."""
        raise DetectorCapabilityError(f"This {self.format} detector has no features(x) method, which this "
                                      "protocol needs: export a TorchScript module that defines one.")

    def logit_gradients(self, batch: torch.Tensor) -> tuple[numpy.ndarray, numpy.ndarray]:
        """Each image's logit (float64, (N,)) and its gradient with respect to that image (float32, N×3×S×S)."""
        raise DetectorCapabilityError(f"A {self.format} detector gives no gradients, which this protocol needs: "
                                      "upload it as TorchScript.")

    def weight_count(self) -> int:
        """How many weights the weight-space analyses move (evaluation.landscape.named_weights)."""
        raise self._no_weights()

    def grid_logits(self, batch: torch.Tensor, points: list[tuple[float, float]], seed: int,
                    normalisation: str) -> numpy.ndarray:
        """Logits of ``batch`` at θ + x·d₁ + y·d₂ for each (x, y), two seeded random directions (float64, G×N)."""
        raise self._no_weights()

    def hessian_vector(self, batch: torch.Tensor, first: numpy.ndarray, second: numpy.ndarray,
                       vector: numpy.ndarray) -> numpy.ndarray:
        """The loss's Hessian times ``vector`` given each image's ℓ' and ℓ'' (float32, one value per weight)."""
        raise self._no_weights()

    def _no_weights(self) -> DetectorCapabilityError:
        return DetectorCapabilityError(f"A {self.format} detector exposes no weights, which this protocol needs: "
                                       "upload it as TorchScript or as safetensors for a zoo architecture.")


class TorchModuleDetector(Detector):
    """A torch module: a TorchScript archive, or a zoo architecture with uploaded safetensors weights."""

    def __init__(self, module: torch.nn.Module, input_size: int, device: torch.device, fmt: ArtifactFormat) -> None:
        self.format = fmt.value
        self.module = module.eval()
        self.input_size = input_size
        self.device = device
        extra = {"features"} if hasattr(module, "features") else set()
        self.capabilities = frozenset({"outputs", "gradients", "weights", *extra})

    def raw_output(self, batch: torch.Tensor) -> numpy.ndarray:
        # Mixed precision where the device has it (CUDA); the same path runs in float32 on the CPU.
        with torch.inference_mode(), torch.autocast("cuda", enabled=self.device.type == "cuda"):
            output = self.module(batch.to(self.device, torch.float32, non_blocking=True))
        if not isinstance(output, torch.Tensor):
            raise DetectorOutputError(
                f"The detector returned a {type(output).__name__}; it must return one tensor of logits."
            )
        if not output.is_floating_point():
            raise DetectorOutputError(f"The detector returned {output.dtype} values; logits must be floats.")
        return output.detach().to("cpu", torch.float64).numpy()

    def features(self, batch: torch.Tensor) -> numpy.ndarray:
        if "features" not in self.capabilities:
            return super().features(batch)
        n = _check_batch(batch, self.input_size)
        with torch.inference_mode():
            output = self.module.features(batch.to(self.device, torch.float32))
        if not isinstance(output, torch.Tensor) or not output.is_floating_point() or output.ndim < 2 or len(output) != n:
            raise DetectorOutputError(f"The detector's features(x) must return one float tensor with a row per image "
                                      f"({n} here), not {_describe_value(output)}.")
        values = output.detach().to("cpu", torch.float32).numpy()
        if not numpy.isfinite(values).all():
            raise DetectorOutputError("The detector's features(x) returned non-finite values (NaN or infinity).")
        return values

    def logit_gradients(self, batch: torch.Tensor) -> tuple[numpy.ndarray, numpy.ndarray]:
        # The gradient of the sum of the batch's logits: in eval mode each image's logit depends on that image
        # alone, so its slice is d logit_i / d x_i. Labels never enter: a protocol's loss is applied outside.
        n = _check_batch(batch, self.input_size)
        images = batch.detach().to(self.device, torch.float32).requires_grad_(True)
        with torch.enable_grad():
            output = self.module(images)
            if not isinstance(output, torch.Tensor) or not output.is_floating_point():
                raise DetectorOutputError(f"The detector returned {_describe_value(output)}; it must return one "
                                          "tensor of float logits.")
            logits = logits_from_output(output.detach().to("cpu", torch.float64).numpy(), n)
            (gradient,) = torch.autograd.grad(select_logit(output, n).sum(), images)
        return logits, gradient.detach().to("cpu", torch.float32).numpy()


    def _logit_of(self, n: int) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda output: select_logit(output, n).reshape(n)

    def weight_count(self) -> int:
        from evaluation.landscape import weight_count

        return weight_count(self.module)

    def grid_logits(self, batch: torch.Tensor, points: list[tuple[float, float]], seed: int,
                    normalisation: str) -> numpy.ndarray:
        from evaluation.landscape import grid_logits, random_directions

        n = _check_batch(batch, self.input_size)
        directions = random_directions(self.module, seed, normalisation)
        values = grid_logits(self.module, self._logit_of(n), batch.to(self.device, torch.float32), directions, points)
        return values.cpu().numpy()

    def hessian_vector(self, batch: torch.Tensor, first: numpy.ndarray, second: numpy.ndarray,
                       vector: numpy.ndarray) -> numpy.ndarray:
        from evaluation.landscape import hessian_vector

        n = _check_batch(batch, self.input_size)

        def tensor(values: numpy.ndarray) -> torch.Tensor:
            return torch.as_tensor(numpy.asarray(values, dtype=numpy.float32), device=self.device)

        product = hessian_vector(self.module, self._logit_of(n), batch.to(self.device, torch.float32), tensor(first),
                                 tensor(second), tensor(vector))
        return product.cpu().numpy()


class OnnxDetector(Detector):
    format = ArtifactFormat.ONNX.value

    def __init__(self, session: onnxruntime.InferenceSession, input_size: int, device: torch.device) -> None:
        self.session = session
        self.input_size = input_size
        self.device = device
        model_input = session.get_inputs()[0]
        self._input_name = model_input.name
        self._output_name = session.get_outputs()[0].name  # extra outputs (e.g. features) are ignored
        batch_dim = model_input.shape[0]
        # A static batch dimension (common in hand-made exports) is served in chunks of that size.
        self._fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None

    def raw_output(self, batch: torch.Tensor) -> numpy.ndarray:
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        if self._fixed_batch is None:
            return self._run(array)
        parts = []
        for start in range(0, len(array), self._fixed_batch):
            chunk = array[start:start + self._fixed_batch]
            padding = numpy.zeros((self._fixed_batch - len(chunk), *chunk.shape[1:]), numpy.float32)
            parts.append(self._run(numpy.concatenate([chunk, padding]))[: len(chunk)])
        return numpy.concatenate(parts)

    def _run(self, array: numpy.ndarray) -> numpy.ndarray:
        output = numpy.asarray(self.session.run([self._output_name], {self._input_name: array})[0])
        if output.dtype.kind != "f":
            raise DetectorOutputError(f"The detector returned {output.dtype} values; logits must be floats.")
        return output.astype(numpy.float64)


def pick_device(hint: str | None = None) -> torch.device:
    """CUDA when available unless ``hint`` is "cpu"; "cuda:1" picks a GPU, "auto"/None/"cuda" the default."""
    if hint == "cpu":
        return torch.device("cpu")
    if hint not in (None, "", "auto", "cuda") and not hint.startswith("cuda:"):
        raise ValueError(f"unknown device hint {hint!r}; expected 'cpu', 'cuda', 'cuda:<n>' or 'auto'")
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(hint if hint and hint.startswith("cuda:") else "cuda")


_LOADED_LABELS = {ArtifactFormat.TORCHSCRIPT: "TorchScript archive", ArtifactFormat.ONNX: "ONNX model",
                  ArtifactFormat.SAFETENSORS: "safetensors file"}


def load_detector(path: Path | str, fmt: ArtifactFormat | str, *, input_size: int,
                  device: torch.device | None = None, architecture: str = "") -> Detector:
    """Load the artifact at ``path`` (already sniffed as ``fmt``); DetectorLoadError if it cannot be.
    ``architecture`` names the zoo entry a safetensors file holds the weights of (ignored otherwise)."""
    path, fmt = Path(path), ArtifactFormat(fmt)
    if input_size < 1:
        raise ValueError(f"input_size must be positive, got {input_size}")
    if fmt is ArtifactFormat.SAFETENSORS and not architecture:
        raise ValueError("a safetensors artifact needs the name of its zoo architecture")
    if not path.is_file():
        raise FileNotFoundError(path)  # our storage's fault, not the submitter's: not a DetectorLoadError
    _check_bytes_again(path, fmt)
    device = device if device is not None else pick_device()
    try:
        if fmt is ArtifactFormat.SAFETENSORS:
            return _load_safetensors(path, architecture, input_size, device)
        return (_load_torchscript if fmt is ArtifactFormat.TORCHSCRIPT else _load_onnx)(path, input_size, device)
    except (EvaluationError, *_RESOURCE_ERRORS):
        raise
    except Exception as exc:
        raise DetectorLoadError(f"The {_LOADED_LABELS[fmt]} could not be loaded: {describe_error(exc)}") from exc


def _check_bytes_again(path: Path, fmt: ArtifactFormat) -> None:
    # Defence in depth: whatever sits in storage now, no loader below is ever handed a pickle or an
    # archive of another kind, even if the upload check was bypassed or the object replaced since.
    try:
        with path.open("rb") as handle:
            sniff_artifact(handle, declared=fmt)
    except ArtifactRejected as exc:
        raise DetectorLoadError(exc.message) from exc


def _load_torchscript(path: Path, input_size: int, device: torch.device) -> Detector:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        module = torch.jit.load(str(path), map_location=device)
    return TorchModuleDetector(module, input_size, device, ArtifactFormat.TORCHSCRIPT)


def _load_safetensors(path: Path, architecture: str, input_size: int, device: torch.device) -> Detector:
    from safetensors.torch import load_file

    module = build_architecture(architecture, input_size)
    state = load_file(str(path), device="cpu")  # data only: no code runs
    _check_state_dict(module.state_dict(), state, architecture)
    module.load_state_dict(state, strict=True)
    return TorchModuleDetector(module.to(device), input_size, device, ArtifactFormat.SAFETENSORS)


def _check_state_dict(expected: dict[str, torch.Tensor], uploaded: dict[str, torch.Tensor], architecture: str) -> None:
    """Name what does not fit, in the architecture's own terms, before load_state_dict's wall of text."""
    missing = sorted(expected.keys() - uploaded.keys())
    unexpected = sorted(uploaded.keys() - expected.keys())
    reshaped = [f"{name} {tuple(uploaded[name].shape)} (expected {tuple(expected[name].shape)})"
                for name in sorted(expected.keys() & uploaded.keys()) if expected[name].shape != uploaded[name].shape]
    problems = [f"{label}: {_first(names)}" for label, names in
                (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped)) if names]
    if problems:
        raise DetectorLoadError(
            f"The safetensors weights do not fit the zoo architecture {architecture!r} at this input size ("
            + "; ".join(problems) + "). Save the state dict of create_model(name, input_size=S) after training."
        )


def _first(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _load_onnx(path: Path, input_size: int, device: torch.device) -> Detector:
    _refuse_external_data(path)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings are not the submitter's concern
    session = onnxruntime.InferenceSession(str(path), options, providers=_onnx_providers(device))
    if "CUDAExecutionProvider" not in session.get_providers():
        device = torch.device("cpu")  # asked for a GPU that onnxruntime cannot use: say where it really runs
    _check_onnx_signature(session, input_size)
    return OnnxDetector(session, input_size, device)


def _onnx_providers(device: torch.device) -> list[str | tuple[str, dict[str, int]]]:
    if device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _refuse_external_data(path: Path) -> None:
    # Weights stored beside the model would be read from paths the model names; uploads are one file.
    model = onnx.load(str(path), load_external_data=False)
    if any(uses_external_data(tensor) for tensor in _get_all_tensors(model)):
        raise DetectorLoadError("The ONNX model keeps its weights in separate external-data files, but an upload "
                                f"is a single file. {EXTERNAL_DATA_ADVICE}")


def _check_onnx_signature(session: onnxruntime.InferenceSession, input_size: int) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise DetectorLoadError(inputs_message([i.name for i in inputs]))
    model_input = inputs[0]
    if model_input.type != "tensor(float)":
        raise DetectorLoadError(input_type_message(model_input.name, model_input.type))
    _check_onnx_input_shape(model_input.name, list(model_input.shape), input_size)


def _check_onnx_input_shape(name: str, shape: list[int | str | None], input_size: int) -> None:
    if len(shape) != 4:
        raise DetectorLoadError(input_rank_message(name, len(shape)))
    if isinstance(shape[1], int) and shape[1] != 3:
        raise DetectorLoadError(input_channels_message(name, shape[1]))
    spatial = [dim for dim in shape[2:] if isinstance(dim, int)]
    if any(dim != input_size for dim in spatial):
        raise DetectorLoadError(
            f"The ONNX model's input {name!r} is fixed at {shape[2]}×{shape[3]} pixels, but the declared "
            f"input size is {input_size}. Declare the size the model was exported with, or export it again."
        )


def probe_detector(detector: Detector, *, batch_size: int = 2) -> None:
    """Run a fixed random batch through ``detector``; DetectorOutputError if it fails or breaks the contract."""
    size = detector.input_size
    generator = torch.Generator().manual_seed(0)
    batch = torch.rand(batch_size, 3, size, size, generator=generator)
    try:
        raw = detector.raw_output(batch)
    except (EvaluationError, *_RESOURCE_ERRORS):
        raise
    except Exception as exc:
        raise DetectorOutputError(
            f"The detector failed on a {batch_size}×3×{size}×{size} probe batch: "
            f"{describe_error(exc).rstrip('.')}. Check the declared input size."
        ) from exc
    logits_from_output(raw, batch_size)


def logits_from_output(raw: numpy.ndarray, n: int) -> numpy.ndarray:
    """Apply the output contract to a raw model output for ``n`` images: the float64 logit of "generated",
    shape (n,), finite and within float32's range (the platform stores it as float32)."""
    raw = numpy.asarray(raw)
    if raw.dtype.kind != "f":
        raise DetectorOutputError(f"The detector returned {raw.dtype} values; logits must be floats.")
    logits = select_logit(raw.astype(numpy.float64), n)
    finite = numpy.isfinite(raw) if raw.ndim == 1 else numpy.isfinite(raw).all(axis=1)
    bad = int(numpy.count_nonzero(~finite))
    if bad:
        raise DetectorOutputError(
            f"The detector returned non-finite values (NaN or infinity) for {bad} of {n} images."
        )
    huge = int(numpy.count_nonzero(numpy.abs(logits) > LOGIT_LIMIT))
    if huge:
        raise DetectorOutputError(
            f"The detector returned logits beyond float32's range (about ±3.4e38) for {huge} of {n} images."
        )
    return logits


def select_logit(raw: numpy.ndarray | torch.Tensor, n: int) -> numpy.ndarray | torch.Tensor:
    """The logit of "generated" from an accepted output shape, for a numpy array or a torch tensor alike."""
    if tuple(raw.shape) in ((n,), (n, 1)):
        return raw.reshape(n)
    if tuple(raw.shape) == (n, 2):
        return raw[:, 1] - raw[:, 0]  # softmax(real, generated)[1] == sigmoid(generated - real)
    if raw.ndim == 2 and raw.shape[0] == n and raw.shape[1] >= 3:
        # [real, generator₁…]: the log-odds of "any generator" under the softmax, log Σ_g e^{z_g} − z_real.
        generated = torch.logsumexp(raw[:, 1:], dim=1) if isinstance(raw, torch.Tensor) else \
            numpy.logaddexp.reduce(raw[:, 1:], axis=1)
        return generated - raw[:, 0]
    raise output_shape_error(tuple(raw.shape), n)


def _describe_value(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def output_shape_error(shape: tuple[int, ...], n: int) -> DetectorOutputError:
    return DetectorOutputError(
        f"The detector returned an output of shape {tuple(shape)} for a batch of {n} images. "
        f"Accepted shapes: ({n},) or ({n}, 1) logits of 'generated', ({n}, 2) logits [real, generated], or "
        f"({n}, G + 1) logits [real, generator₁ … generator_G] over the benchmark's declared generators."
    )


def describe_error(exc: BaseException) -> str:
    """One plain line for an exception: its message's first line, never a traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # The TorchScript interpreter puts its own traceback first and the actual error on the last line.
    if lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        line = re.sub(r"^[\w.]*(Error|Exception): ", "", lines[-1])
    else:
        line = lines[0]
    # torch's zip reader appends a paragraph of generic advice to every error; the first sentence says it.
    line = line.split(" This is an internal miniz error")[0]
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 1] + "…"


def _check_batch(batch: torch.Tensor, input_size: int) -> int:
    # A wrong batch is the caller's bug (the data pipeline), not the submitter's: plain ValueError.
    expected = (3, input_size, input_size)
    if batch.dim() != 4 or tuple(batch.shape[1:]) != expected:
        raise ValueError(f"expected an N×3×{input_size}×{input_size} batch, got {tuple(batch.shape)}")
    return int(batch.shape[0])
