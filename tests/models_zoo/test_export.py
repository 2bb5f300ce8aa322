"""Every zoo detector exports to TorchScript, ONNX and safetensors, and each file gives the model's outputs back.

The detectors are perturbed first (seeded noise on every floating parameter, a random decision for the spectral
ones), so an export that dropped weights or a decision would not pass by returning the untrained constant.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from models_zoo.export import ExportNotSupported, SpectralOnnx, export_all, export_onnx, export_safetensors
from models_zoo.registry import create_model, list_cards
from models_zoo.spectral import SpectralDetector, fit_detector
from tests.reference import json_rows, load_images

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")

SIZE = 64
DETECTORS = [card.name for card in list_cards("detector")]
# Entries whose ONNX export must raise ExportNotSupported, with a word its reason must contain. Empty today: the
# spectral detectors export as SpectralOnnx, the probe through the dynamo exporter (antialiased Resize, opset 18).
ONNX_UNSUPPORTED: dict[str, str] = {}


@dataclass
class Exported:
    name: str
    model: torch.nn.Module
    files: dict[str, Path | str]
    batches: dict[str, torch.Tensor]
    outputs: dict[str, torch.Tensor]


def _perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every floating tensor of the state dict moved (in place): ~1 % relative noise, which keeps signs (running
    variances stay positive); tensors that are all zero (an untrained decision: probe head, k-means centres) get
    absolute noise. The spectral detector gets a random decision of the size a fitted one has."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if isinstance(model, SpectralDetector):  # profiles are ~±300 around the ε floor: logits of ~±10
            model.weight.copy_(torch.randn(model.weight.shape, generator=generator, dtype=torch.float64) * 0.02)
            model.bias.fill_(float(torch.randn(1, generator=generator)))
            return model.eval()
        for tensor in model.state_dict().values():  # these share memory with the parameters and buffers
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
                tensor.add_(noise * 0.1) if not tensor.any() else tensor.mul_(1 + 0.01 * noise)
    return model.eval()


def _real_images(root: Path) -> torch.Tensor:
    """Two real and two generated test images of the mini benchmark (two generator families)."""
    rows = [row for row in json_rows(root) if row["split"] == "test"]
    real = [row for row in rows if row["label"] == 0][:2]
    generated = [next(row for row in rows if row["generator"] == name) for name in ("upsample", "gan")]
    return load_images(root, real + generated, SIZE)


@pytest.fixture(scope="module", params=DETECTORS)
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mini_root: Path) -> Exported:
    name = request.param
    model = _perturbed(create_model(name, input_size=SIZE))
    files = export_all(model, tmp_path_factory.mktemp(name), architecture=name, input_size=SIZE)
    batches = {"random": torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)),
               "real": _real_images(mini_root)}
    with torch.no_grad():
        outputs = {label: model(batch) for label, batch in batches.items()}
    return Exported(name, model, files, batches, outputs)


def test_the_perturbed_detector_is_neither_constant_nor_the_untrained_one(exported: Exported) -> None:
    # Otherwise an export that lost the weights could still reproduce the outputs (thresholds: 10× the ONNX tolerance).
    outputs = torch.cat(list(exported.outputs.values()))
    untrained = create_model(exported.name, input_size=SIZE).eval()
    with torch.no_grad():
        before = torch.cat([untrained(batch) for batch in exported.batches.values()])
    assert float(outputs.max() - outputs.min()) > 1e-3
    assert float((outputs - before).abs().max()) > 1e-3


def test_torchscript_gives_exactly_the_same_outputs(exported: Exported) -> None:
    path = exported.files["torchscript"]
    assert isinstance(path, Path) and path.name == f"{exported.name}.pt"
    module = torch.jit.load(str(path))
    with torch.no_grad():
        for label, batch in exported.batches.items():
            assert torch.equal(module(batch), exported.outputs[label]), label


def test_safetensors_rebuilds_the_same_detector(exported: Exported) -> None:
    path = exported.files["safetensors"]
    assert isinstance(path, Path) and path.name == f"{exported.name}.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata() == {"spectra.architecture": exported.name, "spectra.input_size": str(SIZE)}
    rebuilt = create_model(exported.name, input_size=SIZE)
    rebuilt.load_state_dict(load_file(str(path)), strict=True)
    rebuilt.eval()
    with torch.no_grad():
        for label, batch in exported.batches.items():
            assert torch.equal(rebuilt(batch), exported.outputs[label]), label


def test_onnx_runs_in_onnxruntime_with_the_same_outputs_or_says_why_not(exported: Exported) -> None:
    if exported.name in ONNX_UNSUPPORTED:
        assert isinstance(exported.files["onnx"], str) and ONNX_UNSUPPORTED[exported.name] in exported.files["onnx"]
        with pytest.raises(ExportNotSupported, match=ONNX_UNSUPPORTED[exported.name]):
            export_onnx(exported.model, Path(exported.files["torchscript"]).with_suffix(".onnx"), input_size=SIZE)
        return
    path = exported.files["onnx"]
    assert isinstance(path, Path), path  # the reason, when the export was refused
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(path.name)] == [path.name]  # no .data file
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (image,) = session.get_inputs()
    assert (image.name, image.type, image.shape[1:]) == ("image", "tensor(float)", [3, SIZE, SIZE])
    assert isinstance(image.shape[0], str)  # a dynamic batch dimension
    for label, batch in exported.batches.items():
        found = session.run(None, {"image": batch.numpy()})[0]
        expected = exported.outputs[label].numpy()
        assert found.shape == expected.shape and np.allclose(found, expected, atol=1e-4, rtol=1e-4), label


def _spectral_split(root: Path, split: str, per_group: int) -> tuple[torch.Tensor, np.ndarray]:
    rows = [row for row in json_rows(root) if row["split"] == split]
    groups = sorted({row["generator"] or "" for row in rows})
    picked = [row for group in groups for row in [r for r in rows if (r["generator"] or "") == group][:per_group]]
    return load_images(root, picked, SIZE), np.array([row["label"] for row in picked])


def test_the_fitted_spectral_detector_scores_real_images_alike_in_onnx_and_torchscript(mini_root, tmp_path) -> None:
    train_x, train_y = _spectral_split(mini_root, "train", 20)
    test_x, _ = _spectral_split(mini_root, "test", 10)  # 60 images: every generator family and the real ones
    detector = fit_detector("lr", train_x.double(), train_y)
    with torch.no_grad():  # the equivalent computes the same profiles (FFT vs matrix DFT: rounding only)
        assert torch.allclose(SpectralOnnx(detector, SIZE).features(test_x), detector.features(test_x),
                              rtol=0, atol=1e-5)
    files = export_all(detector, tmp_path, architecture="spectral-lr", input_size=SIZE)
    scripted = torch.jit.load(str(files["torchscript"]))
    session = onnxruntime.InferenceSession(str(files["onnx"]), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = scripted(test_x).numpy()
    assert expected.std() > 0.1
    found = session.run(None, {"image": test_x.numpy()})[0]  # one batch of 60: the ring sums are batched too
    assert np.allclose(found, expected, rtol=0, atol=1e-4)


def test_the_spectral_onnx_file_uses_only_plain_operators(tmp_path) -> None:
    # No DFT and no ScatterND: the dynamo exporter's versions of those give other numbers (see models_zoo.export).
    path = export_onnx(_perturbed(create_model("spectral-svm", input_size=32)), tmp_path / "s.onnx", input_size=32)
    model = onnx.load(str(path))
    assert {op.version for op in model.opset_import if op.domain in ("", "ai.onnx")} == {17}
    operators = {node.op_type for node in model.graph.node}
    assert {"MatMul", "ScatterElements", "Log"} <= operators and not {"DFT", "ScatterND"} & operators


class Histogram(torch.nn.Module):
    """spectral-lr's state-dict layout at 8 px, but a histogram as the output: no ONNX exporter has histc, and the
    weights alone do not rebuild it."""

    def __init__(self) -> None:
        super().__init__()
        layout = create_model("spectral-lr", input_size=8)
        self.weight = torch.nn.Parameter(layout.weight.detach().clone(), requires_grad=False)
        self.bias = torch.nn.Parameter(layout.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.histc(x, bins=4)[:1].expand(x.shape[0]) + self.bias.float()


def test_an_operator_no_exporter_has_is_named_and_leaves_no_file(tmp_path) -> None:
    path = tmp_path / "h.onnx"
    with pytest.raises(ExportNotSupported, match="aten::histc") as caught:
        export_onnx(Histogram(), path, input_size=8)
    assert isinstance(caught.value, ValueError) and "dynamo exporter failed too" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_export_all_gives_the_reason_for_a_format_it_cannot_write(tmp_path) -> None:
    files = export_all(Histogram(), tmp_path, architecture="spectral-lr", input_size=8)
    assert files["torchscript"] == tmp_path / "spectral-lr.pt" and files["torchscript"].is_file()
    assert isinstance(files["onnx"], str) and "aten::histc" in files["onnx"]
    assert isinstance(files["safetensors"], str) and "gives other outputs" in files["safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spectral-lr.pt"]


def test_safetensors_refuses_a_state_dict_of_another_shape_or_a_non_detector(tmp_path) -> None:
    model = _perturbed(create_model("spectral-lr", input_size=SIZE))
    with pytest.raises(ValueError, match="does not fit"):  # a 64 px profile has 43 values, a 128 px one 88
        export_safetensors(model, tmp_path / "w.safetensors", architecture="spectral-lr", input_size=128)
    with pytest.raises(ValueError, match="not a detector"):
        export_safetensors(model, tmp_path / "w.safetensors", architecture="triplet-standard", input_size=SIZE)
    assert list(tmp_path.iterdir()) == []
