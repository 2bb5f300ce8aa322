"""The scorer child: loads one detector and turns float32 batches into raw outputs, and for the analysis
protocols into features and input gradients of the logits; nothing else.

    python -m evaluation.sandbox.child --requests 3 --replies 4 [--wire models_zoo.registry]

It is started by ``evaluation.sandbox.scorer`` inside the sandbox, with the model file as its only data. It
reads frames (``evaluation.sandbox.frames``) from the requests pipe and answers on the replies pipe; it never
gets a path other than the model's, a label or a manifest. Anything it says is checked by the trusted side.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

import numpy as np

from evaluation.attribution import MAX_CLASSES

# Above this many output values per image the child names the shape instead of sending the values: the
# contract allows one logit per class of an attribution detector at most (evaluation.attribution), and the
# trusted side should never be made to buffer more.
MAX_VALUES_PER_IMAGE = MAX_CLASSES


def _error(exc: BaseException) -> dict[str, Any]:
    from evaluation.detectors.loading import describe_error
    from evaluation.errors import EvaluationError

    if isinstance(exc, EvaluationError):
        return {"ok": False, "kind": exc.kind, "message": exc.message}
    if isinstance(exc, MemoryError):  # the child's memory is the detector's alone
        return {"ok": False, "kind": "user", "message": "The detector ran out of the memory its sandbox allows."}
    return {"ok": False, "kind": "platform", "message": f"the scorer failed: {describe_error(exc)}"}


def _load(header: dict[str, Any]) -> Any:
    import torch

    from evaluation.detectors.loading import load_detector

    torch.set_num_threads(max(1, int(header.get("threads") or 1)))
    return load_detector(header["path"], header["format"], input_size=int(header["input_size"]),
                         device=torch.device(header["device"]), architecture=header.get("architecture", ""))


def _model_call(call: Any, batch: Any, doing: str) -> Any:
    """``call(batch)``; what the model raises is the model's fault, as in the worker's own process."""
    from evaluation.detectors.loading import describe_error
    from evaluation.errors import DetectorOutputError, EvaluationError

    try:
        return call(batch)
    except EvaluationError:
        raise
    except Exception as exc:
        raise DetectorOutputError(f"The detector failed {doing} a batch of {batch.shape[0]} images of "
                                  f"{batch.shape[-1]}×{batch.shape[-1]} pixels: {describe_error(exc)}") from exc


def _batch(header: dict[str, Any], payload: bytearray) -> Any:
    import torch

    shape = [int(dim) for dim in header["shape"]]
    return torch.frombuffer(payload, dtype=torch.float32).reshape(shape) if payload else torch.empty(shape)


def _outputs(detector: Any, header: dict[str, Any], payload: bytearray) -> tuple[dict[str, Any], bytes]:
    batch = _batch(header, payload)
    raw = np.asarray(_model_call(detector.raw_output, batch, "on"))
    if raw.dtype.kind != "f":
        return {"ok": True, "shape": list(raw.shape), "dtype": str(raw.dtype)}, b""
    if raw.size > MAX_VALUES_PER_IMAGE * max(batch.shape[0], 1):
        return {"ok": True, "shape": list(raw.shape), "dtype": "float64", "withheld": True}, b""
    values = np.ascontiguousarray(raw, dtype="<f8")
    return {"ok": True, "shape": list(values.shape), "dtype": "float64"}, values.tobytes()


def _features(detector: Any, header: dict[str, Any], payload: bytearray) -> tuple[dict[str, Any], bytes]:
    features = _model_call(detector.features, _batch(header, payload), "computing the features of")
    values = np.ascontiguousarray(features, dtype="<f4")
    return {"ok": True, "shape": list(values.shape), "dtype": "float32"}, values.tobytes()


def _gradients(detector: Any, header: dict[str, Any], payload: bytearray) -> tuple[dict[str, Any], bytes]:
    """The logits (float64) then the gradients (float32, the batch's shape), one after the other."""
    logits, gradients = _model_call(detector.logit_gradients, _batch(header, payload), "computing the gradients of")
    body = np.ascontiguousarray(logits, dtype="<f8").tobytes() + np.ascontiguousarray(gradients, dtype="<f4").tobytes()
    return {"ok": True, "shape": list(gradients.shape)}, body


def _weights(detector: Any, header: dict[str, Any], payload: bytearray) -> tuple[dict[str, Any], bytes]:
    return {"ok": True, "count": int(detector.weight_count())}, b""


def _grid(detector: Any, header: dict[str, Any], payload: bytearray) -> tuple[dict[str, Any], bytes]:
    """Logits at each grid point (float64, G×N) for the batch, on two directions the child draws from the seed.
    The payload is the batch (float32), then the points as (x, y) float64 pairs: a fine grid would not fit a
    frame's header."""
    pixels = 4 * int(np.prod([int(d) for d in header["shape"]]))
    batch = _batch(header, payload[:pixels])
    points = [(float(x), float(y)) for x, y in np.frombuffer(payload, dtype="<f8", offset=pixels).reshape(-1, 2)]
    values = _model_call(lambda b: detector.grid_logits(b, points, int(header["seed"]), str(header["normalisation"])),
                         batch, "evaluating the loss surface on")
    out = np.ascontiguousarray(values, dtype="<f8")
    return {"ok": True, "shape": list(out.shape)}, out.tobytes()


def _hvp(detector: Any, header: dict[str, Any], payload: bytearray) -> tuple[dict[str, Any], bytes]:
    """H v: the payload is the batch, then ℓ' and ℓ'' per image, then v (all float32)."""
    shape = [int(d) for d in header["shape"]]
    n, pixels = shape[0], int(np.prod(shape))
    values = np.frombuffer(payload, dtype="<f4")
    batch = _batch(header, payload[:4 * pixels])
    first, second, vector = values[pixels:pixels + n], values[pixels + n:pixels + 2 * n], values[pixels + 2 * n:]
    product = _model_call(lambda b: detector.hessian_vector(b, first, second, vector), batch,
                          "computing a Hessian-vector product on")
    out = np.ascontiguousarray(product, dtype="<f4")
    return {"ok": True, "shape": list(out.shape)}, out.tobytes()


_ANALYSIS_OPS = {"features": _features, "gradients": _gradients, "weights": _weights, "grid": _grid, "hvp": _hvp}


def serve(requests: int, replies: int) -> None:
    from evaluation.sandbox.frames import FrameError, read_frame, write_frame

    detector = None
    while True:
        try:
            header, payload = read_frame(requests)
        except FrameError:
            return  # the worker closed the pipe: nothing more to do
        op = header.get("op")
        if op == "exit":
            return
        try:
            if op == "load":
                detector = _load(header)
                write_frame(replies, {"ok": True, "capabilities": sorted(detector.capabilities),
                                      "device": str(detector.device)})
            elif op == "outputs" and detector is not None:
                write_frame(replies, *_outputs(detector, header, payload))
            elif op in _ANALYSIS_OPS and detector is not None:
                write_frame(replies, *_ANALYSIS_OPS[op](detector, header, payload))
            else:
                write_frame(replies, {"ok": False, "kind": "platform", "message": f"unknown request {op!r}"})
        except Exception as exc:  # every failure is an answer in plain words; the worker decides what it means
            write_frame(replies, _error(exc))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m evaluation.sandbox.child")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--replies", type=int, required=True)
    parser.add_argument("--wire", action="append", default=[], help="modules that wire in architectures")
    args = parser.parse_args()
    for module in args.wire:
        importlib.import_module(module)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    serve(args.requests, args.replies)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
