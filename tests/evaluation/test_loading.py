"""load_detector / probe_detector on real TorchScript and ONNX files, against an eager reference."""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from evaluation.detectors.formats import ArtifactFormat
from evaluation.detectors.loading import (
    Detector,
    load_detector,
    logits_from_output,
    pick_device,
    probe_detector,
)
from evaluation.errors import DetectorLoadError, DetectorOutputError
from tests import detector_files

CPU = torch.device("cpu")
OUTPUTS = ["logit", "logit1", "two"]
CODE_FORMATS = [ArtifactFormat.TORCHSCRIPT, ArtifactFormat.ONNX]  # the formats that carry their own graph


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("detectors")


def natural_images(n: int, size: int) -> torch.Tensor:
    """Smooth gradients, stripes and noise: images whose scores should differ."""
    generator = torch.Generator().manual_seed(1)
    ramp = torch.linspace(0, 1, size)
    images = [
        ramp.view(1, 1, size).expand(3, size, size),
        ramp.view(1, size, 1).expand(3, size, size).flip(0),
        (torch.sin(ramp * 40).view(1, 1, size) * 0.5 + 0.5).expand(3, size, size),
    ]
    while len(images) < n:
        images.append(torch.rand(3, size, size, generator=generator) ** (len(images) % 3 + 1))
    return torch.stack(images[:n]).contiguous()


def write(files: Path, fmt: ArtifactFormat, output: str, input_size: int) -> Path:
    if fmt is ArtifactFormat.TORCHSCRIPT:
        return detector_files.write_torchscript(files / f"{output}.pt", output=output)  # type: ignore[arg-type]
    return detector_files.write_onnx(files / f"{output}_{input_size}.onnx", input_size=input_size,
                                     output=output)  # type: ignore[arg-type]


# --- scores against the eager reference -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", CODE_FORMATS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_scores_match_the_eager_reference(files: Path, fmt: ArtifactFormat, output: str) -> None:
    detector = load_detector(write(files, fmt, output, 48), fmt, input_size=48, device=CPU)
    probe_detector(detector)
    images = natural_images(7, 48)
    scores = detector.scores(images)
    assert scores.dtype == numpy.float64 and scores.shape == (7,)
    expected = detector_files.reference_scores(images, output=output)  # type: ignore[arg-type]
    numpy.testing.assert_allclose(scores, expected, rtol=0, atol=1e-5)
    assert numpy.ptp(scores) > 1e-3  # the images really are told apart


@pytest.mark.parametrize("input_size", [16, 80])
def test_torchscript_runs_at_any_declared_size(files: Path, input_size: int) -> None:
    path = detector_files.write_torchscript(files / "any_size.pt")
    detector = load_detector(path, ArtifactFormat.TORCHSCRIPT, input_size=input_size, device=CPU)
    probe_detector(detector, batch_size=3)
    images = natural_images(4, input_size)
    numpy.testing.assert_allclose(detector.scores(images), detector_files.reference_scores(images), atol=1e-5)


def test_onnx_with_a_static_batch_is_served_in_chunks(files: Path) -> None:
    path = detector_files.write_onnx(files / "batch2.onnx", input_size=32, fixed_batch=2)
    detector = load_detector(path, "onnx", input_size=32, device=CPU)
    images = natural_images(5, 32)  # not a multiple of the static batch
    numpy.testing.assert_allclose(detector.scores(images), detector_files.reference_scores(images), atol=1e-5)


def test_loaded_detector_reports_its_device_and_capabilities(files: Path) -> None:
    torchscript = load_detector(detector_files.write_torchscript(files / "caps.pt"), "torchscript",
                                input_size=32, device=CPU)
    assert isinstance(torchscript, Detector) and torchscript.device == CPU
    assert {"outputs", "gradients", "features"} <= torchscript.capabilities
    onnx_detector = load_detector(detector_files.write_onnx(files / "caps.onnx", input_size=32), "onnx",
                                  input_size=32, device=CPU)
    assert onnx_detector.capabilities == {"outputs"} and onnx_detector.device == CPU


# --- contract violations -------------------------------------------------------------------------------


def bad_detector(files: Path, kind: str, input_size: int = 32) -> Detector:
    path = detector_files.write_bad_torchscript(files / f"bad_{kind}.pt", kind,  # type: ignore[arg-type]
                                                input_size=input_size)
    return load_detector(path, ArtifactFormat.TORCHSCRIPT, input_size=input_size, device=CPU)


def test_nan_output_is_refused(files: Path) -> None:
    detector = bad_detector(files, "nan")
    with pytest.raises(DetectorOutputError, match=r"non-finite values \(NaN or infinity\) for 2 of 2"):
        probe_detector(detector)
    with pytest.raises(DetectorOutputError, match="non-finite"):
        detector.scores(natural_images(3, 32))


def test_an_output_of_another_shape_is_refused_with_the_accepted_shapes(files: Path) -> None:
    detector = bad_detector(files, "rows")
    with pytest.raises(DetectorOutputError) as caught:
        probe_detector(detector, batch_size=4)
    message = caught.value.message
    assert "shape (4, 3, 32)" in message
    assert "(4,)" in message and "(4, 1)" in message and "(4, 2)" in message and "(4, G + 1)" in message


def test_probe_failure_says_to_check_the_input_size(files: Path) -> None:
    detector = bad_detector(files, "fixed_size", input_size=32)
    probe_detector(detector)  # fine at the size it was built for
    detector.input_size = 64  # as if the submitter declared the wrong size
    with pytest.raises(DetectorOutputError) as caught:
        probe_detector(detector)
    message = caught.value.message
    assert message.startswith("The detector failed on a 2×3×64×64 probe batch: mat1 and mat2 shapes")
    assert message.endswith("Check the declared input size.")
    assert "\n" not in message and "Traceback" not in message


def test_onnx_with_a_fixed_other_size_is_refused_at_load(files: Path) -> None:
    path = detector_files.write_onnx(files / "fixed64.onnx", input_size=64)
    with pytest.raises(DetectorLoadError, match="fixed at 64×64 pixels, but the declared input size is 32"):
        load_detector(path, ArtifactFormat.ONNX, input_size=32, device=CPU)


def test_output_contract_conversion_by_hand() -> None:
    logits = numpy.array([-50.0, -40.0, 0.0, 3.0], dtype=numpy.float32)
    numpy.testing.assert_array_equal(logits_from_output(logits, 4), [-50.0, -40.0, 0.0, 3.0])
    numpy.testing.assert_array_equal(logits_from_output(logits.reshape(4, 1), 4), [-50.0, -40.0, 0.0, 3.0])
    pairs = numpy.array([[2.0, -1.0], [0.5, 0.5], [-300.0, 300.0]])
    softmax = torch.softmax(torch.tensor(pairs), dim=1)[:, 1].double()
    # the N×2 score is the logit of the softmax probability of "generated"
    numpy.testing.assert_allclose(torch.sigmoid(torch.from_numpy(logits_from_output(pairs, 3))), softmax, rtol=1e-12)
    numpy.testing.assert_array_equal(logits_from_output(pairs, 3), [-3.0, 0.0, 600.0])
    with pytest.raises(DetectorOutputError, match="non-finite"):
        logits_from_output(numpy.array([[0.0, numpy.inf]]), 1)
    with pytest.raises(DetectorOutputError, match="beyond float32's range"):
        logits_from_output(numpy.array([[-3e38, 3e38]]), 1)
    with pytest.raises(DetectorOutputError, match="shape \\(3,\\) for a batch of 2"):
        logits_from_output(numpy.zeros(3), 2)


def test_tuple_output_is_refused(files: Path) -> None:
    class Pair(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3))

    path = files / "pair.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(Pair()), str(path))
    detector = load_detector(path, "torchscript", input_size=16, device=CPU)
    with pytest.raises(DetectorOutputError, match="returned a tuple; it must return one tensor"):
        probe_detector(detector)


# --- files that do not load ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(ArtifactFormat))
def test_garbage_file_is_refused_before_any_loader_sees_it(files: Path, fmt: ArtifactFormat) -> None:
    path = files / "garbage.bin"
    path.write_bytes(numpy.random.default_rng(0).bytes(4096))
    with pytest.raises(DetectorLoadError, match="not a TorchScript archive, an ONNX model or a safetensors file"):
        load_detector(path, fmt, input_size=32, device=CPU, architecture="spectral-lr")


def test_pickled_checkpoint_never_reaches_torch_jit_load(files: Path) -> None:
    path = detector_files.write_pickled_model(files / "pickled_model.pt")
    with pytest.raises(DetectorLoadError, match="pickled PyTorch checkpoint"):
        load_detector(path, "torchscript", input_size=32, device=CPU)


def test_format_mismatch_is_a_load_error(files: Path) -> None:
    path = detector_files.write_onnx(files / "mismatch.onnx", input_size=32)
    with pytest.raises(DetectorLoadError, match="declared as TorchScript but it is an ONNX model"):
        load_detector(path, "torchscript", input_size=32, device=CPU)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def corrupt_torchscript(path: Path) -> Path:
    """The layout of a TorchScript archive (it passes the sniffer) with garbage inside."""
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("code/__torch__/m.py", "data.pkl", "constants.pkl", "version"):
            archive.writestr(f"corrupt/{name}", numpy.random.default_rng(0).bytes(64))
    return path


def corrupt_onnx(path: Path) -> Path:
    """A well-formed ModelProto envelope (it passes the sniffer) around a garbage graph."""
    graph = numpy.random.default_rng(0).bytes(256)
    path.write_bytes(b"\x08\x08" + b"\x3a" + _varint(len(graph)) + graph)
    return path


@pytest.mark.parametrize("fmt", CODE_FORMATS)
def test_corrupt_file_raises_a_plain_load_error(files: Path, fmt: ArtifactFormat) -> None:
    if fmt is ArtifactFormat.TORCHSCRIPT:
        path, prefix = corrupt_torchscript(files / "corrupt.pt"), "The TorchScript archive could not be loaded: "
    else:
        path, prefix = corrupt_onnx(files / "corrupt.onnx"), "The ONNX model could not be loaded: "
    with pytest.raises(DetectorLoadError) as caught:
        load_detector(path, fmt, input_size=32, device=CPU)
    message = caught.value.message
    assert message.startswith(prefix) and len(message) > len(prefix)
    assert "\n" not in message and "Traceback" not in message


def test_onnx_with_external_data_is_refused(files: Path) -> None:
    model = onnx.load(str(detector_files.write_onnx(files / "inline.onnx", input_size=32)))
    path = files / "external" / "model.onnx"
    path.parent.mkdir()
    onnx.save(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0)
    with pytest.raises(DetectorLoadError, match="external-data files"):
        load_detector(path, "onnx", input_size=32, device=CPU)


def test_onnx_with_two_inputs_is_refused(files: Path) -> None:
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3, 16, 16]) for name in "ab"]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 16, 16])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "two_inputs", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = files / "two_inputs.onnx"
    onnx.save(model, str(path))
    with pytest.raises(DetectorLoadError, match=r"has 2 inputs \(a, b\); a detector takes exactly one"):
        load_detector(path, "onnx", input_size=16, device=CPU)


def test_missing_file_is_not_blamed_on_the_submitter(files: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_detector(files / "nowhere.onnx", "onnx", input_size=32, device=CPU)


# --- devices -----------------------------------------------------------------------------------------------


def test_pick_device() -> None:
    assert pick_device("cpu") == CPU
    expected = torch.device("cuda") if torch.cuda.is_available() else CPU
    assert pick_device() == expected and pick_device("cuda") == expected and pick_device("auto") == expected
    with pytest.raises(ValueError, match="unknown device hint"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback on a machine without CUDA")
def test_onnx_asked_for_cuda_without_it_runs_on_cpu(files: Path) -> None:
    path = detector_files.write_onnx(files / "cuda.onnx", input_size=32)
    detector = load_detector(path, "onnx", input_size=32, device=torch.device("cuda"))
    assert detector.device == CPU
    probe_detector(detector)


# --- safetensors + a zoo architecture ---------------------------------------------------------------------


def _fitted_spectral(size: int):  # noqa: ANN202 - a zoo module
    from models_zoo.registry import create_model

    model = create_model("spectral-lr", input_size=size)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(model.weight.shape, generator=generator, dtype=torch.float64) * 0.05)
        model.bias.fill_(-1.5)
    return model


def test_safetensors_weights_load_into_their_zoo_architecture(files: Path) -> None:
    from safetensors.torch import save_file

    model = _fitted_spectral(32)
    path = files / "spectral.safetensors"
    save_file(model.state_dict(), str(path))
    detector = load_detector(path, "safetensors", input_size=32, device=CPU, architecture="spectral-lr")
    images = natural_images(6, 32)
    with torch.no_grad():
        expected = model(images).double().numpy()
    assert detector.format == "safetensors" and "gradients" in detector.capabilities
    assert "features" in detector.capabilities
    numpy.testing.assert_allclose(detector.scores(images), expected, rtol=1e-12)
    assert len(set(numpy.round(expected, 6))) > 1  # the weights were loaded: untrained logits are all 0


def test_safetensors_that_do_not_fit_the_architecture_say_what_differs(files: Path) -> None:
    from safetensors.torch import save_file

    state = _fitted_spectral(32).state_dict()
    path = files / "wrong.safetensors"
    save_file(state, str(path))
    with pytest.raises(DetectorLoadError, match=r"wrong shape: weight \(20,\) \(expected \(43,\)\)"):
        load_detector(path, "safetensors", input_size=64, device=CPU, architecture="spectral-lr")
    save_file({"weight": state["weight"], "extra": torch.zeros(2)}, str(path))
    with pytest.raises(DetectorLoadError, match="missing: bias; unexpected: extra"):
        load_detector(path, "safetensors", input_size=32, device=CPU, architecture="spectral-lr")
    with pytest.raises(DetectorLoadError, match="did you mean: spectral-lr"):
        load_detector(path, "safetensors", input_size=32, device=CPU, architecture="spectral_lr")
    with pytest.raises(DetectorLoadError, match="not a detector architecture"):
        load_detector(path, "safetensors", input_size=32, device=CPU, architecture="triplet-absolute")
    with pytest.raises(ValueError, match="needs the name of its zoo architecture"):
        load_detector(path, "safetensors", input_size=32, device=CPU)
