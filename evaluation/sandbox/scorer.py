"""The trusted side of the scorer: one sandboxed child per artifact, fed tensors, watched by the clock.

The evaluation worker decodes and batches images itself and hands the child float32 tensors only; the child
answers with raw outputs, which are checked here against the detector contract. Every call has a deadline:
the load, the probe batch, then each batch within a budget derived from the probe's time per image. A child
that misses one is killed, one that dies is described by how it ended; both are the detector's fault.
"""
from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluation.detectors.formats import ArtifactFormat
from evaluation.detectors.loading import Detector, output_shape_error, pick_device, probe_detector
from evaluation.errors import (
    DetectorCrash,
    DetectorLoadError,
    DetectorOutputError,
    DetectorTimeout,
    EvaluationError,
    PlatformFault,
    UserFault,
)
from evaluation.messages import ShardRequest
from evaluation.runner import DetectorSource
from evaluation.sandbox.child import MAX_VALUES_PER_IMAGE
from evaluation.sandbox.frames import FrameError, FrameTimeout, read_frame, write_frame
from evaluation.sandbox.launch import Isolation, ScorerLimits, scorer_launch

log = logging.getLogger(__name__)
_TAIL_LINES = 40
ANALYSIS_COST = 4  # a features or gradients batch may take this many times a scoring batch's time per image
MAX_FEATURES_PER_IMAGE = 1 << 16  # float32 values a features(x) answer may hold per image
_EXIT_WAIT_SECONDS = 5.0


def describe_exit(code: int | None, *, sandboxed: bool) -> str:
    """How a child ended, in words: bubblewrap reports a signal that ended its command as 128 + the signal."""
    if code is None:
        return "stopped answering"
    number = -code if code < 0 else code - 128 if sandboxed and code > 128 else 0
    if number:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        meaning = {"SIGSEGV": " (a segmentation fault)", "SIGABRT": " (an abort)", "SIGKILL": " (killed)",
                   "SIGXCPU": " (its CPU time limit)", "SIGBUS": " (a bus error)"}.get(name, "")
        return f"was ended by {name}{meaning}"
    return f"exited with status {code}"


class ScorerProcess:
    """One running scorer child and the two pipes to it."""

    def __init__(self, model: Path, *, cuda: bool, limits: ScorerLimits, wire: Sequence[str]) -> None:
        child_requests, self._requests = os.pipe()
        self._replies, child_replies = os.pipe()
        try:
            launch = scorer_launch(model, requests=child_requests, replies=child_replies, cuda=cuda, limits=limits,
                                   wire=wire)
            self.process = subprocess.Popen(
                launch.argv, env=launch.env, pass_fds=launch.pass_fds, preexec_fn=launch.preexec,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            os.close(child_requests)
            os.close(child_replies)
        self.isolation: Isolation = launch.isolation
        self.model_path, self._cleanup = launch.model_path, launch.cleanup
        for fd in (self._requests, self._replies):
            os.set_blocking(fd, False)
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        threading.Thread(target=self._drain, daemon=True, name="scorer-output").start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # whatever the model prints; kept for the log only
            self.tail.append(line.decode(errors="replace").rstrip()[:500])

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, header: dict[str, Any], payload: bytes | memoryview = b"", *, budget: float, doing: str,
             max_payload: int = 0) -> tuple[dict[str, Any], bytearray]:
        """Send one request and wait at most ``budget`` seconds for the answer."""
        deadline = time.monotonic() + budget
        try:
            write_frame(self._requests, header, payload, deadline=deadline)
            return read_frame(self._replies, deadline=deadline, max_payload=max_payload)
        except FrameTimeout:
            self.kill()
            raise DetectorTimeout(f"The detector did not answer within {budget:.0f} s while {doing}, so its "
                                  "process was stopped.") from None
        except FrameError:
            ended = describe_exit(self._exit_code(), sandboxed=self.isolation.sandbox == "bubblewrap")
            self.kill()
            log.warning("scorer child %s while %s; its last output: %s", ended, doing, " | ".join(self.tail))
            raise DetectorCrash(f"The detector's process {ended} while {doing}.") from None

    def _exit_code(self) -> int | None:
        try:
            return self.process.wait(_EXIT_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.alive:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for fd in (self._requests, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        self._requests = self._replies = -1
        self._cleanup()

    def close(self) -> None:
        """Ask the child to exit, then make sure it has."""
        if self.alive and self._requests >= 0:
            try:
                write_frame(self._requests, {"op": "exit"}, deadline=time.monotonic() + 1)
                self.process.wait(_EXIT_WAIT_SECONDS)
            except (FrameError, subprocess.TimeoutExpired):
                pass
        self.kill()


def _answer_error(header: dict[str, Any], loading: bool) -> EvaluationError:
    message = str(header.get("message") or "the scorer failed without saying why")[:1000]
    if header.get("kind") == "user":
        return DetectorLoadError(message) if loading else DetectorOutputError(message)
    return PlatformFault(message)


class SandboxedDetector(Detector):
    """A detector that runs in a scorer child: ``raw_output`` sends the batch and checks what comes back."""

    def __init__(self, process: ScorerProcess, *, fmt: ArtifactFormat, input_size: int, device: torch.device,
                 limits: ScorerLimits, architecture: str = "") -> None:
        self.process, self.format, self.input_size, self.limits = process, fmt.value, input_size, limits
        header, _ = process.call(
            {"op": "load", "path": process.model_path, "format": fmt.value, "input_size": input_size,
             "device": str(device), "architecture": architecture, "threads": torch.get_num_threads()},
            budget=limits.load_seconds, doing="loading the model")
        if not header.get("ok"):  # the caller (ScorerCache) closes the process
            raise _answer_error(header, loading=True)
        self.device = torch.device(str(header.get("device", "cpu")))
        self.capabilities = frozenset(str(c) for c in header.get("capabilities", ["outputs"]))
        self.isolation = process.isolation.to_dict()
        self._seconds_per_image: float | None = None  # set by the first batch, the probe
        self.tainted = False  # it has been sent what reveals labels (a loss's derivatives): never reused

    def raw_output(self, batch: torch.Tensor) -> np.ndarray:
        n = int(batch.shape[0])
        probing = self._seconds_per_image is None
        budget = self.limits.probe_seconds if probing else self.limits.batch_seconds(self._seconds_per_image, n)
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        started = time.monotonic()
        header, payload = self.process.call(
            {"op": "outputs", "shape": list(array.shape)}, memoryview(array).cast("B"), budget=budget,
            doing=f"scoring {'its probe batch' if probing else 'a batch'} of {n} images",
            max_payload=8 * MAX_VALUES_PER_IMAGE * max(n, 1))
        if probing:
            self._seconds_per_image = (time.monotonic() - started) / max(n, 1)
        return self._decode(header, payload, n)

    def _analysis_call(self, op: str, batch: torch.Tensor, *, max_payload: int, cost: float = 1.0,
                       extra: dict[str, Any] | None = None,
                       tail: np.ndarray | None = None) -> tuple[dict[str, Any], bytearray]:
        """An analysis request (features, gradients, grid, hvp): a batch's budget times ``ANALYSIS_COST`` and
        ``cost`` (forward passes per image), or the probe's budget before any batch was scored; ``tail`` is sent
        after the batch."""
        n = int(batch.shape[0])
        per_image = self._seconds_per_image
        budget = (self.limits.probe_seconds * cost if per_image is None
                  else self.limits.batch_seconds(per_image * ANALYSIS_COST * cost, n))
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        body = memoryview(array).cast("B") if tail is None else array.tobytes() + np.ascontiguousarray(tail).tobytes()
        header, payload = self.process.call({"op": op, "shape": list(array.shape), **(extra or {})}, body,
                                            budget=budget, doing=f"computing {op} of {n} images",
                                            max_payload=max_payload)
        if not header.get("ok"):
            raise _answer_error(header, loading=False)
        return header, payload

    def features(self, batch: torch.Tensor) -> np.ndarray:
        if "features" not in self.capabilities:
            return super().features(batch)
        n = int(batch.shape[0])
        header, payload = self._analysis_call("features", batch, max_payload=4 * MAX_FEATURES_PER_IMAGE * max(n, 1))
        shape = tuple(int(d) for d in header.get("shape", ()))
        if len(shape) < 2 or shape[0] != n or int(np.prod(shape, dtype=np.int64)) * 4 != len(payload):
            raise DetectorOutputError(f"The detector's features(x) came back as shape {shape} for {n} images.")
        return np.frombuffer(payload, dtype="<f4").reshape(shape)

    def logit_gradients(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if "gradients" not in self.capabilities:
            return super().logit_gradients(batch)
        n, pixels = int(batch.shape[0]), int(np.prod(batch.shape[1:]))
        expected = 8 * n + 4 * n * pixels
        header, payload = self._analysis_call("gradients", batch, max_payload=expected)
        if tuple(header.get("shape", ())) != tuple(batch.shape) or len(payload) != expected:
            raise DetectorOutputError(f"The detector's gradients came back as shape {header.get('shape')} for a "
                                      f"batch of shape {tuple(batch.shape)}.")
        logits = np.frombuffer(payload, dtype="<f8", count=n)
        return logits, np.frombuffer(payload, dtype="<f4", offset=8 * n).reshape(batch.shape)

    def weight_count(self) -> int:
        if "weights" not in self.capabilities:
            return super().weight_count()
        header, _ = self.process.call({"op": "weights"}, budget=self.limits.probe_seconds, doing="counting its weights")
        if not header.get("ok"):
            raise _answer_error(header, loading=False)
        return int(header["count"])

    def grid_logits(self, batch: torch.Tensor, points: list[tuple[float, float]], seed: int,
                    normalisation: str) -> np.ndarray:
        if "weights" not in self.capabilities:
            return super().grid_logits(batch, points, seed, normalisation)
        n = int(batch.shape[0])
        header, payload = self._analysis_call(
            "grid", batch, max_payload=8 * n * len(points), cost=len(points),
            extra={"seed": seed, "normalisation": normalisation}, tail=np.asarray(points, dtype="<f8"))
        if tuple(header.get("shape", ())) != (len(points), n) or len(payload) != 8 * n * len(points):
            raise DetectorOutputError(f"The loss surface came back as shape {header.get('shape')} for "
                                      f"{len(points)} points and {n} images.")
        return np.frombuffer(payload, dtype="<f8").reshape(len(points), n)

    def hessian_vector(self, batch: torch.Tensor, first: np.ndarray, second: np.ndarray,
                       vector: np.ndarray) -> np.ndarray:
        """The request carries each image's loss derivatives, from which its label can be inferred: the child
        is marked so that the cache never scores with it again (``tainted``)."""
        if "weights" not in self.capabilities:
            return super().hessian_vector(batch, first, second, vector)
        self.tainted = True
        extra = np.concatenate([np.asarray(first, "<f4"), np.asarray(second, "<f4"), np.asarray(vector, "<f4")])
        header, payload = self._analysis_call("hvp", batch, max_payload=4 * len(vector), cost=4, tail=extra)
        if tuple(header.get("shape", ())) != (len(vector),) or len(payload) != 4 * len(vector):
            raise DetectorOutputError(f"The Hessian-vector product came back as shape {header.get('shape')} for "
                                      f"{len(vector)} weights.")
        return np.frombuffer(payload, dtype="<f4").copy()

    def _decode(self, header: dict[str, Any], payload: bytearray, n: int) -> np.ndarray:
        if not header.get("ok"):
            raise _answer_error(header, loading=False)
        shape = tuple(int(d) for d in header.get("shape", ()))
        if header.get("dtype") != "float64":
            raise DetectorOutputError(f"The detector returned {header.get('dtype')} values; logits must be floats.")
        if header.get("withheld") or int(np.prod(shape, dtype=np.int64)) * 8 != len(payload):
            raise output_shape_error(shape, n)
        return np.frombuffer(payload, dtype="<f8").reshape(shape)

    def close(self) -> None:
        self.process.close()


def _key(request: ShardRequest) -> tuple:
    """What makes two shards' detectors the same: the artifact and how it is loaded."""
    return (request.artifact_sha256, request.artifact_format, request.input_size, request.artifact_architecture,
            request.device_hint)


class ScorerCache(DetectorSource):
    """The scorer child of the artifact this worker process is busy with: one child serves all its shards.

    A detector that failed (load, probe, a batch, a timeout, a crash) is remembered, so the artifact's other
    shards on this worker fail at once with the same words instead of each waiting out its budget.
    """

    def __init__(self, limits: ScorerLimits | None = None, wire: Sequence[str] = ()) -> None:
        self.limits = limits or ScorerLimits.from_env()
        self.wire = tuple(wire)
        self._current: tuple[tuple, SandboxedDetector] | None = None
        self._failed: collections.OrderedDict[tuple, UserFault] = collections.OrderedDict()

    def open(self, request: ShardRequest, model: Path) -> SandboxedDetector:
        return self.open_child(_key(request), model, fmt=ArtifactFormat(request.artifact_format),
                               input_size=request.input_size, device=pick_device(request.device_hint),
                               architecture=request.artifact_architecture)

    def failed(self, request: ShardRequest, fault: UserFault) -> None:
        self.remember(_key(request), fault)

    def open_child(self, key: tuple, model: Path, *, fmt: ArtifactFormat, input_size: int, device: torch.device,
                   architecture: str = "") -> SandboxedDetector:
        """The live, probed child for ``key`` (the artifact's identity), started if need be."""
        if key in self._failed:
            earlier = self._failed[key]
            raise type(earlier)(f"{earlier.message} (This detector failed the same way on an earlier shard.)")
        current = self._current
        if current is not None and current[0] == key and current[1].process.alive and not current[1].tainted:
            return current[1]
        self.close()
        process = ScorerProcess(model, cuda=device.type == "cuda", limits=self.limits, wire=self.wire)
        try:
            detector = SandboxedDetector(process, fmt=fmt, input_size=input_size, device=device, limits=self.limits,
                                         architecture=architecture)
            probe_detector(detector)
        except BaseException as error:
            process.close()
            if isinstance(error, UserFault):
                self.remember(key, error)
            raise
        self._current = (key, detector)
        return detector

    def remember(self, key: tuple, fault: UserFault) -> None:
        self._failed[key] = fault
        while len(self._failed) > 100:
            self._failed.popitem(last=False)
        if self._current is not None and self._current[0] == key:
            self.close()

    def close(self) -> None:
        if self._current is not None:
            self._current[1].close()
            self._current = None
