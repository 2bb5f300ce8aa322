"""The architectures a safetensors upload may name, as wired in by the process that evaluates.

A safetensors file is data only: the worker builds the architecture the upload names and loads the tensors
into it. The architectures live in the model zoo, which sits *above* this library (the zoo trains on
evaluation's datasets), so the library does not import it. The evaluating process (the evaluation worker,
the local CLI) wires the zoo in with ``use_architectures``; ``models_zoo.registry`` offers
``build_detector_architecture`` for exactly this.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from evaluation.errors import DetectorLoadError, PlatformFault

if TYPE_CHECKING:
    import torch

# (architecture name, input size) -> the untrained module; raises DetectorLoadError in plain words for a name
# that is not an uploadable architecture.
ArchitectureBuilder = Callable[[str, int], "torch.nn.Module"]

_builder: ArchitectureBuilder | None = None


def use_architectures(builder: ArchitectureBuilder) -> None:
    """Wire in where architectures come from (once per process; the last call wins)."""
    global _builder
    _builder = builder


def build_architecture(name: str, input_size: int) -> torch.nn.Module:
    """The untrained module ``name`` at ``input_size``, from the wired-in registry."""
    if _builder is None:
        raise PlatformFault(
            "this evaluating process has no zoo architectures wired in, so it cannot load safetensors weights "
            "(call evaluation.detectors.architectures.use_architectures at start-up)"
        )
    module = _builder(name, input_size)
    if module is None:
        raise DetectorLoadError(f"the architecture {name!r} could not be built")
    return module
